//! Established connections per peer agency on the federation port. Each
//! connection holds TLS and HTTP/2 state, so one certificate must not open
//! them without end: past the cap, a connection is kept only long enough to
//! tell its calls why (RESOURCE_EXHAUSTED, see `service::guard`), then cut.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::identity::AgencyId;

/// Open connections per agency, capped.
#[derive(Clone, Debug)]
pub struct PeerConns {
    open: Arc<Mutex<BTreeMap<AgencyId, usize>>>,
    cap: usize,
}

/// One counted connection; its place is given back when dropped.
#[derive(Debug)]
pub struct PeerConn {
    open: Arc<Mutex<BTreeMap<AgencyId, usize>>>,
    agency: AgencyId,
}

impl PeerConns {
    pub fn new(cap: usize) -> Self {
        Self {
            open: Arc::default(),
            cap,
        }
    }

    /// A place for one more connection of `agency`, or `Err(cap)`.
    pub fn admit(&self, agency: &AgencyId) -> Result<PeerConn, usize> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(agency.clone()).or_default();
        if *n >= self.cap {
            return Err(self.cap);
        }
        *n += 1;
        Ok(PeerConn {
            open: self.open.clone(),
            agency: agency.clone(),
        })
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.agency) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.agency);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_agency_has_its_own_cap_and_closed_connections_give_it_back() {
        let conns = PeerConns::new(2);
        let (a, b): (AgencyId, AgencyId) = ("FR-SBDU".parse().unwrap(), "US-BIS".parse().unwrap());
        let first = conns.admit(&a).unwrap();
        let _second = conns.admit(&a).unwrap();
        assert_eq!(conns.admit(&a).unwrap_err(), 2);
        assert!(conns.admit(&b).is_ok(), "another agency is not affected");
        drop(first);
        assert!(conns.admit(&a).is_ok());
    }
}
