//! Talking to peers: greetings now; notice sync joins it.

pub mod hello;
