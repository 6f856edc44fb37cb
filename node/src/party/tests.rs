//! Spec conformance: the published test vectors, and property tests.
