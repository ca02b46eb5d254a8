//! A Hyperledger Fabric Gateway client and Fabric CA client.
