//! Tests of screening.

use std::time::Duration;

use super::*;
use crate::exchange::fake::FakePeers;
use crate::party::verdict::DEFAULT_THRESHOLD;
use crate::policy::DisclosureLevel;
use crate::privacy::OprfKey;
use crate::test_support::{agency, denial, honest_peer, index_delta, org, temp_store};

const LISTED: &str = "Example Trading FZE";

struct Setup {
    _dir: tempfile::TempDir,
    peers: FakePeers,
    screener: Screener,
    key: Arc<OprfKey>,
}

/// Our replicas of `with_index`'s indexes (each listing one denial of
/// LISTED, at summary level) and a scripted peer for each of `peers`.
fn setup(peers_named: &[&str], with_index: &[&str]) -> Setup {
    let (dir, store) = temp_store();
    let ids: Vec<AgencyId> = peers_named.iter().map(|p| agency(p)).collect();
    let replicas = Arc::new(Replicas::open(&store, &ids, None).unwrap());
    let key = Arc::new(OprfKey::generate(1));
    let peers = FakePeers::new();
    for id in &ids {
        peers.add(id, honest_peer(&key));
        if with_index.contains(&id.as_str()) {
            let notice = denial(id.as_str(), "S-1", "all", &[org(LISTED, "AE")]);
            let delta = index_delta(&key, &[notice], DisclosureLevel::Summary);
            replicas.apply(id, &[delta]).unwrap();
        }
    }
    let screener = Screener::new(replicas, Arc::new(peers.clone()), ids);
    Setup {
        _dir: dir,
        peers,
        screener,
        key,
    }
}

fn reasons(r: &ScreenResponse) -> Vec<(String, String)> {
    r.unavailable
        .iter()
        .map(|p| (p.peer.clone(), p.reason.clone()))
        .collect()
}

#[test]
fn a_listed_party_matches_with_what_the_holder_discloses_and_others_are_clear() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU"], &["FR-SBDU"]);
        let r = s
            .screener
            .screen(
                &[org(LISTED, "AE"), org("Unrelated Bakery GmbH", "DE")],
                DEFAULT_THRESHOLD,
            )
            .await;
        assert_eq!(r.screened_peers, ["FR-SBDU"]);
        assert!(r.unavailable.is_empty());
        let m = &r.results[0].matches;
        assert_eq!(m.len(), 1, "one match per notice, however many keys hit");
        assert_eq!(
            (m[0].origin.as_str(), m[0].serial.as_str()),
            ("FR-SBDU", "S-1")
        );
        assert_eq!(m[0].disclosure, "summary");
        assert_eq!(m[0].control_entries, ["3A001"]);
        assert_eq!(m[0].strength, "strong");
        assert!(r.results[1].matches.is_empty());
        // The peer learnt how many keys were asked, nothing else.
        let asked: u32 = r.results.iter().map(|p| p.keys).sum();
        assert_eq!(s.peers.peer(&agency("FR-SBDU")).evaluated, u64::from(asked));
    });
}

#[test]
fn a_peer_down_is_reported_as_unscreened_never_as_clear() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU", "US-BIS"], &["FR-SBDU", "US-BIS"]);
        s.peers.update(&agency("US-BIS"), |p| p.down = true);
        let r = s
            .screener
            .screen(&[org(LISTED, "AE")], DEFAULT_THRESHOLD)
            .await;
        assert_eq!(r.screened_peers, ["FR-SBDU"]);
        let down = reasons(&r);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].0, "US-BIS");
        assert!(
            down[0].1.starts_with("unreachable: connection refused"),
            "{down:?}"
        );
        assert_eq!(r.results[0].matches.len(), 1, "FR-SBDU's match stands");
    });
}

#[test]
fn a_peer_that_evaluates_with_another_key_is_refused() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU"], &["FR-SBDU"]);
        let other = Arc::new(OprfKey::generate(s.key.epoch()));
        s.peers.add(&agency("FR-SBDU"), honest_peer(&other));
        let r = s
            .screener
            .screen(&[org(LISTED, "AE")], DEFAULT_THRESHOLD)
            .await;
        assert!(r.screened_peers.is_empty());
        assert!(
            reasons(&r)[0]
                .1
                .contains("does not verify against the key its index was built with"),
            "{:?}",
            reasons(&r)
        );
        assert!(r.results[0].matches.is_empty());
    });
}

#[test]
fn a_peer_answering_under_another_epoch_or_without_an_index_is_named() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU", "US-BIS"], &["FR-SBDU"]);
        // FR-SBDU rotated its key: our replica is of epoch 1.
        s.peers.add(
            &agency("FR-SBDU"),
            honest_peer(&Arc::new(OprfKey::generate(2))),
        );
        let r = s
            .screener
            .screen(&[org(LISTED, "AE")], DEFAULT_THRESHOLD)
            .await;
        let why = reasons(&r);
        assert!(
            why.iter()
                .any(|(p, w)| p == "FR-SBDU" && w.starts_with("refused:")),
            "{why:?}"
        );
        assert!(
            why.iter()
                .any(|(p, w)| p == "US-BIS" && w == "no index received from this peer yet"),
            "{why:?}"
        );
    });
}

#[test]
fn a_peer_over_our_budget_says_so() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU"], &["FR-SBDU"]);
        s.peers.update(&agency("FR-SBDU"), |p| p.budget = Some(1));
        let r = s
            .screener
            .screen(&[org(LISTED, "AE")], DEFAULT_THRESHOLD)
            .await;
        assert!(
            reasons(&r)[0].1.starts_with("over its query budget: "),
            "{:?}",
            reasons(&r)
        );
    });
}

#[test]
fn slow_peers_are_asked_at_once_not_one_after_the_other() {
    crate::test_support::run_paused(async {
        let s = setup(&["FR-SBDU", "US-BIS"], &["FR-SBDU", "US-BIS"]);
        s.peers
            .update(&agency("FR-SBDU"), |p| p.delay = Duration::from_secs(3));
        s.peers
            .update(&agency("US-BIS"), |p| p.delay = Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let r = s
            .screener
            .screen(&[org(LISTED, "AE")], DEFAULT_THRESHOLD)
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(r.screened_peers.len(), 2);
        assert_eq!(r.results[0].matches.len(), 2);
    });
}

#[test]
fn matches_keep_the_strongest_key_and_every_kind() {
    let mut label = crate::privacy::Label {
        origin: "FR-SBDU".into(),
        serial: "S-1".into(),
        authority_ref: "R".into(),
        contact: "c".into(),
        key_kind: "phonetic".into(),
        strength: "weak".into(),
        disclosure: Disclosure::Pointer,
    };
    let peer = agency("FR-SBDU");
    let mut matches = BTreeMap::new();
    add_match(&mut matches, &peer, &label);
    label.key_kind = "name_country".into();
    label.strength = "strong".into();
    add_match(&mut matches, &peer, &label);
    label.key_kind = "name".into();
    label.strength = "medium".into();
    add_match(&mut matches, &peer, &label);
    let m = matches.into_values().next().unwrap();
    assert_eq!(m.strength, "strong");
    assert_eq!(m.key_kinds, ["phonetic", "name_country", "name"]);
}

/// A peer whose index has moved on since our copy: its matches are kept, but its
/// silence is no clear; it is named as behind, by how much.
#[test]
fn a_replica_behind_the_holder_keeps_its_matches_but_is_no_clear() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU"], &["FR-SBDU"]);
        let later = |pos: u64| {
            let mut d = index_delta(&s.key, &[], DisclosureLevel::Summary);
            d.pos = pos;
            d.reset = false;
            d
        };
        s.peers
            .update(&agency("FR-SBDU"), |p| p.index = vec![later(2), later(3)]);
        let r = s
            .screener
            .screen(
                &[org(LISTED, "AE"), org("Unrelated Bakery GmbH", "DE")],
                DEFAULT_THRESHOLD,
            )
            .await;
        assert!(r.screened_peers.is_empty(), "{:?}", r.screened_peers);
        let why = reasons(&r);
        assert_eq!(why.len(), 1);
        assert!(why[0].1.contains("2 change(s) behind"), "{why:?}");
        assert_eq!(r.results[0].matches.len(), 1, "the match is kept");
        // Once our copy has caught up, the same screening is a clear for the other party.
        s.screener
            .replicas
            .apply(&agency("FR-SBDU"), &[later(2), later(3)])
            .unwrap();
        let r = s
            .screener
            .screen(&[org("Unrelated Bakery GmbH", "DE")], DEFAULT_THRESHOLD)
            .await;
        assert_eq!(r.screened_peers, ["FR-SBDU"]);
        assert!(r.unavailable.is_empty());
    });
}

/// A batch larger than the peer's budget: the chunks it answered count, the parties
/// whose keys it did not answer name it as unscreened, and no party is cleared by it
/// that it never screened.
#[test]
fn a_batch_over_budget_keeps_the_answered_part_and_names_the_rest() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU"], &["FR-SBDU"]);
        // Names that share no key: consonants spelled from the number, each syllable twice
        // so that no two names are one letter apart.
        let letter = |n: usize| char::from(b"BDFGKLMNPRSTVZ"[n % 14]);
        let parties: Vec<Party> = (0..400)
            .map(|i| {
                let (a, b, c) = (letter(i), letter(i / 14), letter(i / 196));
                org(&format!("{a}a{a}a{b}o{b}o{c}e{c}e Trading"), "DE")
            })
            .collect();
        let asked = QueryKeys::of(&parties, "").values.len();
        assert!(
            asked > 2 * EVALUATE_CHUNK,
            "{asked} keys: too few for three chunks"
        );
        s.peers.update(&agency("FR-SBDU"), |p| {
            p.budget = Some(EVALUATE_CHUNK as u64);
        });
        let r = s.screener.screen(&parties, DEFAULT_THRESHOLD).await;
        assert!(r.screened_peers.is_empty());
        let why = reasons(&r);
        assert_eq!(why.len(), 1, "{why:?}");
        // Chunks go out concurrently: which one the budget covers is not fixed.
        assert!(
            why[0].1.starts_with("answered ") && why[0].1.contains("then: over its query budget"),
            "{why:?}"
        );
        let unscreened = r
            .results
            .iter()
            .filter(|p| p.unscreened == ["FR-SBDU"])
            .count();
        let screened = r.results.iter().filter(|p| p.unscreened.is_empty()).count();
        assert!(unscreened > 0 && screened > 0, "{unscreened} / {screened}");
        assert_eq!(unscreened + screened, parties.len());
    });
}

/// A holder still indexing an import: its matches are kept, but no party is clear there
/// until its index is complete, and the reason says so.
#[test]
fn a_holder_still_indexing_keeps_its_matches_but_is_no_clear() {
    crate::test_support::run(async {
        let s = setup(&["FR-SBDU"], &["FR-SBDU"]);
        s.peers.update(&agency("FR-SBDU"), |p| p.pending = 3);
        let r = s
            .screener
            .screen(
                &[org(LISTED, "AE"), org("Unrelated Bakery GmbH", "DE")],
                DEFAULT_THRESHOLD,
            )
            .await;
        assert!(r.screened_peers.is_empty());
        let why = reasons(&r);
        assert!(
            why[0].1.contains("still being built (3 of its notices"),
            "{why:?}"
        );
        assert_eq!(r.results[0].matches.len(), 1, "the match is kept");
        assert_eq!(r.results[1].unscreened, ["FR-SBDU"]);
        s.peers.update(&agency("FR-SBDU"), |p| p.pending = 0);
        let r = s
            .screener
            .screen(&[org("Unrelated Bakery GmbH", "DE")], DEFAULT_THRESHOLD)
            .await;
        assert_eq!(r.screened_peers, ["FR-SBDU"]);
    });
}
