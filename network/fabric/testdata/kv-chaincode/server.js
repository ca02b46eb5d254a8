'use strict';
// A key-value chaincode on the official Node `fabric-shim`, served as chaincode-as-a-service:
// the peer dials it. Configured like Fabric's CCaaS samples (and like elicense-chaincode):
//   CHAINCODE_SERVER_ADDRESS  host:port to listen on
//   CHAINCODE_ID              the package ID the peer knows the chaincode by
//   CHAINCODE_TLS_DISABLED    "true" for plaintext; otherwise
//   CHAINCODE_TLS_KEY / CHAINCODE_TLS_CERT     server key and certificate files
//   CHAINCODE_CLIENT_CA_CERT  CA of the peers' client certificates (mutual TLS), optional
//
// Functions: put(key, value) [event "put"], get(key), del(key), whoami() -> the caller's MSP ID,
// enrollment ID and elicense.role certificate attribute.

const fs = require('fs');
const shim = require('fabric-shim');

class KeyValue {
    async Init() {
        return shim.success();
    }

    async Invoke(stub) {
        const { fcn, params } = stub.getFunctionAndParameters();
        try {
            switch (fcn) {
            case 'put': {
                if (params.length !== 2) {
                    return shim.error('put needs key and value');
                }
                await stub.putState(params[0], Buffer.from(params[1]));
                stub.setEvent('put', Buffer.from(params[0]));
                return shim.success(Buffer.from(params[1]));
            }
            case 'get': {
                const value = await stub.getState(params[0]);
                if (!value || value.length === 0) {
                    return shim.error(`no such key: ${params[0]}`);
                }
                return shim.success(value);
            }
            case 'del':
                await stub.deleteState(params[0]);
                return shim.success();
            case 'whoami': {
                const cid = new shim.ClientIdentity(stub);
                return shim.success(Buffer.from(JSON.stringify({
                    mspid: cid.getMSPID(),
                    id: cid.getAttributeValue('hf.EnrollmentID'),
                    role: cid.getAttributeValue('elicense.role'),
                })));
            }
            default:
                return shim.error(`unknown function: ${fcn}`);
            }
        } catch (err) {
            return shim.error(String(err && err.message ? err.message : err));
        }
    }
}

function main() {
    const address = process.env.CHAINCODE_SERVER_ADDRESS;
    const ccid = process.env.CHAINCODE_ID;
    if (!address || !ccid) {
        console.error('CHAINCODE_SERVER_ADDRESS and CHAINCODE_ID are required');
        process.exit(2);
    }
    const opts = { ccid, address };
    if (process.env.CHAINCODE_TLS_DISABLED !== 'true') {
        opts.tlsProps = {
            key: fs.readFileSync(process.env.CHAINCODE_TLS_KEY),
            cert: fs.readFileSync(process.env.CHAINCODE_TLS_CERT),
        };
        if (process.env.CHAINCODE_CLIENT_CA_CERT) {
            opts.tlsProps.clientCACerts = fs.readFileSync(process.env.CHAINCODE_CLIENT_CA_CERT);
        }
    }
    const server = shim.server(new KeyValue(), opts);
    server.start().then(
        () => console.log(`kv chaincode ${ccid} listening on ${address}`),
        (err) => {
            console.error('chaincode server failed:', err);
            process.exit(1);
        });
}

main();
