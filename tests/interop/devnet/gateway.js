'use strict';
// The official Node Gateway client against a devnet peer: evaluate, submit (sync and async with
// commit status), chaincode events read with a checkpoint and resumed from it after reconnecting,
// and the gateway's error for a failing chaincode call. Prints one JSON line of results.
//
//   node devnet/gateway.js '{"profile":..., "mspDir":..., "mspId":..., "channel":..., "chaincode":...}'

const { checkpointers } = require('@hyperledger/fabric-gateway');
const { connectGateway, describeError, utf8, run } = require('./connect');

async function readEvents(network, chaincode, checkpointer, count, startBlock) {
    const events = await network.getChaincodeEvents(chaincode, { checkpoint: checkpointer, startBlock });
    const seen = [];
    try {
        for await (const event of events) {
            seen.push({
                eventName: event.eventName,
                payload: utf8(event.payload),
                transactionId: event.transactionId,
                blockNumber: event.blockNumber,
                chaincodeName: event.chaincodeName,
            });
            await checkpointer.checkpointChaincodeEvent(event);
            if (seen.length === count) {
                break;
            }
        }
    } finally {
        events.close();
    }
    return seen;
}

run(async (input) => {
    const out = {};
    let conn = connectGateway(input);
    try {
        const network = conn.gateway.getNetwork(input.channel);
        const contract = network.getContract(input.chaincode);

        // Submit and wait (submitTransaction), then evaluate what it wrote.
        out.put = utf8(await contract.submitTransaction('put', 'colour', 'blue'));
        out.get = utf8(await contract.evaluateTransaction('get', 'colour'));

        // Three events submitted back to back (so they may share a block), then each awaited
        // through CommitStatus.
        const pending = [];
        for (const n of [1, 2, 3]) {
            pending.push({ payload: `licence-${n}`, commit: await contract.submitAsync('event', { arguments: ['issued', `licence-${n}`] }) });
        }
        out.commits = [];
        for (const { payload, commit } of pending) {
            const status = await commit.getStatus();
            out.commits.push({
                payload,
                transactionId: commit.getTransactionId(),
                result: utf8(commit.getResult()),
                successful: status.successful,
                code: status.code,
                blockNumber: status.blockNumber,
            });
        }
        const firstBlock = out.commits.map((c) => BigInt(c.blockNumber)).reduce((a, b) => (a < b ? a : b));

        // Read the first event with a checkpoint; then reconnect and resume from the checkpoint
        // (mid-block when events share a block): the other two follow, nothing is repeated.
        const checkpointer = checkpointers.inMemory();
        out.firstRead = await readEvents(network, input.chaincode, checkpointer, 1, firstBlock);
        out.checkpoint = { blockNumber: checkpointer.getBlockNumber(), transactionId: checkpointer.getTransactionId() };
        conn.gateway.close();
        conn.client.close();
        conn = connectGateway(input);
        const resumed = conn.gateway.getNetwork(input.channel);
        out.resumed = await readEvents(resumed, input.chaincode, checkpointer, 2, undefined);

        // Blocks from the peer's Deliver service, decoded by the official client: the full block
        // (header, data, transaction filter) and the filtered block of the first event commit.
        const startBlock = firstBlock;
        const blocks = await resumed.getBlockEvents({ startBlock });
        try {
            for await (const block of blocks) {
                const header = block.getHeader();
                out.block = {
                    number: Number(header.getNumber()),
                    dataHash: Buffer.from(header.getDataHash_asU8()).toString('hex'),
                    transactions: block.getData().getDataList().length,
                    filter: Array.from(block.getMetadata().getMetadataList_asU8()[2]),
                };
                break;
            }
        } finally {
            blocks.close();
        }
        const filtered = await resumed.getFilteredBlockEvents({ startBlock });
        try {
            for await (const fb of filtered) {
                out.filteredBlock = {
                    number: Number(fb.getNumber()),
                    channelId: fb.getChannelId(),
                    transactions: fb.getFilteredTransactionsList().map((t) => ({
                        txid: t.getTxid(),
                        code: t.getTxValidationCode(),
                        type: t.getType(),
                    })),
                };
                break;
            }
        } finally {
            filtered.close();
        }

        // A chaincode failure on evaluate and on submit: the gateway's status and details.
        const contract2 = resumed.getContract(input.chaincode);
        try {
            await contract2.evaluateTransaction('fail', 'no such licence');
            out.evaluateError = null;
        } catch (err) {
            out.evaluateError = describeError(err);
        }
        try {
            await contract2.submitTransaction('fail', 'refused');
            out.submitError = null;
        } catch (err) {
            out.submitError = describeError(err);
        }

        // Endorsed by one organisation only, against a policy that needs both: the transaction
        // is ordered and fails validation, which the client reports as a CommitError.
        try {
            await contract2.submit('put', { arguments: ['colour', 'red'], endorsingOrganizations: [input.mspId] });
            out.commitError = null;
        } catch (err) {
            out.commitError = { name: err.name, code: err.code, transactionId: err.transactionId, message: err.message };
        }
        out.afterCommitError = utf8(await contract2.evaluateTransaction('get', 'colour'));

        // Only valid transactions' events are delivered: an event from a transaction that fails
        // validation is skipped, the next valid one arrives.
        const invalid = await contract2.submitAsync('event', { arguments: ['issued', 'never'], endorsingOrganizations: [input.mspId] });
        const invalidStatus = await invalid.getStatus();
        const valid = await contract2.submitAsync('event', { arguments: ['issued', 'licence-4'] });
        await valid.getStatus();
        out.invalidEvent = { transactionId: invalid.getTransactionId(), code: invalidStatus.code, blockNumber: invalidStatus.blockNumber };
        out.validEvent = { transactionId: valid.getTransactionId() };
        out.afterInvalid = await readEvents(resumed, input.chaincode, checkpointers.inMemory(), 1, BigInt(invalidStatus.blockNumber));
    } finally {
        conn.gateway.close();
        conn.client.close();
    }
    return out;
});
