//! Who may call which surface: the per-request identity check.
//!
//! The TLS layer has already proven the chain and revocation status at
//! handshake time; this guard decides the role. Federation accepts only node
//! certificates of configured peers, Operator only operator certificates of the
//! local agency. It also re-checks the certificate against CRLs reloaded since
//! the connection was made, so a revocation takes effect on open connections.
//! Every refusal is logged with the caller's identity (never a party's).

use std::sync::Arc;

use tonic::{Request, Status};

use crate::audit::{Action, AuditSink};
use crate::identity::{AgencyId, Identity, Role};
use crate::listener::ConnInfo;
use crate::peers::PeerTable;
use crate::tls::TlsState;

/// The verified caller, placed in request extensions for handlers.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

/// The surface a guard protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Federation,
    Operator,
}

/// Checks each request on one surface.
#[derive(Debug, Clone)]
pub struct Guard {
    surface: Surface,
    agency: AgencyId,
    tls: Arc<TlsState>,
    peers: Arc<PeerTable>,
    audit: AuditSink,
}

impl Guard {
    pub fn new(
        surface: Surface,
        agency: AgencyId,
        tls: Arc<TlsState>,
        peers: Arc<PeerTable>,
        audit: AuditSink,
    ) -> Self {
        Self {
            surface,
            agency,
            tls,
            peers,
            audit,
        }
    }

    pub fn check<T>(&self, mut request: Request<T>) -> Result<Request<T>, Status> {
        let caller = self.admit(request.extensions().get::<ConnInfo>())?;
        request.extensions_mut().insert(Caller(caller));
        Ok(request)
    }

    fn admit(&self, info: Option<&ConnInfo>) -> Result<Identity, Status> {
        let Some(info) = info else {
            return Err(self.refuse("?", Status::unauthenticated("no TLS session")));
        };
        let remote = info.remote.to_string();
        let identity = match &info.identity {
            Ok(identity) => identity.clone(),
            Err(e) => {
                return Err(self.refuse(
                    &remote,
                    Status::unauthenticated(format!("client certificate refused: {e}")),
                ));
            }
        };
        if let Some(cert) = &info.cert
            && self.tls.current().material.is_revoked(cert)
        {
            return Err(self.refuse(
                &identity.to_string(),
                Status::unauthenticated("client certificate has been revoked"),
            ));
        }
        if let Some(cap) = info.over_cap {
            // Not audited: a flood of connections would flood the chain (the
            // listener logs them, a few per window).
            return Err(Status::resource_exhausted(format!(
                "too many connections from {}: at most {cap} at once on this port; \
                 make calls over the connections already open (this one is closed shortly)",
                identity.agency
            )));
        }
        match (self.surface, &identity.role) {
            (Surface::Federation, Role::Node) => {
                if self.peers.contains(&identity.agency) {
                    Ok(identity)
                } else {
                    Err(self.refuse(
                        &identity.to_string(),
                        Status::permission_denied(format!(
                            "{} is not a configured peer of {}",
                            identity.agency, self.agency
                        )),
                    ))
                }
            }
            (Surface::Federation, Role::Operator { .. }) => Err(self.refuse(
                &identity.to_string(),
                Status::permission_denied(
                    "operator certificates are not accepted on the federation port; use the operator port",
                ),
            )),
            (Surface::Operator, Role::Operator { .. }) => {
                if identity.agency == self.agency {
                    Ok(identity)
                } else {
                    Err(self.refuse(
                        &identity.to_string(),
                        Status::permission_denied(format!(
                            "an operator of {} cannot operate the node of {}",
                            identity.agency, self.agency
                        )),
                    ))
                }
            }
            (Surface::Operator, Role::Node) => Err(self.refuse(
                &identity.to_string(),
                Status::permission_denied(
                    "node certificates are not accepted on the operator port; use an operator certificate",
                ),
            )),
        }
    }

    fn refuse(&self, who: &str, status: Status) -> Status {
        tracing::warn!(surface = ?self.surface, caller = who, code = ?status.code(), reason = status.message(), "call refused");
        self.audit.event(
            who,
            Action::CallRefused,
            match self.surface {
                Surface::Federation => "federation",
                Surface::Operator => "operator",
            },
            &serde_json::json!({ "code": format!("{:?}", status.code()) }),
        );
        status
    }
}
