//! No-undercut consultations: working-day deadlines (`deadline`), the rules
//! of the exchange as a pure state machine (`machine`), our steps signed,
//! stored and alerted (`flow`), their delivery to the peer (`deliver`), the
//! peer's steps verified and applied (`inbound`), and their storage
//! (`store`).

pub mod deadline;
pub mod deliver;
pub mod flow;
mod inbound;
pub mod machine;
pub mod store;
