//! The gRPC handlers: thin, turning requests into calls on the node's modules
//! and module errors into `tonic::Status` with a message a person can act on.

pub mod federation;
pub mod guard;
pub mod inflight;
pub mod limits;
pub mod operator;

use tonic::{Request, Status};

use crate::identity::Identity;
use guard::Caller;

/// The caller the guard admitted.
pub fn caller<T>(request: &Request<T>) -> Result<Identity, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::unauthenticated("no verified caller"))
}

/// A request whose protobuf cannot be decoded is the caller's mistake:
/// tonic answers it INTERNAL, and this turns it into INVALID_ARGUMENT (its
/// message, which says what failed to decode, is kept).
pub fn undecodable_is_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let internal = headers.get("grpc-status").is_some_and(|v| v == "13");
    let undecodable = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m.contains("decode"));
    if internal && undecodable {
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}
