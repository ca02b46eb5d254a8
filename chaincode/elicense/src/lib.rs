//! The eLicense Ledger chaincode: the licence contract and its CCaaS server.
