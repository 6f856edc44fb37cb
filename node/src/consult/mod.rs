//! No-undercut consultations: working-day deadlines (`deadline`), the
//! exchange of signed steps (`flow`) and their storage (`store`).

pub mod deadline;
pub mod flow;
pub mod store;
