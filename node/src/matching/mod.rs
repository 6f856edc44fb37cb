//! Private matching as the node runs it, on the crypto of `privacy`:
//! the holder's keys and index (`keys`, `labels`, `holder`), the querier's
//! replicas and screening (`replica`, `screen`), continuous screening and
//! deconfliction (`watch`), and overlap counts (`overlap`).
//!
//! Never logged: a match key, an OPRF output, a party name or identifier.

pub mod holder;
pub mod keys;
pub mod labels;
pub mod overlap;
pub mod replica;
pub mod screen;
pub mod watch;
