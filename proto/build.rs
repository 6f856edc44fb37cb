//! Compiles `tessera/v1/*.proto` with protox (pure Rust: no system protoc) and
//! generates the prost messages and tonic services, plus the descriptor set
//! that the reflection service serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "tessera/v1/notice.proto",
        "tessera/v1/federation.proto",
        "tessera/v1/operator.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tessera_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // A peer's batches of blinded elements decode as slices of the received buffer, not
    // one allocation per element (up to 65,535 a call, from any peer).
    tonic_prost_build::configure()
        .bytes(".tessera.v1.EvaluateRequest.blinded")
        .bytes(".tessera.v1.CardinalityRequest.blinded")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
