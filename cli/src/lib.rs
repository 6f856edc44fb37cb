//! The `tessera` command's library: everything the binary does, callable from
//! tests. `main.rs` only parses arguments and prints.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod demo;
pub mod dev_certs;
pub mod federation;
pub mod keys;
pub mod notices;
pub mod pki;
pub mod status;
pub mod table;
