'use strict';
// Runs `fabric-chaincode-node server` (fabric-shim's CLI) for the contract in ./contract, with the
// arguments given, and exits when the process that started it is gone, so a test killed before
// it could clean up leaves no chaincode server behind.
//
//   node devnet/contract-server.js --chaincode-address HOST:PORT --chaincode-id ID [TLS flags]

const path = require('path');

const parent = process.ppid;
setInterval(() => {
    if (process.ppid !== parent) {
        process.exit(0);
    }
}, 500).unref();

process.argv = [
    process.argv[0],
    require.resolve('fabric-shim/cli.js'),
    'server',
    '--module-path',
    path.join(__dirname, 'contract'),
    ...process.argv.slice(2),
];
require('fabric-shim/cli.js');
