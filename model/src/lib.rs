//! The licence domain rules shared by the chaincode and the SDK: commitments, grants, codes, identifiers.
