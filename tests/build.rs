//! The same `cfg(shared_data)` as the node's (see `node/build.rs`).

include!("../node/build.rs");
