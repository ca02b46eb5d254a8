'use strict';
// Connects the official Node Fabric Gateway client (@hyperledger/fabric-gateway over
// @grpc/grpc-js) to a devnet peer with TLS, as an identity read from an MSP directory the devnet
// wrote (signcerts/cert.pem, keystore/*_sk), the way Fabric's samples connect to a real peer.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

/** { peer: host:port, host: TLS server name, tlsCaCert, mspId, mspDir } → { gateway, client } */
function connectGateway(input, options = {}) {
    const client = new grpc.Client(
        input.peer,
        grpc.credentials.createSsl(fs.readFileSync(input.tlsCaCert)),
        { 'grpc.ssl_target_name_override': input.host },
    );
    const keystore = path.join(input.mspDir, 'keystore');
    const keyFile = fs.readdirSync(keystore).find((f) => f.endsWith('_sk'));
    if (!keyFile) {
        throw new Error(`no private key in ${keystore}`);
    }
    const gateway = connect({
        client,
        identity: {
            mspId: input.mspId,
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

module.exports = { connectGateway, describeError, utf8, run };
