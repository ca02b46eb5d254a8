'use strict';
// The official Node Fabric Gateway client against the licence chaincode (`elicense`) on a network
// of network/fabric, using only what `network.sh up` writes for clients: the organisations'
// connection profiles and MSP directories. For one licence that is active:
//
//   the issuer (PublicSecurity/issuer1) suspends it and reads it back, then reinstates it;
//   a clerk of another department (ServiceCentre/clerk1) reads it, and is refused a suspension;
//
// and prints one JSON line with each step's outcome (commit status, block number, the record's
// status, the refusal's gRPC code and per-peer details), so the caller compares them with what
// the Rust SDK sees on the same network.
//
//   node licence-client.js <data-dir> <channel> <licence-id>

const { gatewayFor } = require('./profile-gateway');

const text = (bytes) => Buffer.from(bytes).toString();

async function submit(contract, name, arg) {
    const commit = await contract.submitAsync(name, { arguments: [JSON.stringify(arg)] });
    const status = await commit.getStatus();
    return {
        txId: commit.getTransactionId(),
        status: status.successful ? 'VALID' : String(status.code),
        blockNumber: Number(status.blockNumber),
        result: JSON.parse(text(commit.getResult())),
    };
}

async function read(contract, id) {
    return JSON.parse(text(await contract.evaluateTransaction('ReadLicence',
        JSON.stringify({ licence_id: id }))));
}

async function main() {
    const [dataDir, channel, id] = process.argv.slice(2);
    if (!id) {
        throw new Error('usage: licence-client.js <data-dir> <channel> <licence-id>');
    }
    const issuer = gatewayFor(dataDir, 'PublicSecurity', 'issuer1');
    const clerk = gatewayFor(dataDir, 'ServiceCentre', 'clerk1');
    const out = {};
    try {
        const byIssuer = issuer.gateway.getNetwork(channel).getContract('elicense');
        const byClerk = clerk.gateway.getNetwork(channel).getContract('elicense');
        out.suspend = await submit(byIssuer, 'Suspend', { licence_id: id, reason: 'checked by the Node client' });
        // the issuer's peer reported the commit, so it is read there
        out.afterSuspend = (await read(byIssuer, id)).status;
        out.reinstate = await submit(byIssuer, 'Reinstate', { licence_id: id, reason: 'check done' });
        // the clerk's own peer commits the same block a moment later
        let record = await read(byClerk, id);
        for (let i = 0; i < 100 && record.status !== 'active'; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            record = await read(byClerk, id);
        }
        out.afterReinstate = record.status;
        out.issuerMsp = record.issuer_msp;
        try {
            await byClerk.submitTransaction('Suspend', JSON.stringify({ licence_id: id, reason: 'not mine' }));
            out.clerkSuspend = null;
        } catch (err) {
            out.clerkSuspend = {
                name: err.constructor.name,
                code: err.code,
                details: (err.details || []).map((d) => ({ mspId: d.mspId, message: d.message })),
            };
        }
    } finally {
        for (const c of [issuer, clerk]) {
            c.gateway.close();
            c.client.close();
        }
    }
    console.log(JSON.stringify(out));
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
