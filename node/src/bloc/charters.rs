//! The charters this node holds — its own signature and the ones members'
//! nodes sent — and the version in force for a bloc. When a version comes
//! into force here for the first time, that is recorded once in the `blocs`
//! tree and audited (`bloc_charter`).
//!
//! Layout of the `blocs` tree:
//!
//! ```text
//! a bloc -> version in force when last seen:be32
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_proto::v1::{
    BlocCharter, Notice, StoredNotice, TrustedOperator, distribution::Target, notice::Body,
};

use super::BlocError;
use super::charter::{self, Tallied};
use crate::audit::{Action, AuditSink};
use crate::consult::deadline::SharedHolidays;
use crate::identity::AgencyId;
use crate::notice::store::NoticeStore;
use crate::store::Store;
use crate::store::keys::{Key, Tree, read_u32};

const TREE: &str = "blocs";
const ADOPTED: &str = "adopted charter version";

/// A stored notice's notice, if it decodes (it was verified when stored).
pub fn notice_of(stored: &StoredNotice) -> Option<Notice> {
    let envelope = stored.envelope.as_ref()?;
    prost::Message::decode(envelope.notice.as_slice()).ok()
}

/// One trusted-operator record held for a bloc.
#[derive(Debug, Clone)]
pub struct HeldRecord {
    pub origin: String,
    pub serial: String,
    pub record: TrustedOperator,
}

/// Charters and bloc records as this node holds them.
#[derive(Debug)]
pub struct Charters {
    pub agency: AgencyId,
    pub notices: Arc<NoticeStore>,
    pub audit: AuditSink,
    tree: Tree,
}

impl Charters {
    pub fn open(
        store: &Store,
        agency: AgencyId,
        notices: Arc<NoticeStore>,
        audit: AuditSink,
    ) -> Result<Self, crate::store::StoreError> {
        Ok(Self {
            agency,
            notices,
            audit,
            tree: Tree::open(store, TREE)?,
        })
    }

    fn origins(&self) -> Result<BTreeSet<String>, BlocError> {
        let mut origins: BTreeSet<String> = self.notices.counts()?.into_keys().collect();
        origins.insert(self.agency.to_string());
        Ok(origins)
    }

    /// Every version of `bloc`'s charter, with who signed it.
    pub fn versions(&self, bloc: &str) -> Result<Vec<Tallied>, BlocError> {
        let prefix = format!("{}{bloc}-", charter::SERIAL_PREFIX);
        let mut signed: Vec<(String, BlocCharter)> = Vec::new();
        for origin in self.origins()? {
            for stored in self.notices.list_latest_with_prefix(&origin, &prefix)? {
                if let Some(Notice {
                    body: Some(Body::Charter(c)),
                    ..
                }) = notice_of(&stored)
                    && c.bloc == bloc
                {
                    signed.push((origin.clone(), c));
                }
            }
        }
        Ok(charter::tally(signed))
    }

    /// The blocs this agency signed a charter of.
    pub fn own_blocs(&self) -> Result<Vec<String>, BlocError> {
        let mut out = BTreeSet::new();
        for stored in self
            .notices
            .list_latest_with_prefix(self.agency.as_str(), charter::SERIAL_PREFIX)?
        {
            if let Some(Notice {
                body: Some(Body::Charter(c)),
                ..
            }) = notice_of(&stored)
            {
                out.insert(c.bloc);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The charter in force for `bloc`, which must list this agency. A
    /// newer version not every member signed yet does not replace it; when
    /// no version is complete the node refuses to act.
    pub fn in_force(&self, bloc: &str) -> Result<Tallied, BlocError> {
        charter::bloc_name("bloc", bloc).map_err(|e| BlocError::Invalid(e.to_string()))?;
        let versions = self.versions(bloc)?;
        let Some(t) = charter::in_force(&versions).cloned() else {
            let newest = versions
                .iter()
                .max_by_key(|t| (t.charter.charter_version, t.signed.len()))
                .ok_or_else(|| BlocError::NoCharter(bloc.to_owned()))?;
            return Err(BlocError::Unsigned {
                bloc: bloc.to_owned(),
                version: newest.charter.charter_version,
                missing: newest.missing.join(", "),
            });
        };
        if !t.charter.members.iter().any(|m| m == self.agency.as_str()) {
            return Err(BlocError::NotMember {
                bloc: bloc.to_owned(),
                agency: self.agency.to_string(),
            });
        }
        self.adopt(&t)?;
        Ok(t)
    }

    /// The bloc to act for when the operator names none: the only one this
    /// agency signed a charter of.
    pub fn only_bloc(&self) -> Result<String, BlocError> {
        let mut blocs = self.own_blocs()?;
        match blocs.len() {
            1 => Ok(blocs.remove(0)),
            0 => Err(BlocError::Invalid(
                "this agency has signed no bloc charter; name the bloc with --bloc".into(),
            )),
            _ => Err(BlocError::Invalid(format!(
                "this agency is in several blocs ({}); name one with --bloc",
                blocs.join(", ")
            ))),
        }
    }

    /// Records and audits a version coming into force here, once.
    fn adopt(&self, t: &Tallied) -> Result<(), BlocError> {
        let key = Key::tag(b'a').text(&t.charter.bloc);
        let seen = match self.tree.get(&key, ADOPTED)? {
            Some(v) => read_u32(&v).ok_or_else(|| self.tree.corrupt(ADOPTED))?,
            None => 0,
        };
        if seen >= t.charter.charter_version {
            return Ok(());
        }
        self.tree.insert(
            &key,
            t.charter.charter_version.to_be_bytes().to_vec(),
            ADOPTED,
        )?;
        self.audit.event(
            self.agency.as_str(),
            Action::BlocCharter,
            &t.charter.bloc,
            &serde_json::json!({
                "version": t.charter.charter_version,
                "hash": hex::encode(t.hash),
                "members": t.charter.members,
                "previous": seen,
            }),
        );
        tracing::info!(bloc = %t.charter.bloc, version = t.charter.charter_version, "bloc charter in force");
        Ok(())
    }

    /// The trusted-operator records the members of `t` shared with the bloc
    /// (and this agency's own), newest version of each.
    pub fn trusted(&self, t: &Tallied) -> Result<Vec<HeldRecord>, BlocError> {
        let mut out = Vec::new();
        for member in &t.charter.members {
            for stored in self
                .notices
                .list_latest_with_prefix(member, super::trusted::SERIAL_PREFIX)?
            {
                let Some(n) = notice_of(&stored) else {
                    continue;
                };
                let to_bloc = matches!(
                    n.distribution.as_ref().and_then(|d| d.target.as_ref()),
                    Some(Target::Group(g)) if *g == t.charter.bloc
                );
                let own = member == self.agency.as_str();
                if let Some(Body::Trusted(record)) = n.body
                    && (to_bloc || own)
                {
                    out.push(HeldRecord {
                        origin: n.origin,
                        serial: n.serial,
                        record,
                    });
                }
            }
        }
        Ok(out)
    }
}

impl SharedHolidays for Charters {
    /// This agency's and `peer`'s holidays in every charter in force that
    /// lists both. A bloc whose charter cannot be read adds none.
    fn with_peer(&self, peer: &str) -> Vec<time::Date> {
        let me = self.agency.as_str();
        let blocs = match self.own_blocs() {
            Ok(b) => b,
            Err(error) => {
                tracing::warn!(%error, "bloc charters unreadable: consultation deadlines without charter holidays");
                return Vec::new();
            }
        };
        blocs
            .iter()
            .filter_map(|b| self.in_force(b).ok())
            .filter(|t| peer != me && t.charter.members.iter().any(|m| m == peer))
            .flat_map(|t| {
                charter::holidays(&t.charter, me)
                    .chain(charter::holidays(&t.charter, peer))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
