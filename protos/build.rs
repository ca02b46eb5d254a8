//! Compiles Fabric's wire schema under `proto/` with protox (a pure-Rust protobuf compiler), so
//! building needs no system `protoc`.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let fds = protox::compile(&files, [&root]).unwrap_or_else(|e| panic!("protobuf schema: {e}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // The descriptor set is kept so tests and tools can inspect the schema we actually compiled.
    std::fs::write(
        out.join("fabric_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )
    .expect("writing descriptor set");
    let mut config = tonic_prost_build::Config::new();
    // Generated code reaches prost through `crate::wire`, which writes map entries the way Fabric
    // does (key and value always present); see src/wire.rs.
    config.prost_path("crate::wire");
    // `Name` impls give every message its full protobuf name and `Any` type URL.
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        // Ordered maps make encoding deterministic (entries by key), as Fabric's own marshalling
        // of configuration is.
        .btree_map(".")
        .build_client(true)
        // No `XClient::connect(endpoint)` constructors: the peer's `Chaincode` service has an rpc
        // named `Connect`, whose client method would clash with it. Clients are built with
        // `XClient::new(channel)` from a `tonic::transport::Channel` instead.
        .build_transport(false)
        .build_server(true)
        .compile_fds_with_config(fds, config)
        .unwrap_or_else(|e| panic!("generating Rust code: {e}"));
}
