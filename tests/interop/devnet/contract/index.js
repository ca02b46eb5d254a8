'use strict';
// A licence register written with the official `fabric-contract-api`, run as chaincode-as-a-service
// by `fabric-chaincode-node server` (fabric-shim's CLI):
//
//   node ../../node_modules/fabric-shim/cli.js server --module-path . \
//       --chaincode-address 127.0.0.1:PORT --chaincode-id LABEL:HASH [--chaincode-tls-*-file ...]
//
// put/get/del on world state (with a `LicencePut` event), ranges with and without pagination,
// composite-key queries, private data from the transient map, its hash, and private ranges.

const { Contract } = require('fabric-contract-api');

// Reads a state query iterator to the end with its next()/close() protocol, as the shim's
// documentation shows, and closes it. (The shim resolves getPrivateDataByRange to
// `{ iterator }` rather than to the iterator itself.)
async function collect(resolved) {
    const iterator = resolved.iterator || resolved;
    const out = [];
    for (;;) {
        const res = await iterator.next();
        if (res.value) {
            out.push({ key: res.value.key, value: Buffer.from(res.value.value).toString('utf8') });
        }
        if (res.done) {
            await iterator.close();
            return out;
        }
    }
}

class LicenceContract extends Contract {
    constructor() {
        super('licence');
    }

    async put(ctx, id, holder) {
        await ctx.stub.putState(id, Buffer.from(holder));
        const owner = ctx.stub.createCompositeKey('holder~id', [holder, id]);
        await ctx.stub.putState(owner, Buffer.from([0]));
        ctx.stub.setEvent('LicencePut', Buffer.from(JSON.stringify({ id, holder })));
        return holder;
    }

    async get(ctx, id) {
        const value = await ctx.stub.getState(id);
        if (!value || value.length === 0) {
            throw new Error(`licence ${id} does not exist`);
        }
        return Buffer.from(value).toString('utf8');
    }

    async del(ctx, id) {
        await ctx.stub.deleteState(id);
    }

    async range(ctx, start, end) {
        return JSON.stringify((await collect(await ctx.stub.getStateByRange(start, end))).map((kv) => kv.key));
    }

    async page(ctx, start, end, pageSize, bookmark) {
        const { iterator, metadata } = await ctx.stub.getStateByRangeWithPagination(start, end, Number(pageSize), bookmark);
        const keys = (await collect(iterator)).map((kv) => kv.key);
        return JSON.stringify({ keys, count: metadata.fetchedRecordsCount, bookmark: metadata.bookmark });
    }

    async byHolder(ctx, holder) {
        const found = await collect(await ctx.stub.getStateByPartialCompositeKey('holder~id', [holder]));
        return JSON.stringify(found.map((kv) => ctx.stub.splitCompositeKey(kv.key).attributes[1]));
    }

    async putPrivate(ctx, collection, id) {
        const value = ctx.stub.getTransient().get('secret');
        if (!value) {
            throw new Error('transient field secret is missing');
        }
        await ctx.stub.putPrivateData(collection, id, value);
    }

    async getPrivate(ctx, collection, id) {
        const value = await ctx.stub.getPrivateData(collection, id);
        if (!value || value.length === 0) {
            throw new Error(`no private data for ${id} in ${collection}`);
        }
        return Buffer.from(value).toString('utf8');
    }

    async privateHash(ctx, collection, id) {
        return Buffer.from(await ctx.stub.getPrivateDataHash(collection, id)).toString('hex');
    }

    async privateRange(ctx, collection, start, end) {
        return JSON.stringify((await collect(await ctx.stub.getPrivateDataByRange(collection, start, end))).map((kv) => kv.key));
    }
}

module.exports.contracts = [LicenceContract];
