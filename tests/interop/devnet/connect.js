'use strict';
// Connects the official Node Fabric Gateway client (@hyperledger/fabric-gateway over
// @grpc/grpc-js) to a devnet peer with TLS, using only files the devnet writes: the
// organisation's connection profile and an MSP directory (signcerts/cert.pem, keystore/*_sk),
// the way Fabric's samples connect to a real peer.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

/**
 * The organisation's first peer and MSP ID from a Fabric common connection profile (the JSON the
 * devnet writes per organisation), as Fabric's samples read one.
 */
function peerFromProfile(profilePath) {
    const profile = JSON.parse(fs.readFileSync(profilePath));
    const org = profile.organizations[profile.client.organization];
    const peer = profile.peers[org.peers[0]];
    return {
        target: new URL(peer.url).host,
        tlsCaPem: Buffer.from(peer.tlsCACerts.pem),
        serverName: peer.grpcOptions['ssl-target-name-override'],
        mspId: org.mspid,
    };
}

/** { profile: connection profile path, mspDir: the user's MSP directory } → { gateway, client } */
function connectGateway(input, options = {}) {
    const peer = peerFromProfile(input.profile);
    const client = new grpc.Client(
        peer.target,
        grpc.credentials.createSsl(peer.tlsCaPem),
        { 'grpc.ssl_target_name_override': peer.serverName },
    );
    const keystore = path.join(input.mspDir, 'keystore');
    const keyFile = fs.readdirSync(keystore).find((f) => f.endsWith('_sk'));
    if (!keyFile) {
        throw new Error(`no private key in ${keystore}`);
    }
    const gateway = connect({
        client,
        identity: {
            mspId: peer.mspId,
            credentials: fs.readFileSync(path.join(input.mspDir, 'signcerts', 'cert.pem')),
        },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(fs.readFileSync(path.join(keystore, keyFile)))),
        hash: hash.sha256,
        evaluateOptions: () => ({ deadline: Date.now() + 10000 }),
        endorseOptions: () => ({ deadline: Date.now() + 20000 }),
        submitOptions: () => ({ deadline: Date.now() + 10000 }),
        commitStatusOptions: () => ({ deadline: Date.now() + 30000 }),
        ...options,
    });
    return { gateway, client };
}

/** A gRPC error from the gateway as plain JSON: code, message, and each ErrorDetail. */
function describeError(err) {
    return {
        name: err.name,
        code: err.code,
        message: err.message,
        details: (err.details || []).map((d) => ({ address: d.address, mspId: d.mspId, message: d.message })),
        transactionId: err.transactionId,
    };
}

const utf8 = (bytes) => Buffer.from(bytes).toString('utf8');

/** Runs main(input) with the JSON argument and prints its result as one JSON line. */
function run(main) {
    const input = JSON.parse(process.argv[2] || '{}');
    main(input).then(
        (out) => console.log(JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? Number(v) : v))),
        (err) => {
            console.error(err);
            process.exit(1);
        },
    );
}

module.exports = { connectGateway, peerFromProfile, describeError, utf8, run };
