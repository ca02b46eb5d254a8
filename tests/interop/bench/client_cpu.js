'use strict';
// Client-side CPU of the official Node Gateway client (@hyperledger/fabric-gateway over
// @grpc/grpc-js): `submits` submitted transactions (each through its commit status) with
// `inFlight` in flight, then `evaluates` evaluates with `inFlight` in flight, against a devnet
// peer found through the organisation's connection profile. CPU is this process's user + system
// time (process.cpuUsage(): every thread of the Node process), measured around each phase after
// a warm-up. Prints one JSON line.
//
//   node bench/client_cpu.js '{"profile":..., "mspDir":..., "channel":..., "chaincode":...,
//                              "submits":N, "evaluates":N, "inFlight":N, "warmup":N, "runId":"..."}'

const { connectGateway, run } = require('../devnet/connect');

/** Runs `count` calls of `call(i)` with at most `inFlight` pending; returns elapsed ms. */
async function pool(count, inFlight, call) {
    let next = 0;
    const started = process.hrtime.bigint();
    const worker = async () => {
        for (;;) {
            const i = next++;
            if (i >= count) {
                return;
            }
            await call(i);
        }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
    return Number(process.hrtime.bigint() - started) / 1e6;
}

function cpuUs(since) {
    const u = process.cpuUsage(since);
    return u.user + u.system;
}

run(async (input) => {
    const conn = connectGateway(input);
    try {
        const contract = conn.gateway.getNetwork(input.channel).getContract(input.chaincode);
        const id = input.runId;
        const submit = (i) => contract.submitTransaction('put', `${id}-k${i}`, `value-${i}`);
        const evaluate = (i) => contract.evaluateTransaction('get', `${id}-k${i % input.submits}`);

        // Warm-up: connection, TLS session, JIT.
        await pool(input.warmup, input.inFlight, (i) => contract.submitTransaction('put', `${id}-w${i}`, 'w'));
        await pool(input.warmup, input.inFlight, (i) => contract.evaluateTransaction('get', `${id}-w${i}`));

        let c0 = process.cpuUsage();
        const submitMs = await pool(input.submits, input.inFlight, submit);
        const submitCpuUs = cpuUs(c0);

        c0 = process.cpuUsage();
        const evaluateMs = await pool(input.evaluates, input.inFlight, evaluate);
        const evaluateCpuUs = cpuUs(c0);

        const check = Buffer.from(await contract.evaluateTransaction('get', `${id}-k0`)).toString('utf8');
        return {
            client: 'node @hyperledger/fabric-gateway',
            submits: input.submits,
            evaluates: input.evaluates,
            submitCpuUs,
            evaluateCpuUs,
            submitMs,
            evaluateMs,
            check,
        };
    } finally {
        conn.gateway.close();
        conn.client.close();
    }
});
