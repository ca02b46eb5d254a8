//! A chaincode-as-a-service shim for Hyperledger Fabric with the full chaincode API and a contract layer.
