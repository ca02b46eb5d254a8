'use strict';
// A Gateway connection with the official Node client for one user of one organisation, built from
// nothing but what `network.sh up` writes for clients: <data-dir>/profiles/<org>.json (the org's
// first peer, its URL and TLS CA) and <data-dir>/msp/<org>/<user>/ (certificate and key).

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const { connect, signers } = require('@hyperledger/fabric-gateway');

/** Returns { gateway, client, target }; close both when done. */
function gatewayFor(dataDir, org, user) {
    const profile = JSON.parse(fs.readFileSync(path.join(dataDir, 'profiles', `${org}.json`)));
    const orgInfo = profile.organizations[profile.client.organization];
    const peer = profile.peers[orgInfo.peers[0]];
    const target = new URL(peer.url).host;
    const client = new grpc.Client(target, grpc.credentials.createSsl(Buffer.from(peer.tlsCACerts.pem)));
    const msp = path.join(dataDir, 'msp', org, user);
    const gateway = connect({
        client,
        identity: { mspId: orgInfo.mspid, credentials: fs.readFileSync(path.join(msp, 'signcerts', 'cert.pem')) },
        signer: signers.newPrivateKeySigner(
            crypto.createPrivateKey(fs.readFileSync(path.join(msp, 'keystore', 'priv_sk')))),
    });
    return { gateway, client, target };
}

module.exports = { gatewayFor };
