//! The private path of `tessera eval screening`: the listed parties at one real node, the
//! queries screened from another over mutual TLS. (Filled in with the mk2 index.)

use serde::Serialize;

/// Pairs screened privately, and how many answers differed from the clear computation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrivateReport {
    pub pairs: usize,
    pub disagreements: usize,
}

impl PrivateReport {
    pub fn summary(&self) -> String {
        format!(
            "Private path: {} pairs screened through two nodes, {} answers differ from the clear computation",
            self.pairs, self.disagreements
        )
    }
}
