//! `tessera eval`: measurements of matching on the public lists, kept out of the node.
//!
//! * [`keys`]: the exact keys on the real lists (alias recall, cross-script agreement,
//!   collisions between distinct entities, keys per party, derivation speed);
//! * [`screening`]: precision and recall of screening on labelled pairs
//!   ([`dataset`], [`perturb`]), in the clear ([`oracle`]) and through the private path of
//!   real nodes ([`private`]).
//!
//! Reports hold counts and rates only, never a name.

pub mod dataset;
pub mod keys;
pub mod oracle;
pub mod perturb;
pub mod private;
pub mod screening;
pub mod size;
