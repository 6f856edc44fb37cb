//! Talking to peers: the calls we make (`client`, with an in-memory `fake`
//! for tests), greetings (`hello`), pushing our notices (`push`), pulling
//! theirs (`pull`), accepting what they send (`receive`) and serving our
//! feed (`feed`).

pub mod client;
#[cfg(test)]
pub mod fake;
pub mod feed;
pub mod hello;
pub mod pull;
pub mod push;
pub mod receive;
