//! The `elicense-chaincode` binary (placeholder until the CCaaS server lands).
fn main() {}
