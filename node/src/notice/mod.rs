//! Notices: the model's rules, canonical bytes, signatures, and storage.
//!
//! A notice travels as a `SignedNotice`: the protobuf encoding of a `Notice`
//! exactly as signed. Receivers verify the signature over the bytes they got,
//! then decode; nothing is re-encoded before verification.

pub mod dates;
pub mod from_list;
pub mod issue;
pub mod json;
pub mod review;
pub mod seal;
pub mod store;
pub mod validate;
