//! Issuing this agency's notices: new ones, imports, and new versions
//! (amend, renew, revoke). Each is validated, signed, stored and queued for
//! its recipients atomically by the [`Issuer`]; [`Issuer::publish`] then
//! makes them durable and wakes the workers that send and index them.

use std::sync::Arc;

use tessera_proto::v1::{Notice, NoticeStatus, notice::Body};

use super::dates;
use super::seal::content_hash;
use super::store::{NoticeStore, NoticeStoreError, Writer};
use super::validate::{self, Invalid};
use crate::identity::AgencyId;
use crate::policy::{self, Policy, PolicyError};
use crate::signing::SigningKey;
use crate::store::{Store, StoreError};
use crate::wake::Wakers;

/// Why a notice could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("distribution: {0}")]
    Policy(#[from] PolicyError),
    #[error("serial {0} already exists; amend, renew or revoke it instead")]
    Exists(String),
    #[error("no notice of this agency has serial {0}")]
    NotFound(String),
    #[error("{0} is revoked; a revoked notice cannot change")]
    Revoked(String),
    #[error(transparent)]
    Store(#[from] NoticeStoreError),
}

impl From<StoreError> for IssueError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.into())
    }
}

impl From<IssueError> for tonic::Status {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Invalid(_) | IssueError::Policy(_) => Self::invalid_argument(e.to_string()),
            IssueError::Exists(_) => Self::already_exists(e.to_string()),
            IssueError::NotFound(_) => Self::not_found(e.to_string()),
            IssueError::Revoked(_) => Self::failed_precondition(e.to_string()),
            IssueError::Store(e) => e.into(),
        }
    }
}

/// The outcome of issuing one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub serial: String,
    pub version: u32,
    pub seq: u64,
    pub recipients: Vec<AgencyId>,
}

/// What an import did to one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Created(Issued),
    Updated(Issued),
    Unchanged,
}

/// Issues this agency's notices.
#[derive(Debug)]
pub struct Issuer {
    pub agency: AgencyId,
    pub notices: Arc<NoticeStore>,
    pub signing: Arc<SigningKey>,
    pub policy: Policy,
    /// The distribution of a notice that names none (`notices.default_to`).
    pub default_to: String,
    pub store: Store,
    pub wakers: Wakers,
}

impl Issuer {
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Makes what was issued durable, then wakes the push workers of
    /// `recipients`, the indexer and the review check.
    pub async fn publish(&self, recipients: &[AgencyId]) -> Result<(), StoreError> {
        self.store.flush().await?;
        self.wakers.push(recipients);
        self.wakers.own_notices_changed();
        Ok(())
    }

    fn fill_defaults(&self, notice: &mut Notice) -> Result<(), IssueError> {
        notice.origin = self.agency.to_string();
        notice.issued_at = time::OffsetDateTime::now_utc().unix_timestamp();
        if notice.marking == 0 {
            notice.marking = tessera_proto::v1::Marking::Amber as i32;
        }
        if notice.distribution.is_none() {
            notice.distribution = Some(policy::parse_to(&self.default_to)?);
        }
        Ok(())
    }

    fn write_version(&self, w: &Writer<'_>, notice: Notice) -> Result<Issued, IssueError> {
        self.write_version_to(w, notice, &[])
    }

    /// Writes a version for its distribution's recipients and for `also`.
    fn write_version_to(
        &self,
        w: &Writer<'_>,
        mut notice: Notice,
        also: &[AgencyId],
    ) -> Result<Issued, IssueError> {
        validate::notice(&notice)?;
        let distribution = notice.distribution.clone().unwrap_or_default();
        let mut recipients = self.policy.recipients(&distribution)?;
        for peer in also {
            if !recipients.contains(peer) {
                recipients.push(peer.clone());
            }
        }
        let serial = notice.serial.clone();
        let version = notice.version;
        notice.seq = 0;
        let (seq, _) = w.append_own(notice, &recipients, &self.signing)?;
        Ok(Issued {
            serial,
            version,
            seq,
            recipients,
        })
    }

    /// Issues a new notice (version 1). An empty serial is assigned.
    pub fn issue(&self, notice: Notice) -> Result<Issued, IssueError> {
        self.issue_also(notice, &[])
    }

    /// As [`Issuer::issue`], and also to `also` whatever the distribution
    /// (an undercut notice always reaches the denying agency).
    pub fn issue_also(&self, mut notice: Notice, also: &[AgencyId]) -> Result<Issued, IssueError> {
        self.fill_defaults(&mut notice)?;
        notice.version = 1;
        let w = self.notices.writer();
        if notice.serial.is_empty() {
            let next = self.notices.last_seq()? + 1;
            let year = time::OffsetDateTime::now_utc().year();
            notice.serial = format!("{}-{year}-{next:06}", self.agency);
        }
        validate::serial(&notice.serial)?;
        if w.latest_entry(&notice.origin, &notice.serial)?.is_some() {
            return Err(IssueError::Exists(notice.serial));
        }
        let also: Vec<AgencyId> = also
            .iter()
            .filter(|a| self.policy.peers().any(|p| p == *a))
            .cloned()
            .collect();
        self.write_version_to(&w, notice, &also)
    }

    /// Imports one notice keyed by its serial: new serials get version 1, a
    /// changed one a new version, an unchanged one nothing.
    pub fn import(&self, mut notice: Notice) -> Result<Imported, IssueError> {
        self.fill_defaults(&mut notice)?;
        validate::serial(&notice.serial)?;
        let w = self.notices.writer();
        match w.latest_entry(&notice.origin, &notice.serial)? {
            None => {
                notice.version = 1;
                self.write_version(&w, notice).map(Imported::Created)
            }
            Some(latest) => {
                // Compare what the importer controls, at the version it would have.
                notice.version = latest.version;
                if content_hash(&notice) == latest.content_hash {
                    return Ok(Imported::Unchanged);
                }
                let current = self
                    .notices
                    .get(&notice.origin, &notice.serial, latest.version)?
                    .and_then(|s| s.envelope)
                    .and_then(|e| <Notice as prost::Message>::decode(e.notice.as_slice()).ok());
                if current.as_ref().and_then(status_of) == Some(NoticeStatus::Revoked) {
                    return Err(IssueError::Revoked(notice.serial));
                }
                // The status stays as imported, so that importing the same file
                // again finds this version unchanged.
                notice.version = latest.version + 1;
                self.write_version(&w, notice).map(Imported::Updated)
            }
        }
    }

    /// Writes a new version of one of this agency's notices.
    pub fn change(&self, serial: &str, change: Change) -> Result<Issued, IssueError> {
        let origin = self.agency.to_string();
        let w = self.notices.writer();
        let current = self
            .notices
            .latest(&origin, serial)?
            .and_then(|s| s.envelope)
            .ok_or_else(|| IssueError::NotFound(serial.to_owned()))?;
        let mut notice: Notice =
            prost::Message::decode(current.notice.as_slice()).map_err(|_| StoreError::Corrupt {
                tree: "notices",
                record: "notice version",
            })?;
        if status_of(&notice) == Some(NoticeStatus::Revoked) {
            return Err(IssueError::Revoked(serial.to_owned()));
        }
        let revoking = matches!(change, Change::Revoke(_));
        apply_change(&mut notice, change);
        // A revocation also reaches every configured peer that received an
        // earlier version, even one the distribution no longer names, so that
        // nobody goes on acting on a withdrawn notice.
        let also: Vec<AgencyId> = if revoking {
            let mut earlier: Vec<AgencyId> = Vec::new();
            for version in self.notices.versions(&origin, serial)? {
                for name in version.recipients {
                    if let Some(peer) = self.policy.peers().find(|p| p.as_str() == name)
                        && !earlier.contains(peer)
                    {
                        earlier.push(peer.clone());
                    }
                }
            }
            earlier
        } else {
            Vec::new()
        };
        notice.version += 1;
        notice.issued_at = time::OffsetDateTime::now_utc().unix_timestamp();
        self.write_version_to(&w, notice, &also)
    }
}

/// What a new version changes.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new body; distribution and marking as given (or kept when absent).
    Amend(Box<Notice>),
    /// A new review date; `None` means three years from today.
    Renew(Option<String>),
    /// Revocation, with a reason.
    Revoke(String),
}

/// Applies `change` to the current version's body and status.
fn apply_change(notice: &mut Notice, change: Change) {
    match change {
        Change::Amend(new) => {
            let new = *new;
            notice.body = new.body;
            if new.distribution.is_some() {
                notice.distribution = new.distribution;
            }
            if new.marking != 0 {
                notice.marking = new.marking;
            }
            set_status(notice, NoticeStatus::Amended);
        }
        Change::Renew(until) => {
            let until = match until {
                Some(d) if !d.is_empty() => d,
                _ => dates::format(dates::add_years(dates::today(), 3)),
            };
            if let Some(Body::Denial(d)) = notice.body.as_mut() {
                d.review_due = until;
            } else if let Some(Body::Enforcement(e)) = notice.body.as_mut() {
                e.expires = until;
            }
            set_status(notice, NoticeStatus::Renewed);
        }
        Change::Revoke(reason) => {
            if let Some(Body::Denial(d)) = notice.body.as_mut() {
                if !reason.is_empty() {
                    d.reason = format!("revoked: {reason}");
                }
            } else if let Some(Body::Trusted(t)) = notice.body.as_mut() {
                t.standing = "revoked".into();
                t.reason.clone_from(&reason);
            } else if let Some(Body::Enforcement(e)) = notice.body.as_mut()
                && !reason.is_empty()
            {
                e.summary = format!("revoked: {reason}");
            }
            set_status(notice, NoticeStatus::Revoked);
        }
    }
}

fn set_status(notice: &mut Notice, status: NoticeStatus) {
    match notice.body.as_mut() {
        Some(Body::Denial(d)) => d.status = status as i32,
        Some(Body::Enforcement(e)) => e.status = status as i32,
        Some(Body::Trusted(t)) => t.status = status as i32,
        Some(Body::Grant(_) | Body::Charter(_)) | None => {}
    }
}

/// The status of a notice's body.
pub fn status_of(notice: &Notice) -> Option<NoticeStatus> {
    let v = match notice.body.as_ref()? {
        Body::Denial(d) => d.status,
        Body::Enforcement(e) => e.status,
        // A grant notice is a record of a decision, and a charter version is
        // replaced by the next version: always in force.
        Body::Grant(_) | Body::Charter(_) => NoticeStatus::InForce as i32,
        Body::Trusted(t) => t.status,
    };
    NoticeStatus::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::test_support::{agency, denial, org, signing_key, temp_store};

    fn issuer() -> (tempfile::TempDir, Issuer) {
        let (dir, store) = temp_store();
        let own = agency("DE-BAFA");
        let peers = [agency("FR-SBDU"), agency("US-BIS")];
        let groups = BTreeMap::from([("eu".to_owned(), vec!["FR-SBDU".to_owned()])]);
        let issuer = Issuer {
            agency: own.clone(),
            notices: Arc::new(NoticeStore::open(&store, own.clone()).unwrap()),
            signing: signing_key(),
            policy: Policy::new(own, peers.clone(), groups),
            default_to: "local".into(),
            store,
            wakers: Wakers::new(&peers),
        };
        (dir, issuer)
    }

    fn notice(serial: &str, to: &str) -> Notice {
        denial(
            "XX-IGNORED",
            serial,
            to,
            &[org("Example Trading FZE", "AE")],
        )
    }

    fn code(e: IssueError) -> tonic::Code {
        tonic::Status::from(e).code()
    }

    #[test]
    fn a_new_notice_gets_a_serial_our_origin_and_its_distributions_recipients() {
        crate::test_support::run(async {
            let (_dir, issuer) = issuer();
            let issued = issuer.issue(notice("", "group:eu")).unwrap();
            let year = time::OffsetDateTime::now_utc().year();
            assert_eq!(issued.serial, format!("DE-BAFA-{year}-000001"));
            assert_eq!((issued.version, issued.seq), (1, 1));
            assert_eq!(issued.recipients, [agency("FR-SBDU")]);
            issuer.publish(&issued.recipients).await.unwrap();
            let stored = issuer.notices.latest("DE-BAFA", &issued.serial).unwrap();
            assert!(stored.is_some());
            let local = issuer.issue(notice("S-2", "local")).unwrap();
            assert!(local.recipients.is_empty());
            assert_eq!(
                code(issuer.issue(notice("S-2", "all")).unwrap_err()),
                tonic::Code::AlreadyExists
            );
            assert_eq!(
                code(issuer.issue(notice("S-3", "group:nato")).unwrap_err()),
                tonic::Code::InvalidArgument
            );
        });
    }

    #[test]
    fn an_import_is_idempotent_and_a_change_is_a_new_version() {
        let (_dir, issuer) = issuer();
        assert!(matches!(
            issuer.import(notice("L-1", "all")).unwrap(),
            Imported::Created(_)
        ));
        assert_eq!(
            issuer.import(notice("L-1", "all")).unwrap(),
            Imported::Unchanged
        );
        let mut changed = notice("L-1", "all");
        if let Some(Body::Denial(d)) = changed.body.as_mut() {
            d.reason = "new evidence".into();
        }
        let Imported::Updated(v2) = issuer.import(changed).unwrap() else {
            panic!("not updated")
        };
        assert_eq!(v2.version, 2);
    }

    #[test]
    fn a_revocation_reaches_every_earlier_recipient_and_is_final() {
        let (_dir, issuer) = issuer();
        issuer.issue(notice("S-1", "peer:FR-SBDU")).unwrap();
        let amended = issuer
            .change("S-1", Change::Amend(Box::new(notice("S-1", "peer:US-BIS"))))
            .unwrap();
        assert_eq!(amended.recipients, [agency("US-BIS")]);
        let revoked = issuer
            .change("S-1", Change::Revoke("annulled".into()))
            .unwrap();
        assert_eq!(revoked.version, 3);
        let mut to = revoked.recipients.clone();
        to.sort();
        assert_eq!(to, [agency("FR-SBDU"), agency("US-BIS")]);
        assert_eq!(
            code(issuer.change("S-1", Change::Renew(None)).unwrap_err()),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            code(issuer.change("S-404", Change::Renew(None)).unwrap_err()),
            tonic::Code::NotFound
        );
    }
}
