//! Tests of the holder's index.

use tessera_proto::v1::{Notice, NoticeStatus, notice::Body};

use super::*;
use crate::test_support::{agency, denial, org, temp_store};

struct Setup {
    _dir: tempfile::TempDir,
    notices: Arc<NoticeStore>,
    holder: Arc<HolderIndex>,
    indexer: Arc<Indexer>,
    signing: Arc<crate::signing::SigningKey>,
}

/// DE-BAFA serving FR-SBDU (at summary level) and US-BIS (pointer).
fn setup() -> Setup {
    let (dir, store) = temp_store();
    let (fr, us) = (agency("FR-SBDU"), agency("US-BIS"));
    let notices = Arc::new(NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
    let keys = Arc::new(KeyRing::open(dir.path(), &[fr.clone(), us.clone()]).unwrap());
    let holder = Arc::new(HolderIndex::open(&store).unwrap());
    let indexer = Arc::new(Indexer {
        holder: holder.clone(),
        notices: notices.clone(),
        keys,
        policy: IndexPolicy {
            levels: [
                (fr, DisclosureLevel::Summary),
                (us, DisclosureLevel::Pointer),
            ]
            .into(),
            contact: "denials@bafa.example".into(),
        },
        agency: agency("DE-BAFA"),
        store,
        wakers: Wakers::default(),
    });
    Setup {
        _dir: dir,
        notices,
        holder,
        indexer,
        signing: crate::test_support::signing_key(),
    }
}

fn listed() -> Notice {
    denial(
        "DE-BAFA",
        "S-1",
        "peer:FR-SBDU",
        &[org("Example Trading FZE", "AE")],
    )
}

fn append(s: &Setup, notice: Notice, to: &[&str]) {
    let to: Vec<AgencyId> = to.iter().map(|a| agency(a)).collect();
    s.notices
        .writer()
        .append_own(notice, &to, &s.signing)
        .unwrap();
}

/// Rows a notice gives a recipient: exact keys, shares and name records.
fn rows_of(n: &Notice) -> usize {
    let to = vec!["FR-SBDU".to_owned()];
    labels::sources_for_peer(n, &to, "FR-SBDU", DisclosureLevel::Pointer, "")
        .unwrap()
        .len()
}

fn deltas(s: &Setup, peer: &str) -> Vec<IndexDelta> {
    s.holder
        .deltas_after(&agency(peer), 0)
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_notice_is_indexed_for_its_recipients_only_at_their_disclosure_level() {
    let s = setup();
    append(&s, listed(), &["FR-SBDU"]);
    assert_eq!(s.indexer.index_pending().unwrap(), 1);
    assert_eq!(s.indexer.index_pending().unwrap(), 0, "the cursor moved");
    let fr = deltas(&s, "FR-SBDU");
    assert_eq!(fr.len(), 1);
    let keys = labels::notice_keys(&listed());
    assert_eq!(fr[0].adds.len(), rows_of(&listed()));
    assert!(fr[0].adds.len() > keys.len(), "fuzzy names are sealed too");
    assert!(deltas(&s, "US-BIS").is_empty());
    assert_eq!(
        s.holder.live_rows(&agency("FR-SBDU")).unwrap(),
        rows_of(&listed())
    );
    // FR-SBDU opens a row with its key's output: the summary is there.
    let key = s.indexer.keys.get(&agency("FR-SBDU")).unwrap();
    let y = key.evaluate(keys[0].value.as_bytes()).unwrap();
    let rows: Vec<IndexEntry> = fr[0]
        .adds
        .iter()
        .map(|a| IndexEntry::from_bytes(a).unwrap())
        .collect();
    let row = rows
        .iter()
        .find(|e| e.tag == privacy::tag_of(&y))
        .unwrap()
        .clone();
    // The key's row points to the notice's label, sealed once.
    let Ok(privacy::Record::Pointer { slot, relation }) = row.open_record(&y) else {
        panic!("an exact key's row is a pointer");
    };
    let lookup = privacy::IndexLookup::from_entries(rows).unwrap();
    let label = crate::matching::findings::follow_label(&lookup, &slot, relation).unwrap();
    assert_eq!(label.key_kind, keys[0].kind.as_str());
    assert_eq!(label.strength, keys[0].strength.as_str());
    assert_eq!(label.disclosure.level(), "summary");
    assert_eq!(label.contact, "denials@bafa.example");
    assert_eq!(
        s.holder
            .serial_for_tag(&agency("FR-SBDU"), &row.tag)
            .unwrap()
            .as_deref(),
        Some("S-1")
    );
}

/// S-1 revoked (its version 2), and indexed.
fn revoke_listed(s: &Setup) {
    let mut revoked = listed();
    revoked.version = 2;
    if let Some(Body::Denial(d)) = revoked.body.as_mut() {
        d.status = NoticeStatus::Revoked as i32;
    }
    append(s, revoked, &["FR-SBDU"]);
    s.indexer.index_pending().unwrap();
}

#[test]
fn a_revoked_version_removes_every_row() {
    let s = setup();
    append(&s, listed(), &["FR-SBDU"]);
    s.indexer.index_pending().unwrap();
    revoke_listed(&s);
    let fr = deltas(&s, "FR-SBDU");
    assert_eq!(fr.len(), 2);
    assert_eq!(fr[1].removes.len(), fr[0].adds.len());
    assert!(fr[1].adds.is_empty());
    assert_eq!(s.holder.live_rows(&agency("FR-SBDU")).unwrap(), 0);
    assert_eq!(s.holder.last_pos(&agency("FR-SBDU")).unwrap(), 2);
}

#[test]
fn a_rotation_rebuilds_the_index_under_the_new_key_as_a_reset() {
    crate::test_support::run(async {
        let s = setup();
        s.indexer.ensure_initial().unwrap();
        for peer in ["FR-SBDU", "US-BIS"] {
            let first = deltas(&s, peer);
            assert!(first[0].reset && first[0].adds.is_empty(), "{peer}");
        }
        append(&s, listed(), &["FR-SBDU"]);
        s.indexer.index_pending().unwrap();
        let epoch = s.indexer.rotate(&agency("FR-SBDU")).await.unwrap();
        assert_eq!(epoch, 2);
        let fr = deltas(&s, "FR-SBDU");
        let last = fr.last().unwrap();
        assert!(last.reset);
        assert_eq!(last.epoch, 2);
        assert_eq!(last.adds.len(), rows_of(&listed()));
        assert_eq!(
            s.holder.live_rows(&agency("FR-SBDU")).unwrap(),
            last.adds.len()
        );
        let err = s.indexer.rebuild_for(&agency("JP-METI")).unwrap_err();
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::InvalidArgument
        );
    });
}

#[test]
fn an_unreadable_position_is_an_error_not_zero() {
    let s = setup();
    s.holder
        .tree
        .insert(last_pos_key(&agency("FR-SBDU")), vec![1u8, 2], "test")
        .unwrap();
    // Positions are read once, when the index opens.
    let err = HolderIndex::open(&s.indexer.store).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stored last delta position in tree holder_index is corrupt"
    );
}

/// Index rows are built at the lowest scheduling priority: a long import yields the CPU to
/// screening.
#[cfg(target_os = "linux")]
#[test]
fn index_rows_are_built_at_the_lowest_priority() {
    let pool = super::index_pool().expect("index pool");
    let nice = pool.install(|| {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        // Field 19 (nice) counted after the command name's closing parenthesis.
        let after = stat.rsplit_once(')').expect("comm").1;
        after
            .split_whitespace()
            .nth(16)
            .and_then(|v| v.parse::<i32>().ok())
            .expect("nice")
    });
    assert_eq!(nice, 19, "index threads run at nice 19");
}

#[test]
fn positions_read_from_memory_are_those_stored() {
    let s = setup();
    s.indexer.ensure_initial().unwrap();
    append(&s, listed(), &["FR-SBDU"]);
    assert_eq!(s.indexer.index_pending().unwrap(), 1);
    s.indexer.rebuild_for(&agency("US-BIS")).unwrap();
    let (fr, us) = (agency("FR-SBDU"), agency("US-BIS"));
    let seen = |h: &HolderIndex| {
        (
            h.last_pos(&fr).unwrap(),
            h.last_pos(&us).unwrap(),
            h.indexed_through().unwrap(),
        )
    };
    assert_eq!(seen(&s.holder), (2, 2, 1));
    let reopened = HolderIndex::open(&s.indexer.store).unwrap();
    assert_eq!(seen(&reopened), seen(&s.holder));
}

/// A second denial, for a chunk of two notices.
fn other() -> Notice {
    denial(
        "DE-BAFA",
        "S-2",
        "peer:FR-SBDU",
        &[org("Other Machines LLC", "RU")],
    )
}

#[test]
fn a_notices_live_rows_are_recorded_in_16_bytes_and_an_amendment_removes_exactly_them() {
    let s = setup();
    append(&s, listed(), &["FR-SBDU"]);
    append(&s, other(), &["FR-SBDU"]);
    s.indexer.index_pending().unwrap();
    let fr = agency("FR-SBDU");
    let record = |serial: &str| {
        s.holder
            .tree
            .get(rows_prefix(&fr).text(serial), ROWS)
            .unwrap()
            .unwrap()
    };
    assert_eq!(record("S-1").len(), 16);
    assert_eq!(record("S-2").len(), 16);
    let first = deltas(&s, "FR-SBDU").remove(0);
    let ids = |rows: &[Vec<u8>]| -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = rows.iter().map(|r| r[..ROW_ID].to_vec()).collect();
        v.sort();
        v
    };
    // S-2 is amended: the delta removes S-2's rows, not S-1's.
    let mut amended = other();
    amended.version = 2;
    append(&s, amended, &["FR-SBDU"]);
    s.indexer.index_pending().unwrap();
    let second = deltas(&s, "FR-SBDU").remove(1);
    let s2_rows = rows_of(&other());
    let s1_rows = first.adds.len() - s2_rows;
    assert_eq!(ids(&second.removes), ids(&first.adds[s1_rows..]));
    assert_eq!(s.holder.live_rows(&fr).unwrap(), first.adds.len());
    // A deconfliction hit on one of S-2's new rows names S-2; on S-1's, S-1.
    let tag = |row: &Vec<u8>| row[..privacy::TAG_LEN].to_vec();
    assert_eq!(
        s.holder
            .serial_for_tag(&fr, &tag(&second.adds[0]))
            .unwrap()
            .as_deref(),
        Some("S-2")
    );
    assert_eq!(
        s.holder
            .serial_for_tag(&fr, &tag(&first.adds[0]))
            .unwrap()
            .as_deref(),
        Some("S-1")
    );
    // A removed row names nobody.
    let gone = first.adds[s1_rows..]
        .iter()
        .find(|r| {
            !second
                .adds
                .iter()
                .any(|a| a[..privacy::TAG_LEN] == r[..privacy::TAG_LEN])
        })
        .expect("a row of S-2's first version whose tag is not in its second");
    assert_eq!(s.holder.serial_for_tag(&fr, &tag(gone)).unwrap(), None);
}

#[test]
fn a_live_row_record_of_row_ids_as_written_before_still_removes_its_rows() {
    let s = setup();
    append(&s, listed(), &["FR-SBDU"]);
    s.indexer.index_pending().unwrap();
    let fr = agency("FR-SBDU");
    let first = deltas(&s, "FR-SBDU").remove(0);
    // The record as an older node wrote it: every row's id.
    let ids: Vec<u8> = first
        .adds
        .iter()
        .flat_map(|a| a[..ROW_ID].to_vec())
        .collect();
    s.holder
        .tree
        .insert(rows_prefix(&fr).text("S-1"), ids, ROWS)
        .unwrap();
    assert_eq!(s.holder.live_rows(&fr).unwrap(), first.adds.len());
    assert_eq!(
        s.holder
            .serial_for_tag(&fr, &first.adds[0][..privacy::TAG_LEN])
            .unwrap()
            .as_deref(),
        Some("S-1")
    );
    revoke_listed(&s);
    assert_eq!(deltas(&s, "FR-SBDU")[1].removes.len(), first.adds.len());
    assert_eq!(s.holder.live_rows(&fr).unwrap(), 0);
    // A record of neither form is corrupt, not an empty notice.
    s.holder
        .tree
        .insert(rows_prefix(&fr).text("S-9"), vec![1u8; 7], ROWS)
        .unwrap();
    assert!(s.holder.live_rows(&fr).is_err());
}
