'use strict';
// The official Node Gateway client's CPU per transaction against a devnet peer: the same
// workload as devnet_cpu.rs (submits through commit status with a fixed number in flight, then
// sequential evaluates), measured with process.cpuUsage() (user + system, all of Node's threads).
//
//   NODE_PATH=tests/interop/node_modules node node_gateway_cpu.js '{"peer":..., "host":...,
//       "tlsCaCert":..., "mspId":..., "mspDir":..., "channel":..., "chaincode":...,
//       "submits":..., "inFlight":..., "evaluates":...}'

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

async function main(input) {
    const client = new grpc.Client(input.peer, grpc.credentials.createSsl(fs.readFileSync(input.tlsCaCert)), {
        'grpc.ssl_target_name_override': input.host,
    });
    const keystore = path.join(input.mspDir, 'keystore');
    const keyFile = fs.readdirSync(keystore).find((f) => f.endsWith('_sk'));
    const gateway = connect({
        client,
        identity: { mspId: input.mspId, credentials: fs.readFileSync(path.join(input.mspDir, 'signcerts', 'cert.pem')) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(fs.readFileSync(path.join(keystore, keyFile)))),
        hash: hash.sha256,
    });
    const contract = gateway.getNetwork(input.channel).getContract(input.chaincode);
    // Warm up connections and JIT, as the Rust side does.
    for (let i = 0; i < 20; i++) {
        const commit = await contract.submitAsync('put', { arguments: [`node-warm-${i}`, 'v'] });
        await commit.getStatus();
        await contract.evaluateTransaction('get', `node-warm-${i}`);
    }
    let next = 0;
    const worker = async () => {
        while (next < input.submits) {
            const i = next++;
            const commit = await contract.submitAsync('put', { arguments: [`node-${i}`, `value-${i}`] });
            const status = await commit.getStatus();
            if (!status.successful) {
                throw new Error(`transaction ${commit.getTransactionId()} failed with ${status.code}`);
            }
        }
    };
    const submitStart = process.cpuUsage();
    const wall = process.hrtime.bigint();
    await Promise.all(Array.from({ length: input.inFlight }, worker));
    const submitCpu = process.cpuUsage(submitStart);
    const submitWallMs = Number(process.hrtime.bigint() - wall) / 1e6;
    const evalStart = process.cpuUsage();
    for (let i = 0; i < input.evaluates; i++) {
        await contract.evaluateTransaction('get', `node-${i % input.submits}`);
    }
    const evalCpu = process.cpuUsage(evalStart);
    gateway.close();
    client.close();
    return {
        submitCpuUsPerTx: (submitCpu.user + submitCpu.system) / input.submits,
        submitWallMs,
        evaluateCpuUsPerCall: (evalCpu.user + evalCpu.system) / input.evaluates,
    };
}

main(JSON.parse(process.argv[2])).then(
    (out) => console.log(JSON.stringify(out)),
    (err) => {
        console.error(err);
        process.exit(1);
    },
);
