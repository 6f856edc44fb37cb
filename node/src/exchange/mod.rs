//! Talking to peers: greetings, pushing our notices, pulling theirs.

pub mod hello;
pub mod pull;
pub mod push;
pub mod receive;
