//! The `tessera` command's library: everything the binary does, callable from
//! tests. `main.rs` only parses arguments and prints.

#![forbid(unsafe_code)]

pub mod annual;
pub mod audit;
pub mod backup;
pub mod bloc;
pub mod cli;
pub mod client;
pub mod console;
pub mod consult;
pub mod demo;
pub mod dev_certs;
pub mod eval;
pub mod federation;
pub mod heatmap;
pub mod keys;
pub mod matching;
pub mod notices;
pub mod pilot;
pub mod pki;
pub mod status;
pub mod table;
pub mod usage;
