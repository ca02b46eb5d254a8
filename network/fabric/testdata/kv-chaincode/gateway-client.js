'use strict';
// The official Node Fabric Gateway client against a network of network/fabric, using only what
// `network.sh up` writes for clients: <data-dir>/profiles/<org>.json and
// <data-dir>/msp/<org>/<user>/. Submits put(key, value) and evaluates get(key) on a channel, then
// an unknown key, and prints one JSON line with the results and the gateway's error for the
// unknown key.
//
//   node gateway-client.js <data-dir> <org> <user> <channel> <key> <value>

const { gatewayFor } = require('./profile-gateway');

async function main() {
    const [dataDir, org, user, channel, key, value] = process.argv.slice(2);
    if (!value) {
        throw new Error('usage: gateway-client.js <data-dir> <org> <user> <channel> <key> <value>');
    }
    const { gateway, client, target } = gatewayFor(dataDir, org, user);
    const out = { target };
    try {
        const contract = gateway.getNetwork(channel).getContract('elicense');
        const commit = await contract.submitAsync('put', { arguments: [key, value] });
        out.submitted = Buffer.from(commit.getResult()).toString();
        const status = await commit.getStatus();
        out.status = status.successful ? 'VALID' : String(status.code);
        out.blockNumber = Number(status.blockNumber);
        out.evaluated = Buffer.from(await contract.evaluateTransaction('get', key)).toString();
        try {
            await contract.evaluateTransaction('get', `${key}-missing`);
            out.missingError = null;
        } catch (err) {
            out.missingError = {
                code: err.code,
                message: err.message,
                details: (err.details || []).map((d) => ({ mspId: d.mspId, message: d.message })),
            };
        }
    } finally {
        gateway.close();
        client.close();
    }
    console.log(JSON.stringify(out));
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
