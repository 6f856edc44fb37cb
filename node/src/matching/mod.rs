//! Private matching as the node runs it, on the crypto of `privacy`:
//! the holder's keys and index (`keys`, `labels`, `holder`), serving it to
//! the peers under their budgets (`serve`, `budgets`), the querier's
//! replicas and screening (`replica`, `screen`), continuous screening
//! (`watch`), deconfliction (`deconflict`), and overlap counts (`overlap`).
//! Peers are reached through `exchange::client::PeerClient` only.
//!
//! Never logged: a match key, an OPRF output, a party name or identifier.

pub mod budgets;
pub mod deconflict;
pub mod findings;
pub mod holder;
pub mod keys;
pub mod labels;
pub mod overlap;
pub mod own;
pub mod replica;
pub mod screen;
pub mod serve;
pub mod watch;
