//! Spec conformance: the published test vectors (`docs/match-keys.vectors.jsonl`), the
//! `tessera keys` line contract, property tests (idempotence, determinism, alias-order
//! independence, no panic on any input) and a whole-list smoke test.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::normalise::{basic_tokens, name_tokens};
use super::translit::Backend;
use super::{
    KeyKind, MatchKey, Party, PartyKeys, PartyKind, Side, keys_json_line, match_keys, party_keys,
};

/// The published vectors: one `{"party":{...},"keys":[...]}` a line.
const VECTORS: &str = include_str!("../../../docs/match-keys.vectors.jsonl");

/// One vector: a party, its exact keys, and its full keys on each side of a match.
#[derive(Serialize, Deserialize)]
struct Vector {
    party: Party,
    keys: Vec<MatchKey>,
    listed: PartyKeys,
    query: PartyKeys,
}

#[test]
fn vectors_pass() {
    let mut n = 0;
    for (i, line) in VECTORS.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Vector = serde_json::from_str(line).expect("vector line parses");
        assert_eq!(match_keys(&v.party), v.keys, "vector on line {}", i + 1);
        assert_eq!(
            party_keys(&v.party, Side::Listed),
            v.listed,
            "line {}",
            i + 1
        );
        assert_eq!(party_keys(&v.party, Side::Query), v.query, "line {}", i + 1);
        n += 1;
    }
    assert!(n >= 30, "only {n} vectors");
}

/// Inputs of the vectors file; `cargo test -- --ignored regenerate_vectors` rewrites it.
/// The spec is the authority: read a regenerated file against it before publishing.
const VECTOR_INPUTS: &[&str] = &[
    r#"{"kind":"person","name":"QADHAFI, Muammar","aliases":["GADDAFI, Muammar","AL-QADHAFI, Muammar Abu Minyar"],"countries":["Libya"],"birth_date":"1942"}"#,
    r#"{"kind":"person","name":"ГАДДАФИ Муаммар"}"#,
    r#"{"kind":"person","name":"GHADAFFI, Moammar","countries":["LY"]}"#,
    r#"{"kind":"organisation","name":"OOO \"Polotsk-Steklovolokno\"","aliases":["POLOTSK STEKLOVOLOKNO OAO","Polotsk Fibreglass JSC"],"countries":["BY"]}"#,
    r#"{"name":"ООО «Полоцк-Стекловолокно»"}"#,
    r#"{"name":"ANGLO-CARIBBEAN CO., LTD.","countries":["Cuba"]}"#,
    r#"{"name":"CECOEX, S.A."}"#,
    r#"{"name":"Fiat S.p.A.","aliases":["FIAT SPA","Fiat Società per Azioni"]}"#,
    r#"{"name":"Siemens Aktiengesellschaft","aliases":["Siemens AG","SIEMENS GMBH & CO. KG"],"countries":["DEU"]}"#,
    r#"{"name":"华为技术有限公司","aliases":["Huawei Technologies Co., Ltd."],"countries":["CN"]}"#,
    r#"{"name":"株式会社トヨタ"}"#,
    r#"{"name":"삼성전자 주식회사","countries":["Korea, South"]}"#,
    r#"{"kind":"person","name":"KIM Jong Un","original_script_names":["김정은"],"countries":["Korea, North"],"birth_date":"1984-01-08"}"#,
    r#"{"kind":"person","name":"AIMAN MUHAMMED RABI AL-ZAWAHIRI","original_script_names":["أيمن محمد ربيع الظواهري"],"countries":["Egypt"],"birth_date":"1951-06-19"}"#,
    r#"{"kind":"person","name":"Abd al-Rahman AS-SAYED","aliases":["ABDULRAHMAN ASSAYED","عبد الرحمن السيد"]}"#,
    r#"{"kind":"person","name":"ABDULLAH, Mohammed","aliases":["Abd Allah, Muhammad","عبدالله محمد"]}"#,
    r#"{"name":"شركة النفط الوطنية","countries":["Iraq"]}"#,
    r#"{"kind":"person","name":"رحمت الله کاکا زاده","countries":["AF"]}"#,
    r#"{"kind":"person","name":"קדאפי"}"#,
    r#"{"name":"ΕΛΛΗΝΙΚΑ ΠΕΤΡΕΛΑΙΑ Α.Ε.","countries":["Greece"]}"#,
    r#"{"name":"Հայկական Ատոմային Էլեկտրակայան"}"#,
    r#"{"name":"साहिल ट्रेडिंग कंपनी","countries":["India"]}"#,
    r#"{"name":"บริษัท ไทยออยล์ จำกัด"}"#,
    r#"{"kind":"person","name":"Şahin Güç","countries":["Türkiye","TR"]}"#,
    r#"{"kind":"person","name":"PUTIN, Vladimir Vladimirovich","aliases":["Владимир Владимирович Путин"],"countries":["Russian Federation"],"birth_date":"1952-10-07"}"#,
    r#"{"kind":"person","name":"TYURIN, Sergei","aliases":["TIOURINE, Sergei","TJURIN, Sergej"]}"#,
    r#"{"kind":"person","name":"Dr. Sheikh Ahmed Ali HANIYEH","aliases":["Mr Ahmed Ali HANIYA"]}"#,
    r#"{"kind":"person","name":"SOLEIMANI, Qasem","aliases":["SOLEYMANI, Ghasem","SULAIMANI, Qassem"],"countries":["Iran (Islamic Republic of)"],"birth_date":"circa 1957"}"#,
    r#"{"kind":"vessel","name":"ADRIAN DARYA 1","aliases":["GRACE 1"],"ids":[{"type":"IMO","value":"IMO 9116412"},{"type":"MMSI","value":"422 036 100"}],"countries":["IR"]}"#,
    r#"{"kind":"vessel","name":"BAD CHECK","ids":[{"type":"IMO","value":"9116413"},{"type":"LEI","value":"529900T8BM49AURSDO56"}]}"#,
    r#"{"name":"EXAMPLE BANK","ids":[{"type":"LEI","value":"529900t8bm49aursdo55"},{"type":"SWIFT/BIC","value":"EXMPDEFFXXX"},{"type":"Registration Number","value":"HRB 12-345","country":"Germany"},{"type":"Tax ID No.","value":"12"}]}"#,
    r#"{"kind":"person","name":"IVANOV, Ivan","ids":[{"type":"Passport","value":"72 1234567","country":"RU"},{"type":"National ID No.","value":"AB-123456"}]}"#,
    r#"{"kind":"aircraft","name":"EP-ABC","ids":[{"type":"Aircraft Tail Number","value":"EP-ABC"}]}"#,
    r#"{"name":"\u200fＡＣＭＥ\u200d ﬁnance\u0007 GmbH\u202e"}"#,
    r#"{"name":"I.R.I.S.L. Group","aliases":["IRISL GROUP"]}"#,
    r#"{"name":"The Bank of A & B"}"#,
    r#"{"name":"Ltd"}"#,
    r#"{"name":""}"#,
    r#"{"name":"'``'"}"#,
    r#"{"kind":"person","name":"AL-'ULABI, 'Adel","countries":["Atlantis","YE"],"birth_date":"1970-13"}"#,
    r#"{"name":"VTK Ltd"}"#,
    r#"{"name":"YK-AND"}"#,
    r#"{"name":"ABU DHABI PETROLEUM TRADING","aliases":["ABUDHABI PETROLEUM"]}"#,
    r#"{"kind":"person","name":"A. SAMOYLOV","aliases":["Bob MARLEY"]}"#,
    r#"{"kind":"person","name":"ALI BIN HASSAN","aliases":["HASSAN BIN ALI"]}"#,
    r#"{"name":"INDUSTRIAL BANK"}"#,
    r#"{"kind":"person","name":"محمد بلكلام","aliases":["MOHAMED BELKALEM"]}"#,
    r#"{"kind":"person","name":"CHEREVKO, Serhiy Mykolayovych","aliases":["CHEREVKO, Sergey Nikolaevich","Olha Volodymyrivna CHEREVKO"]}"#,
    r#"{"name":"ZHEJIANG WONDER IMP. & EXP. CO., LTD.","aliases":["CLUB DEPORTIVO MORUMBI, A.C."]}"#,
    r#"{"kind":"person","name":"UDIN, Mohd Rafi"}"#,
    r#"{"kind":"person","name":"PAEK, Chong-sam","aliases":["CHECK, Chin"]}"#,
    r#"{"kind":"person","name":"KACHANAVA, Natallia Ivanauna","aliases":["ZEYNABIYYUN, Khozhakhmed"]}"#,
    r#"{"name":"KOREA SAMMA SHPG CO","aliases":["STATE ADMINISTRATIVE COUNCIL"]}"#,
];

/// The vector file is exactly what the inputs below derive: set
/// `VECTORS_OUT=PATH` to write a new file after a spec change instead.
#[test]
fn vectors_file_is_current() {
    let mut out = String::new();
    for line in VECTOR_INPUTS {
        let party: Party = serde_json::from_str(line).expect("vector input parses");
        let keys = match_keys(&party);
        let listed = party_keys(&party, Side::Listed);
        let query = party_keys(&party, Side::Query);
        let vector = Vector {
            party,
            keys,
            listed,
            query,
        };
        out.push_str(&serde_json::to_string(&vector).expect("serialises"));
        out.push('\n');
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/match-keys.vectors.jsonl"
    );
    if let Ok(target) = std::env::var("VECTORS_OUT") {
        std::fs::write(target, out).expect("write vectors");
        return;
    }
    let committed = std::fs::read_to_string(path).expect("read vectors");
    assert_eq!(
        committed, out,
        "docs/match-keys.vectors.jsonl is stale: regenerate with VECTORS_OUT and review the diff"
    );
}

#[test]
fn keys_line_contract() {
    let ok = keys_json_line(r#"{"kind":"person","name":"QADHAFI, Muammar","countries":["LY"]}"#);
    assert!(ok.starts_with(r#"{"keys":[{"kind":"name_country","value":"mk2|name_country|LY|MUAMMAR QADHAFI","strength":"strong"}"#), "{ok}");
    for (line, secret) in [
        (r#"{"name":"SECRET NAME","kind":"dragon"}"#, "SECRET"),
        (
            r#"{"name":"SECRET NAME","aliases":"SECRET ALIAS"}"#,
            "SECRET",
        ),
        (r#"{"name":"SECRET NAME","SECRET":1}"#, "SECRET"),
        (r#"{"name":"SECRET NAME""#, "SECRET"),
        (r#"["SECRET NAME"]"#, "SECRET"),
        (r#"{"aliases":["SECRET NAME"]}"#, "SECRET"),
        (
            r#"{"name":"SECRET NAME","ids":[{"type":"LEI","value":5}]}"#,
            "SECRET",
        ),
        ("", "SECRET"),
    ] {
        let out = keys_json_line(line);
        assert!(out.starts_with(r#"{"error":""#), "{line} -> {out}");
        assert!(!out.contains(secret), "{line} -> {out}");
    }
}

#[test]
fn tables_are_loaded() {
    assert!(super::legal_forms::table().len() > 100);
    assert!(super::honorifics::table().len() > 50);
    assert_eq!(basic_tokens("Co., Ltd.", Backend::AnyAscii), ["CO", "LTD"]);
}

fn party_strategy() -> impl Strategy<Value = Party> {
    let name = prop_oneof![
        ".*",
        "[A-Za-z ,.'-]{0,40}",
        "[\\p{Cyrillic} ]{0,20}",
        "[\\p{Arabic} \u{200f}\u{200d}]{0,20}",
        "[\\p{Han}\\p{Hangul} ]{0,10}",
    ];
    let kind = prop_oneof![
        Just(PartyKind::Person),
        Just(PartyKind::Organisation),
        Just(PartyKind::Vessel),
        Just(PartyKind::Aircraft),
    ];
    (
        kind,
        name.clone(),
        prop::collection::vec(name, 0..4),
        prop::collection::vec("[A-Za-z ]{0,12}", 0..3),
        prop::option::of("[0-9-]{0,10}"),
    )
        .prop_map(|(kind, name, aliases, countries, birth_date)| Party {
            kind,
            name,
            aliases,
            countries,
            birth_date,
            ..Party::default()
        })
}

proptest! {
    #[test]
    fn normalisation_is_idempotent(s in ".*", person in any::<bool>()) {
        let kind = if person { PartyKind::Person } else { PartyKind::Organisation };
        let once = name_tokens(&s, kind).join(" ");
        let twice = name_tokens(&once, kind).join(" ");
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn keys_are_deterministic_and_alias_order_free(p in party_strategy()) {
        let a = match_keys(&p);
        prop_assert_eq!(&a, &match_keys(&p));
        let mut q = p.clone();
        q.aliases.reverse();
        q.countries.reverse();
        prop_assert_eq!(&a, &match_keys(&q));
        for k in &a {
            prop_assert!(k.value.starts_with("mk2|"));
        }
        for side in [Side::Listed, Side::Query] {
            let full = party_keys(&p, side);
            prop_assert_eq!(&full, &party_keys(&p, side));
            for v in full.all_values() {
                prop_assert!(v.starts_with("mk2|"));
            }
            for n in &full.names {
                prop_assert!(n.threshold >= 1 && n.threshold <= n.slots.len());
            }
        }
    }

    #[test]
    fn keys_line_never_panics(s in ".*") {
        let out = keys_json_line(&s);
        let ok = out.starts_with(r#"{"keys":"#) || out.starts_with(r#"{"error":"#);
        prop_assert!(ok);
    }
}

#[test]
fn no_panic_on_hostile_input() {
    let big = "Ж".repeat(500_000); // 1 MB
    let mixed: String = (0u32..0x3_0000)
        .filter_map(char::from_u32)
        .step_by(7)
        .collect();
    for name in [
        String::new(),
        big,
        mixed,
        "\u{0}\u{1}\u{7f}\u{200f}\u{202e}\u{fffd}".into(),
        ",".repeat(1000),
        "ال".repeat(1000),
        "ABD ".repeat(1000),
    ] {
        for kind in [PartyKind::Person, PartyKind::Organisation] {
            let p = Party {
                kind,
                name: name.clone(),
                aliases: vec![name.clone()],
                ..Party::default()
            };
            let _ = match_keys(&p);
            let _ = party_keys(&p, Side::Query);
        }
    }
}

/// Runs the evaluation's SDN part on the real list (see `node/build.rs`).
#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
fn whole_sdn_list_derives_keys() {
    let dir =
        crate::lists::shared_data_dir().expect("../shared/data was there when this test was built");
    let path = dir.join("ofac_sdn_2023-12-28/sdn.csv");
    let rows = crate::lists::read(crate::lists::Format::Sdn, &path).expect("the SDN list reads");
    let parties: Vec<Party> = rows
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| r.party)
        .collect();
    assert!(parties.len() > 13_000);
    let with_keys = parties.iter().filter(|p| !match_keys(p).is_empty()).count();
    assert!(
        with_keys * 100 >= parties.len() * 99,
        "{with_keys} of {}",
        parties.len()
    );
}

/// The private path's keys meet across scripts by consonants: a name written in Arabic
/// script, screened against the same name listed in Latin letters, shares a consonant
/// key; two names written with vowels never meet on consonants alone.
#[test]
fn exact_keys_meet_across_scripts_by_consonants() {
    let person = |name: &str| Party {
        kind: PartyKind::Person,
        name: name.into(),
        ..Party::default()
    };
    let shared = |listed: &Party, query: &Party| -> Vec<KeyKind> {
        let offered = crate::party::exact_keys(listed, Side::Listed);
        crate::party::exact_keys(query, Side::Query)
            .into_iter()
            .filter(|q| offered.iter().any(|l| l.value == q.value))
            .map(|k| k.kind)
            .collect()
    };
    let latin = person("AIMAN MUHAMMED RABI AL-ZAWAHIRI");
    let arabic = person("أيمن محمد ربيع الظواهري");
    let kinds = shared(&latin, &arabic);
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, KeyKind::Consonants | KeyKind::ConsonantSeq)),
        "{kinds:?}"
    );
    let other = person("AMIN MAHMOUD RABIA ZUHAIRI");
    assert!(
        !shared(&latin, &other)
            .iter()
            .any(|k| matches!(k, KeyKind::Consonants | KeyKind::ConsonantSeq))
    );
}
