//! Tessera's wire protocol, generated from `proto/tessera/v1/*.proto`.
//!
//! Regenerating is a normal `cargo build`: the build script compiles the
//! `.proto` files with protox, so no system `protoc` is needed.

#![allow(clippy::pedantic, clippy::large_enum_variant, missing_docs)]

/// Version 1 of the protocol.
pub mod v1 {
    tonic::include_proto!("tessera.v1");
}

/// The encoded `FileDescriptorSet`, for the gRPC reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tessera_descriptor.bin"));

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
