//! [`AuditSink`]: the handle through which the node's workers and services
//! append to the chain. Appending never fails the operation being audited;
//! a failure to append is logged as an error, never silent.

use std::sync::Arc;

use super::{Action, AuditError, AuditLog};

/// Appends to the audit chain. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditSink(Arc<AuditLog>);

impl AuditSink {
    pub fn new(log: Arc<AuditLog>) -> Self {
        Self(log)
    }

    /// The chain itself (verification, export, checkpoints).
    pub fn log(&self) -> &AuditLog {
        &self.0
    }

    /// Appends one entry; `details` carry counts, serials, agency ids and
    /// hashes only (see the rule in `audit`).
    pub fn event(&self, actor: &str, action: Action, object: &str, details: &serde_json::Value) {
        if let Err(error) = self.0.record(actor, action, object, details) {
            tracing::error!(%error, action = action.as_str(), "cannot append to the audit chain");
        }
    }

    /// Appends one entry and returns once it is on disk: for what the node
    /// is about to disclose. The caller sends its answer only on `Ok`, so a
    /// crash can lose an answer but never the record of one.
    pub async fn disclosed(
        &self,
        actor: &str,
        action: Action,
        object: &str,
        details: &serde_json::Value,
    ) -> Result<(), AuditError> {
        let seq = self.0.record(actor, action, object, details)?;
        self.0.durable_through(seq).await
    }
}

/// An audit chain that cannot be read, verified or exported is lost data
/// as far as the operator is concerned.
impl From<AuditError> for tonic::Status {
    fn from(e: AuditError) -> Self {
        Self::data_loss(e.to_string())
    }
}

/// The status for an answer withheld because its audit entry could not be
/// made durable: the caller may retry once the node's storage recovers.
pub fn withheld(e: &AuditError) -> tonic::Status {
    tonic::Status::unavailable(format!(
        "the answer was withheld because it could not be audited: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_chain_that_cannot_be_read_is_data_loss() {
        let broken = AuditError::Broken {
            seq: 3,
            problem: "entry 3: hash mismatch".into(),
        };
        let status = tonic::Status::from(broken);
        assert_eq!(status.code(), tonic::Code::DataLoss);
        assert!(status.message().contains("entry 3"));
    }
}
