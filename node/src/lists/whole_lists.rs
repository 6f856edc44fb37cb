//! Tests over the real lists of `../shared/data` (see its README for the
//! counts). Without the directory they are ignored ("needs ../shared/data",
//! see `node/build.rs`), so the suite runs without it and says so.

use std::path::PathBuf;

use super::test_support::split;
use super::{Format, ListRecord, read, shared_data_dir};
use crate::party::PartyKind;

fn shared(rel: &str) -> PathBuf {
    shared_data_dir()
        .expect("../shared/data was there when these tests were built")
        .join(rel)
}

fn read_clean(format: Format, rel: &str) -> Vec<ListRecord> {
    let path = shared(rel);
    let rows = read(format, &path).expect("shared list readable");
    let (ok, bad) = split(rows);
    assert!(
        bad.is_empty(),
        "{format} rows fail: {:?}",
        &bad[..bad.len().min(5)]
    );
    ok
}

fn count(recs: &[ListRecord], f: impl Fn(&ListRecord) -> bool) -> usize {
    recs.iter().filter(|r| f(r)).count()
}

#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
fn csl_whole_list() {
    let recs = read_clean(Format::Csl, "us_csl/consolidated.csv");
    assert_eq!(recs.len(), 14_160);
    let by_source = |p: &str| count(&recs, |r| r.list.starts_with(p));
    assert_eq!(by_source("Entity List (EL)"), 2_001);
    assert_eq!(by_source("Denied Persons List (DPL)"), 462);
    assert_eq!(by_source("Unverified List (UVL)"), 201);
    assert_eq!(by_source("Military End User (MEU)"), 71);
    assert_eq!(by_source("ITAR Debarred (DTC)"), 727);
    assert_eq!(by_source("Nonproliferation Sanctions (ISN)"), 163);
    assert_eq!(by_source("Specially Designated Nationals (SDN)"), 10_026);
    let with_ids = count(&recs, |r| !r.party.ids.is_empty());
    let imo = count(&recs, |r| r.party.ids.iter().any(|i| i.id_type == "IMO"));
    let persons = count(&recs, |r| r.party.kind == PartyKind::Person);
    let dob = count(&recs, |r| r.party.birth_date.is_some());
    let warned = count(&recs, |r| !r.warnings.is_empty());
    println!(
        "csl: {} records, {persons} persons, {dob} with birth date, {with_ids} with ids, {imo} with IMO, {warned} with warnings",
        recs.len()
    );
    assert!(with_ids > 4_000 && imo > 400 && dob > 4_500);
    // Three Entity List start dates read 0097-06-30 / 0017-05-26: dropped, warned.
    assert_eq!(warned, 3);
    // An entity on two sources (SDN and CAP, say) has the same id in both, so
    // ids are unique per source only; the source itself repeats one CAP row.
    let mut ids: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r.list.as_str(), r.list_id.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), recs.len() - 1);
}

#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
fn dpl_whole_list() {
    let recs = read_clean(Format::Dpl, "us_csl/dpl.txt");
    assert_eq!(recs.len(), 665);
    // Last_Update 3033-09-30 once and 1023-11-01 twice: kept, date dropped, warned.
    let warned: Vec<_> = recs.iter().filter(|r| !r.warnings.is_empty()).collect();
    assert_eq!(warned.len(), 3);
    assert!(
        warned
            .iter()
            .all(|r| r.updated.is_none() && r.start_date.is_some())
    );
    assert_eq!(count(&recs, |r| r.start_date.is_some()), 665);
    let mut ids: Vec<&str> = recs.iter().map(|r| r.list_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    println!(
        "dpl: {} rows, {} distinct denials, {} with warnings",
        recs.len(),
        ids.len(),
        warned.len()
    );
    assert_eq!(
        ids.len(),
        577,
        "rows of one denial at several addresses share an id"
    );
}

#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
fn sdn_whole_list() {
    let recs = read_clean(Format::Sdn, "ofac_sdn_2023-12-28/sdn.csv");
    assert_eq!(recs.len(), 13_821);
    // 6,667 entities have alt.csv rows; the one alt row of ent_num 40268 repeats
    // its primary name, and an alias equal to the name is not kept.
    assert_eq!(count(&recs, |r| !r.party.aliases.is_empty()), 6_666);
    assert!(
        recs.iter()
            .any(|r| r.list_id == "40268" && r.party.aliases.is_empty())
    );
    let t = |ty: &str| count(&recs, |r| r.sdn_type.as_deref() == Some(ty));
    assert_eq!(
        (t("individual"), t("entity"), t("vessel"), t("aircraft")),
        (6_646, 6_033, 764, 378)
    );
    let aliases: usize = recs.iter().map(|r| r.party.aliases.len()).sum();
    let addressed = count(&recs, |r| !r.party.addresses.is_empty());
    let dob = count(&recs, |r| r.party.birth_date.is_some());
    let with_ids = count(&recs, |r| !r.party.ids.is_empty());
    let imo = count(&recs, |r| r.party.ids.iter().any(|i| i.id_type == "IMO"));
    let passports = count(&recs, |r| {
        r.party.ids.iter().any(|i| i.id_type == "PASSPORT")
    });
    println!(
        "sdn: {} records, {aliases} aliases, {addressed} with addresses, {dob} with birth date, {with_ids} with ids ({imo} IMO, {passports} passport)",
        recs.len()
    );
    assert!(aliases > 16_500);
    assert!(imo >= 700, "vessels carry IMO numbers");
    assert!(dob > 5_500);
    let qadhafi = recs
        .iter()
        .find(|r| r.list_id == "12606")
        .expect("Muammar QADHAFI");
    assert!(qadhafi.party.aliases.iter().any(|a| a.contains("GADDAFI")));
}

#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
fn un_whole_list() {
    let recs = read_clean(Format::Un, "un_consolidated/UN_consolidated.xml");
    let persons = count(&recs, |r| r.party.kind == PartyKind::Person);
    assert_eq!((persons, recs.len() - persons), (730, 273));
    let scripts = count(&recs, |r| {
        r.party.kind == PartyKind::Person && !r.party.original_script_names.is_empty()
    });
    assert_eq!(scripts, 336);
    let aliases = count(&recs, |r| !r.party.aliases.is_empty());
    let dob = count(&recs, |r| r.party.birth_date.is_some());
    let docs = count(&recs, |r| !r.party.ids.is_empty());
    println!(
        "un: {persons} individuals, {} entities, {scripts} with original script, {aliases} with aliases, {dob} with birth date, {docs} with documents",
        recs.len() - persons
    );
    assert!(dob > 600 && docs > 250);
}

#[test]
fn entity_list_fixture_is_the_whole_entity_list() {
    let path = super::test_support::fixture("entity_list.csv");
    let (ok, bad) = split(read(Format::Csl, &path).expect("fixture readable"));
    assert!(bad.is_empty());
    assert_eq!(ok.len(), 2_001);
    assert!(
        ok.iter()
            .all(|r| r.list == "Entity List (EL) - Bureau of Industry and Security")
    );
}
