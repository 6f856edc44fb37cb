//! Issuing this agency's notices: new ones, imports, and new versions
//! (amend, renew, revoke). Each is validated, signed, stored and queued for
//! its recipients atomically; the caller flushes before acknowledging.

use tessera_proto::v1::{Notice, NoticeStatus, notice::Body};

use super::dates;
use super::seal::content_hash;
use super::store::{NoticeStoreError, Writer};
use super::validate::{self, Invalid};
use crate::context::Context;
use crate::identity::AgencyId;
use crate::policy::{self, PolicyError};

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

fn fill_defaults(ctx: &Context, notice: &mut Notice) -> Result<(), IssueError> {
    notice.origin = ctx.agency.to_string();
    notice.issued_at = time::OffsetDateTime::now_utc().unix_timestamp();
    if notice.marking == 0 {
        notice.marking = tessera_proto::v1::Marking::Amber as i32;
    }
    if notice.distribution.is_none() {
        notice.distribution = Some(policy::parse_to(&ctx.config.notices.default_to)?);
    }
    Ok(())
}

fn write_version(ctx: &Context, w: &Writer<'_>, notice: Notice) -> Result<Issued, IssueError> {
    write_version_to(ctx, w, notice, &[])
}

/// Writes a version for its distribution's recipients and for `also`.
fn write_version_to(
    ctx: &Context,
    w: &Writer<'_>,
    mut notice: Notice,
    also: &[AgencyId],
) -> Result<Issued, IssueError> {
    validate::notice(&notice)?;
    let distribution = notice.distribution.clone().unwrap_or_default();
    let mut recipients = policy::recipients(&distribution, &ctx.config)?;
    for peer in also {
        if !recipients.contains(peer) {
            recipients.push(peer.clone());
        }
    }
    let serial = notice.serial.clone();
    let version = notice.version;
    notice.seq = 0;
    let (seq, _) = w.append_own(notice, &recipients, &ctx.signing)?;
    Ok(Issued {
        serial,
        version,
        seq,
        recipients,
    })
}

/// Issues a new notice (version 1). An empty serial is assigned.
pub fn issue(ctx: &Context, mut notice: Notice) -> Result<Issued, IssueError> {
    fill_defaults(ctx, &mut notice)?;
    notice.version = 1;
    let w = ctx.notices.writer();
    if notice.serial.is_empty() {
        let next = ctx.notices.last_seq()? + 1;
        let year = time::OffsetDateTime::now_utc().year();
        notice.serial = format!("{}-{year}-{next:06}", ctx.agency);
    }
    validate::serial(&notice.serial)?;
    if w.latest_entry(&notice.origin, &notice.serial)?.is_some() {
        return Err(IssueError::Exists(notice.serial));
    }
    write_version(ctx, &w, notice)
}

/// Imports one notice keyed by its serial: new serials get version 1, a
/// changed one a new version, an unchanged one nothing.
pub fn import(ctx: &Context, mut notice: Notice) -> Result<Imported, IssueError> {
    fill_defaults(ctx, &mut notice)?;
    validate::serial(&notice.serial)?;
    let w = ctx.notices.writer();
    match w.latest_entry(&notice.origin, &notice.serial)? {
        None => {
            notice.version = 1;
            write_version(ctx, &w, notice).map(Imported::Created)
        }
        Some(latest) => {
            // Compare what the importer controls, at the version it would have.
            notice.version = latest.version;
            if content_hash(&notice) == latest.content_hash {
                return Ok(Imported::Unchanged);
            }
            let current = ctx
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
            write_version(ctx, &w, notice).map(Imported::Updated)
        }
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

/// Writes a new version of one of this agency's notices.
pub fn change(ctx: &Context, serial: &str, change: Change) -> Result<Issued, IssueError> {
    let origin = ctx.agency.to_string();
    let w = ctx.notices.writer();
    let current = ctx
        .notices
        .latest(&origin, serial)?
        .and_then(|s| s.envelope)
        .ok_or_else(|| IssueError::NotFound(serial.to_owned()))?;
    let mut notice: Notice = prost::Message::decode(current.notice.as_slice()).map_err(|_| {
        NoticeStoreError::Store(crate::store::StoreError::Corrupt { tree: "notices" })
    })?;
    if status_of(&notice) == Some(NoticeStatus::Revoked) {
        return Err(IssueError::Revoked(serial.to_owned()));
    }
    let revoking = matches!(change, Change::Revoke(_));
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
            set_status(&mut notice, NoticeStatus::Amended);
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
            set_status(&mut notice, NoticeStatus::Renewed);
        }
        Change::Revoke(reason) => {
            if let Some(Body::Denial(d)) = notice.body.as_mut() {
                if !reason.is_empty() {
                    d.reason = format!("revoked: {reason}");
                }
            } else if let Some(Body::Enforcement(e)) = notice.body.as_mut()
                && !reason.is_empty()
            {
                e.summary = format!("revoked: {reason}");
            }
            set_status(&mut notice, NoticeStatus::Revoked);
        }
    }
    // A revocation also reaches every configured peer that received an
    // earlier version, even one the distribution no longer names, so that
    // nobody goes on acting on a withdrawn notice.
    let also: Vec<AgencyId> = if revoking {
        let configured = ctx.peers.agencies();
        let mut earlier: Vec<AgencyId> = Vec::new();
        for version in ctx.notices.versions(&origin, serial)? {
            for name in version.recipients {
                if let Some(peer) = configured.iter().find(|p| p.as_str() == name)
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
    write_version_to(ctx, &w, notice, &also)
}

fn set_status(notice: &mut Notice, status: NoticeStatus) {
    match notice.body.as_mut() {
        Some(Body::Denial(d)) => d.status = status as i32,
        Some(Body::Enforcement(e)) => e.status = status as i32,
        Some(Body::Grant(_)) | None => {}
    }
}

/// The status of a notice's body.
pub fn status_of(notice: &Notice) -> Option<NoticeStatus> {
    let v = match notice.body.as_ref()? {
        Body::Denial(d) => d.status,
        Body::Enforcement(e) => e.status,
        // A grant notice is a record of a decision: always in force.
        Body::Grant(_) => NoticeStatus::InForce as i32,
    };
    NoticeStatus::try_from(v).ok()
}
