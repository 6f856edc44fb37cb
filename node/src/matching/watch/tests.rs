//! Tests of the watch list.

use std::time::Duration;

use tessera_proto::v1::{IndexDelta, Notice, distribution::Target};

use super::*;
use crate::exchange::fake::FakePeer;
use crate::policy::DisclosureLevel;
use crate::privacy::OprfKey;
use crate::test_support::{
    MatchingWorld, agency, audited, denial, honest_peer, index_delta, matching_world, org,
};

const LISTED: &str = "Example Trading FZE";

fn entry(purpose: WatchPurpose, contact: &str) -> WatchEntry {
    WatchEntry {
        party: Some(crate::notice::json::party_to_wire(&org(LISTED, "AE"))),
        reference: "APP-2026-0042".into(),
        purpose: purpose.as_str().into(),
        contact: contact.into(),
        ..WatchEntry::default()
    }
}

/// FR-SBDU up with `key`, its index for us already holding `rows` (a
/// reset delta at position 1).
async fn peer_with(w: &MatchingWorld, key: &Arc<OprfKey>, first: IndexDelta) {
    let b = agency("FR-SBDU");
    w.peers.add(
        &b,
        FakePeer {
            index: vec![first],
            ..honest_peer(key)
        },
    );
    w.sync.pull(&b).await.unwrap();
}

fn empty_index(key: &OprfKey) -> IndexDelta {
    index_delta(key, &[], DisclosureLevel::Pointer)
}

fn listed(key: &OprfKey, pos: u64) -> IndexDelta {
    let mut d = index_delta(
        key,
        &[denial("FR-SBDU", "S-1", "all", &[org(LISTED, "AE")])],
        DisclosureLevel::Pointer,
    );
    d.pos = pos;
    d.reset = pos == 1;
    d
}

/// Adds LISTED to the watch list: (ids, alerts raised, peers that could not evaluate).
async fn add(
    w: &MatchingWorld,
    purpose: WatchPurpose,
    contact: &str,
) -> (Vec<u64>, u32, Vec<tessera_proto::v1::PeerProblem>) {
    w.watcher.add(vec![entry(purpose, contact)]).await.unwrap()
}

fn kinds(w: &MatchingWorld) -> Vec<String> {
    w.alerts
        .after(0)
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect()
}

#[test]
fn a_new_denial_anywhere_alerts_a_watched_party_with_no_new_query() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let key = Arc::new(OprfKey::generate(1));
        peer_with(&w, &key, empty_index(&key)).await;
        let (ids, alerts, problems) = add(&w, WatchPurpose::Watch, "").await;
        assert_eq!((ids.len(), alerts), (1, 0));
        assert!(problems.is_empty(), "{problems:?}");
        let asked = w.peers.peer(&agency("FR-SBDU")).evaluated;
        // FR-SBDU denies the party: its next delta alerts us, locally.
        w.peers
            .update(&agency("FR-SBDU"), |p| p.index.push(listed(&key, 2)));
        w.sync.pull(&agency("FR-SBDU")).await.unwrap();
        assert_eq!(kinds(&w), ["watch"]);
        assert_eq!(
            w.peers.peer(&agency("FR-SBDU")).evaluated,
            asked,
            "no new query"
        );
        let a = &w.alerts.after(0).unwrap()[0];
        assert_eq!(
            (a.watch_id, a.reference.as_str()),
            (ids[0], "APP-2026-0042")
        );
        assert!(audited(&w.audit).contains(&"match_disclosed".to_owned()));
        // The same rows again raise nothing new.
        w.watcher
            .check_new_rows(
                &agency("FR-SBDU"),
                &w.replicas.get(&agency("FR-SBDU")).unwrap(),
                &[],
                false,
            )
            .await;
        assert_eq!(kinds(&w).len(), 1);
    });
}

#[test]
fn a_party_already_listed_alerts_at_once_and_a_removed_entry_stops_matching() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let key = Arc::new(OprfKey::generate(1));
        peer_with(&w, &key, listed(&key, 1)).await;
        let (ids, alerts, _) = add(&w, WatchPurpose::Watch, "").await;
        assert_eq!(alerts, 1);
        assert!(w.watcher.store().remove(ids[0]).unwrap());
        // A later version of the denial: rows for a removed entry open, but alert nobody.
        let mut again = listed(&key, 2);
        again.removes = again.adds.iter().map(|a| a[..40].to_vec()).collect();
        w.peers.update(&agency("FR-SBDU"), |p| p.index.push(again));
        w.sync.pull(&agency("FR-SBDU")).await.unwrap();
        assert_eq!(kinds(&w).len(), 1);
        assert!(w.watcher.store().list().unwrap().is_empty());
    });
}

/// One alert per notice says what all its rows say together, whichever row opened
/// first, and the same when the rows arrive later in a delta.
#[test]
fn a_watch_alert_carries_the_strongest_key_and_every_kind() {
    crate::test_support::run(async {
        for already_listed in [true, false] {
            let w = matching_world(&["FR-SBDU"]);
            let key = Arc::new(OprfKey::generate(1));
            let first = if already_listed {
                listed(&key, 1)
            } else {
                empty_index(&key)
            };
            peer_with(&w, &key, first).await;
            add(&w, WatchPurpose::Watch, "").await;
            if !already_listed {
                w.peers
                    .update(&agency("FR-SBDU"), |p| p.index.push(listed(&key, 2)));
                w.sync.pull(&agency("FR-SBDU")).await.unwrap();
            }
            let alerts = w.alerts.after(0).unwrap();
            assert_eq!(alerts.len(), 1, "one alert per notice");
            let m = alerts[0].r#match.clone().unwrap();
            assert_eq!(m.strength, "strong", "{m:?}");
            for kind in ["name_country", "name", "sound"] {
                assert!(m.key_kinds.iter().any(|k| k == kind), "{kind}: {m:?}");
            }
        }
    });
}

#[test]
fn peers_down_lying_or_over_budget_are_named_and_the_entry_is_kept() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU", "US-BIS", "JP-METI"]);
        let key = Arc::new(OprfKey::generate(1));
        peer_with(&w, &key, listed(&key, 1)).await;
        for other in ["US-BIS", "JP-METI"] {
            w.peers.add(
                &agency(other),
                FakePeer {
                    index: vec![listed(&key, 1)],
                    ..honest_peer(&key)
                },
            );
            w.sync.pull(&agency(other)).await.unwrap();
        }
        w.peers.update(&agency("FR-SBDU"), |p| p.down = true);
        w.peers.update(&agency("US-BIS"), |p| {
            p.key = Some(Arc::new(OprfKey::generate(1)));
        });
        w.peers.update(&agency("JP-METI"), |p| p.budget = Some(0));
        let (ids, alerts, problems) = add(&w, WatchPurpose::Watch, "").await;
        assert_eq!((ids.len(), alerts), (1, 0));
        let why: BTreeMap<&str, &str> = problems
            .iter()
            .map(|p| (p.peer.as_str(), p.reason.as_str()))
            .collect();
        assert!(why["FR-SBDU"].starts_with("unreachable:"), "{why:?}");
        assert!(why["US-BIS"].contains("does not verify"), "{why:?}");
        assert!(
            why["JP-METI"].starts_with("over its query budget"),
            "{why:?}"
        );
        assert_eq!(w.watcher.store().list().unwrap().len(), 1);
    });
}

#[test]
fn a_slow_peer_delays_the_answer_but_it_is_evaluated() {
    crate::test_support::run_paused(async {
        let w = matching_world(&["FR-SBDU"]);
        let key = Arc::new(OprfKey::generate(1));
        peer_with(&w, &key, listed(&key, 1)).await;
        w.peers
            .update(&agency("FR-SBDU"), |p| p.delay = Duration::from_secs(20));
        let started = tokio::time::Instant::now();
        let (_, alerts, problems) = add(&w, WatchPurpose::Watch, "").await;
        assert_eq!((alerts, problems.len()), (1, 0));
        assert_eq!(started.elapsed(), Duration::from_secs(20));
    });
}

#[test]
fn an_investigation_meeting_a_peers_investigation_deconflicts_and_tells_the_peer() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let key = Arc::new(OprfKey::generate(1));
        // FR-SBDU investigates the party: a local enforcement notice, in its
        // index for us only under the deconfliction prefix.
        let mut theirs: Notice = denial("FR-SBDU", "S-9", "local", &[org(LISTED, "AE")]);
        let Some(tessera_proto::v1::notice::Body::Denial(d)) = theirs.body.take() else {
            unreachable!()
        };
        theirs.body = Some(tessera_proto::v1::notice::Body::Enforcement(
            tessera_proto::v1::EnforcementNotice {
                r#type: tessera_proto::v1::EnforcementType::InvestigationOpened as i32,
                parties: d.parties,
                contact: "FR desk".into(),
                status: tessera_proto::v1::NoticeStatus::InForce as i32,
                ..Default::default()
            },
        ));
        assert!(matches!(
            theirs.distribution.as_ref().and_then(|d| d.target.as_ref()),
            Some(Target::Local(_))
        ));
        let rows = labels::rows_for_peer(&theirs, &[], "DE-BAFA", DisclosureLevel::Full, "x");
        assert!(
            rows.iter()
                .all(|(k, l)| k.starts_with(labels::DECONFLICT_PREFIX)
                    && l.disclosure.level() == "pointer")
        );
        let mut delta = index_delta(&key, &[], DisclosureLevel::Pointer);
        delta.adds = crate::privacy::build(&key, &rows)
            .unwrap()
            .iter()
            .map(IndexEntry::to_bytes)
            .collect();
        peer_with(&w, &key, delta).await;
        // A watch entry does not find an investigation ...
        let (_, alerts, _) = add(&w, WatchPurpose::Watch, "").await;
        assert_eq!(alerts, 0);
        // ... an investigation subject does, and the peer is told.
        let (_, alerts, _) = add(&w, WatchPurpose::Investigation, "DE desk").await;
        assert_eq!(alerts, 1);
        assert_eq!(kinds(&w), ["deconfliction"]);
        let queued = w.hits.pending(&agency("FR-SBDU")).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].1.contact, "DE desk");
        assert!(audited(&w.audit).contains(&"deconfliction_alert".to_owned()));
        let wake = w.wakers.peer(&agency("FR-SBDU"));
        tokio::time::timeout(Duration::from_millis(10), wake.deconflict.notified())
            .await
            .expect("the hit delivery was woken");
    });
}

#[test]
fn purposes_read_from_their_words_and_a_typo_is_refused() {
    assert_eq!("".parse::<WatchPurpose>().unwrap(), WatchPurpose::Watch);
    assert_eq!(
        "investigation".parse::<WatchPurpose>().unwrap(),
        WatchPurpose::Investigation
    );
    let err = "investigate".parse::<WatchPurpose>().unwrap_err();
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "purpose: watch or investigation");
    assert_eq!(
        tonic::Status::from(WatchError::NotFound(7)).code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        tonic::Status::from(WatchError::NoReplica).code(),
        tonic::Code::Unavailable
    );
}

#[test]
fn an_unreadable_entry_is_an_error_not_an_empty_list() {
    crate::test_support::run(async {
        let w = matching_world(&[]);
        w.watcher
            .add(vec![entry(WatchPurpose::Watch, "")])
            .await
            .unwrap();
        w.store
            .tree(TREE)
            .unwrap()
            .insert(entry_key(2), vec![0xff, 0xff])
            .unwrap();
        let err = w.watcher.store().list().unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored watch entry in tree watch is corrupt"
        );
        assert_eq!(
            tonic::Status::from(WatchError::Store(err)).code(),
            tonic::Code::Internal
        );
    });
}

/// Continuous screening reports what screening reports: for a party matched exactly and
/// one matched only as a fuzzy name, the alert's strength, score, words and key kinds equal
/// those of a screen of the same party, whether the rows came before or after the entry.
#[test]
fn watch_and_screen_give_the_same_answer_for_the_same_party() {
    crate::test_support::run(async {
        use crate::matching::screen::Screener;
        use crate::party::{Party, PartyKind};
        let listed_person = Party {
            kind: PartyKind::Person,
            name: "Artem Viktorovich SAMOYLOV".into(),
            ..Party::default()
        };
        let watched = [
            org(LISTED, "AE"),
            Party {
                kind: PartyKind::Person,
                name: "Artyom SAMOILOV Viktorovich".into(),
                ..Party::default()
            },
        ];
        for already_listed in [true, false] {
            let w = matching_world(&["FR-SBDU"]);
            let key = Arc::new(OprfKey::generate(1));
            let mut rows = index_delta(
                &key,
                &[
                    denial("FR-SBDU", "S-1", "all", &[org(LISTED, "AE")]),
                    denial(
                        "FR-SBDU",
                        "S-2",
                        "all",
                        std::slice::from_ref(&listed_person),
                    ),
                ],
                DisclosureLevel::Pointer,
            );
            if already_listed {
                peer_with(&w, &key, rows.clone()).await;
            } else {
                peer_with(&w, &key, empty_index(&key)).await;
            }
            let entries = watched
                .iter()
                .map(|p| WatchEntry {
                    party: Some(crate::notice::json::party_to_wire(p)),
                    reference: "APP-1".into(),
                    ..WatchEntry::default()
                })
                .collect();
            w.watcher.add(entries).await.unwrap();
            if !already_listed {
                rows.pos = 2;
                rows.reset = false;
                w.peers.update(&agency("FR-SBDU"), |p| p.index.push(rows));
                w.sync.pull(&agency("FR-SBDU")).await.unwrap();
            }
            let screener = Screener::new(
                w.replicas.clone(),
                Arc::new(w.peers.clone()),
                vec![agency("FR-SBDU")],
            );
            let screened = screener
                .screen(&watched, crate::party::verdict::DEFAULT_THRESHOLD)
                .await;
            let alerts = w.alerts.after(0).unwrap();
            assert_eq!(alerts.len(), 2, "already listed: {already_listed}");
            for (i, result) in screened.results.iter().enumerate() {
                assert_eq!(result.matches.len(), 1, "party {i}");
                let s = &result.matches[0];
                let a = alerts
                    .iter()
                    .filter_map(|a| a.r#match.as_ref())
                    .find(|m| m.serial == s.serial)
                    .expect("an alert for the same notice");
                assert_eq!(
                    (&a.strength, a.score, &a.why, &a.key_kinds, &a.query_names),
                    (&s.strength, s.score, &s.why, &s.key_kinds, &s.query_names),
                    "party {i}"
                );
            }
            let fuzzy = &screened.results[1].matches[0];
            assert!(
                fuzzy.key_kinds.iter().any(|k| k == "fuzzy_name"),
                "{fuzzy:?}"
            );
            assert!(fuzzy.why.contains("name parts"), "{fuzzy:?}");
            assert_eq!(screened.results[0].matches[0].strength, "strong");
        }
    });
}

/// A watch hit follows its notice: an amended version (new rows, another summary) raises a
/// `watch_update` "changed" alert with the new match, a revocation (its rows removed, none
/// added) an "ended" one, a reissue a "reinstated" one, and a second revocation a second
/// "ended"; each once.
#[test]
fn a_watch_hit_follows_its_notice_through_amendment_and_revocation() {
    crate::test_support::run(async {
        let w = matching_world(&["FR-SBDU"]);
        let key = Arc::new(OprfKey::generate(1));
        let notice = denial("FR-SBDU", "S-1", "all", &[org(LISTED, "AE")]);
        let first = index_delta(
            &key,
            std::slice::from_ref(&notice),
            DisclosureLevel::Summary,
        );
        let ids = |d: &IndexDelta| d.adds.iter().map(|a| a[..40].to_vec()).collect::<Vec<_>>();
        peer_with(&w, &key, first.clone()).await;
        let (_, alerts, _) = add(&w, WatchPurpose::Watch, "").await;
        assert_eq!(alerts, 1);

        let mut amended = notice.clone();
        if let Some(tessera_proto::v1::notice::Body::Denial(d)) = amended.body.as_mut() {
            d.items[0].control_entry = "3A002".into();
        }
        let mut second = index_delta(&key, &[amended], DisclosureLevel::Summary);
        second.pos = 2;
        second.reset = false;
        second.removes = ids(&first);
        let mut third = index_delta(&key, &[], DisclosureLevel::Summary);
        third.pos = 3;
        third.reset = false;
        third.removes = ids(&second);
        let mut fourth = index_delta(
            &key,
            std::slice::from_ref(&notice),
            DisclosureLevel::Summary,
        );
        fourth.pos = 4;
        fourth.reset = false;
        let mut fifth = index_delta(&key, &[], DisclosureLevel::Summary);
        fifth.pos = 5;
        fifth.reset = false;
        fifth.removes = ids(&fourth);
        for delta in [second.clone(), third, fourth, fifth] {
            w.peers
                .update(&agency("FR-SBDU"), |p| p.index.push(delta.clone()));
            w.sync.pull(&agency("FR-SBDU")).await.unwrap();
        }
        // Checking again changes nothing.
        w.watcher
            .check_new_rows(
                &agency("FR-SBDU"),
                &w.replicas.get(&agency("FR-SBDU")).unwrap(),
                &[],
                false,
            )
            .await;
        let alerts = w.alerts.after(0).unwrap();
        let seen: Vec<(&str, &str)> = alerts
            .iter()
            .map(|a| (a.kind.as_str(), a.update.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("watch", ""),
                ("watch_update", "changed"),
                ("watch_update", "ended"),
                ("watch_update", "reinstated"),
                ("watch_update", "ended")
            ]
        );
        let changed = alerts[1].r#match.as_ref().unwrap();
        assert_eq!(
            changed.control_entries,
            ["3A002"],
            "the new version's summary"
        );
        assert_eq!(alerts[2].r#match.as_ref().unwrap().serial, "S-1");
    });
}
