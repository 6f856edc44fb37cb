//! The gRPC handlers: thin, turning requests into calls on the node's modules
//! and module errors into `tonic::Status` with a message a person can act on.

pub mod federation;
pub mod guard;
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
