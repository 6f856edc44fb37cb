//! `docs/configuration.md` and the config structs cannot drift apart.
//!
//! The doc's key tables (rows starting with ``| `key` ``, under the headings
//! `## node.toml reference` and `## cli.toml reference`) must list exactly the
//! keys of `NodeConfig` and `CliConfig`, with the code's defaults; the example
//! files in the doc (the ```` ```toml ```` fence after each `<!-- ... -->`
//! marker) must parse, validate and use only documented keys.
//!
//! Key paths are dotted (`tls.handshake_timeout_secs`), arrays of tables are
//! written `peers[].endpoint`, and the `groups` map is `groups.<name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tessera_cli::client::CliConfig;
use tessera_cli::dev_certs;
use tessera_node::config::NodeConfig;
use toml::{Table, Value};

const DOC: &str = include_str!("../../docs/configuration.md");
const DOC_NAME: &str = "docs/configuration.md";

const NODE_HEADING: &str = "## node.toml reference";
const CLI_HEADING: &str = "## cli.toml reference";
const EXAMPLE_NODE: &str = "<!-- example node.toml -->";
const MINIMAL_NODE: &str = "<!-- minimal node.toml -->";
const EXAMPLE_CLI: &str = "<!-- example cli.toml -->";

/// The key of a map whose keys are names chosen by the operator.
const GROUPS: &str = "groups";
const GROUP_ROW: &str = "groups.<name>";

/// An unknown key inserted to make serde list a struct's fields.
const PROBE: &str = "zz_config_doc_probe";

/// One row of a key table in the doc.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    default: String,
    line: usize,
}

/// What the Default column says.
#[derive(Debug, Clone, PartialEq)]
enum DocDefault {
    /// `required`: no default, the key must be given.
    Required,
    /// `unset ...`: absent unless given (an `Option`, or an empty map).
    Unset,
    /// A TOML value in backticks.
    Value(Value),
}

impl Row {
    fn parsed_default(&self) -> DocDefault {
        let cell = self.default.as_str();
        if cell == "required" {
            return DocDefault::Required;
        }
        if cell.starts_with("unset") {
            return DocDefault::Unset;
        }
        let literal = cell
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| {
                panic!(
                    "{DOC_NAME}:{}: the default of `{}` is {cell:?}: write `required`, \
                     `unset (...)` or a TOML value in backticks",
                    self.line, self.key
                )
            });
        DocDefault::Value(parse_value(literal).unwrap_or_else(|e| {
            panic!(
                "{DOC_NAME}:{}: the default of `{}`, {literal}, is not a TOML value: {e}",
                self.line, self.key
            )
        }))
    }
}

/// Parses a single TOML value such as `10000`, `"data"` or `[]`.
fn parse_value(literal: &str) -> Result<Value, toml::de::Error> {
    let mut table: Table = toml::from_str(&format!("v = {literal}"))?;
    Ok(table.remove("v").unwrap_or(Value::Boolean(false)))
}

/// The key-table rows under the level-2 heading `heading`, by key.
fn doc_rows(heading: &str) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    let mut current = "";
    for (i, line) in DOC.lines().enumerate() {
        let line_no = i + 1;
        if line.starts_with("## ") {
            current = line.trim_end();
            continue;
        }
        if current != heading || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", key, type, default, description, ""
        assert!(
            cells.len() == 6,
            "{DOC_NAME}:{line_no}: a key row needs 4 cells (key, type, default, description) \
             and no `|` inside a cell: {line}"
        );
        let key = cells[1].trim_matches('`').to_owned();
        assert!(
            !cells[2].is_empty() && !cells[4].is_empty(),
            "{DOC_NAME}:{line_no}: `{key}` needs a type and a description"
        );
        let row = Row {
            key: key.clone(),
            default: cells[3].to_owned(),
            line: line_no,
        };
        if let Some(before) = rows.insert(key.clone(), row) {
            panic!(
                "{DOC_NAME}:{line_no}: `{key}` is documented twice (also line {})",
                before.line
            );
        }
    }
    assert!(
        !rows.is_empty(),
        "{DOC_NAME}: no key rows (lines starting with \"| `\") under the heading {heading:?}"
    );
    rows
}

/// The body of the ```` ```toml ```` fence that follows `marker`.
fn doc_example(marker: &str) -> &'static str {
    let at = DOC
        .find(marker)
        .unwrap_or_else(|| panic!("{DOC_NAME}: the marker line {marker} is missing"));
    let rest = DOC[at + marker.len()..].trim_start();
    let body = rest.strip_prefix("```toml\n").unwrap_or_else(|| {
        panic!("{DOC_NAME}: the marker {marker} must be followed by a ```toml fence")
    });
    let end = body
        .find("\n```")
        .unwrap_or_else(|| panic!("{DOC_NAME}: the ```toml fence after {marker} is not closed"));
    &body[..=end]
}

/// Every leaf key path of a TOML document, with the values found there (more
/// than one for the fields of an array of tables or for `groups.<name>`).
fn flatten(table: &Table) -> BTreeMap<String, Vec<Value>> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, Vec<Value>>) {
        match value {
            Value::Table(table) => {
                for (key, child) in table {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    match child {
                        Value::Table(groups) if path == GROUPS => {
                            for members in groups.values() {
                                out.entry(GROUP_ROW.to_owned())
                                    .or_default()
                                    .push(members.clone());
                            }
                        }
                        _ => walk(&path, child, out),
                    }
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table) => {
                for item in items {
                    walk(&format!("{prefix}[]"), item, out);
                }
            }
            leaf => out.entry(prefix.to_owned()).or_default().push(leaf.clone()),
        }
    }
    let mut out = BTreeMap::new();
    walk("", &Value::Table(table.clone()), &mut out);
    out
}

/// A `NodeConfig` as a TOML table.
fn to_table(config: &NodeConfig) -> Table {
    match Value::try_from(config).expect("the config serializes to TOML") {
        Value::Table(table) => table,
        other => panic!(
            "the config serialized to a {}, not a table",
            other.type_str()
        ),
    }
}

/// The tables of `table` that are structs (every table but the `groups` map),
/// as (key path, path of tables to reach it); arrays of tables by their first
/// element.
fn struct_tables(table: &Table) -> Vec<(String, Vec<String>)> {
    fn walk(prefix: &str, route: &[String], table: &Table, out: &mut Vec<(String, Vec<String>)>) {
        out.push((prefix.to_owned(), route.to_vec()));
        for (key, child) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let mut next = route.to_vec();
            next.push(key.clone());
            match child {
                Value::Table(_) if path == GROUPS => {}
                Value::Table(inner) => walk(&path, &next, inner, out),
                Value::Array(items) => {
                    if let Some(Value::Table(first)) = items.first() {
                        walk(&format!("{path}[]"), &next, first, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", &[], table, &mut out);
    out
}

/// The table reached by `route` (an array of tables: its first element).
fn table_at<'a>(table: &'a mut Table, route: &[String]) -> &'a mut Table {
    let Some((first, rest)) = route.split_first() else {
        return table;
    };
    let next = match table.get_mut(first) {
        Some(Value::Table(inner)) => inner,
        Some(Value::Array(items)) => match items.first_mut() {
            Some(Value::Table(inner)) => inner,
            _ => panic!("{first} is not an array of tables"),
        },
        _ => panic!("{first} is not a table"),
    };
    table_at(next, rest)
}

/// The field names serde expects in the struct at `route`, read from the
/// `deny_unknown_fields` error for an unknown key put there.
fn struct_fields(
    example: &Table,
    route: &[String],
    parse: impl Fn(&str) -> Result<(), String>,
) -> Vec<String> {
    let mut probed = example.clone();
    table_at(&mut probed, route).insert(PROBE.to_owned(), Value::Integer(0));
    let text = toml::to_string(&probed).expect("the probed example serializes");
    let Err(message) = parse(&text) else {
        panic!("an unknown key in [{}] was accepted", route.join("."));
    };
    let needle = format!("unknown field `{PROBE}`");
    let at = message.find(&needle).unwrap_or_else(|| {
        panic!(
            "an unknown key in [{}] was not refused as unknown: {message}",
            route.join(".")
        )
    });
    let tail = &message[at + needle.len()..];
    let tail = tail.lines().next().unwrap_or_default();
    // "..., expected one of `a`, `b`" / "expected `a` or `b`" / "there are no fields"
    let fields: Vec<String> = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(
        !fields.is_empty(),
        "cannot read the fields of [{}] from: {message}",
        route.join(".")
    );
    fields
}

/// Removes the key at a doc path (`tls.ca`, `peers[].agency`) wherever it occurs.
fn remove_path(table: &mut Table, path: &str) -> bool {
    fn go(table: &mut Table, segments: &[&str]) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return false;
        };
        if let Some(array) = first.strip_suffix("[]") {
            let Some(Value::Array(items)) = table.get_mut(array) else {
                return false;
            };
            let mut removed = false;
            for item in items {
                if let Value::Table(inner) = item {
                    removed |= go(inner, rest);
                }
            }
            return removed;
        }
        if rest.is_empty() {
            return table.remove(*first).is_some();
        }
        match table.get_mut(*first) {
            Some(Value::Table(inner)) => go(inner, rest),
            _ => false,
        }
    }
    let segments: Vec<&str> = path.split('.').collect();
    go(table, &segments)
}

fn parse_node(text: &str) -> Result<(), String> {
    toml::from_str::<NodeConfig>(text)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn parse_cli(text: &str) -> Result<(), String> {
    toml::from_str::<CliConfig>(text)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn raw_table(text: &str, what: &str) -> Table {
    toml::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid TOML: {e}"))
}

/// Fails listing `missing` and `stale` keys, if any.
fn assert_same_keys(found: &BTreeSet<String>, documented: &BTreeSet<String>, what: &str) {
    let undocumented: Vec<&String> = found.difference(documented).collect();
    let stale: Vec<&String> = documented.difference(found).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{what}:\n  keys of the code with no row in {DOC_NAME}: {undocumented:?}\n  \
         rows in {DOC_NAME} for keys the code does not have: {stale:?}"
    );
}

/// Asserts every serde field of every struct table has a doc row (a field
/// that is an `Option` left unset in the example does not serialize, so the
/// flattened example alone would not catch it).
fn assert_fields_documented(
    example: &Table,
    documented: &BTreeSet<String>,
    parse: impl Fn(&str) -> Result<(), String> + Copy,
    what: &str,
) {
    for (prefix, route) in struct_tables(example) {
        for field in struct_fields(example, &route, parse) {
            let path = if prefix.is_empty() {
                field
            } else {
                format!("{prefix}.{field}")
            };
            let covered = documented.iter().any(|key| {
                key == &path
                    || key.starts_with(&format!("{path}."))
                    || key.starts_with(&format!("{path}[]."))
            });
            assert!(
                covered,
                "{what}: the field `{path}` has no row in {DOC_NAME} \
                 (or the example there does not show it)"
            );
        }
    }
}

#[test]
fn every_node_key_is_documented_and_every_row_is_a_key() {
    let rows = doc_rows(NODE_HEADING);
    let documented: BTreeSet<String> = rows.keys().cloned().collect();
    let text = doc_example(EXAMPLE_NODE);
    let config: NodeConfig = toml::from_str(text).unwrap_or_else(|e| {
        panic!("the example node.toml in {DOC_NAME} does not parse as NodeConfig: {e}")
    });

    // Every key the code serializes, from a fully populated config.
    let found: BTreeSet<String> = flatten(&to_table(&config)).into_keys().collect();
    assert_same_keys(
        &found,
        &documented,
        "NodeConfig (serialized from the example node.toml)",
    );

    // The example shows every key, so a reader sees each one in place.
    let shown: BTreeSet<String> = flatten(&raw_table(text, "the example node.toml"))
        .into_keys()
        .collect();
    assert_same_keys(&shown, &documented, "the example node.toml");

    // And every serde field, including options that serialize to nothing.
    assert_fields_documented(
        &raw_table(text, "the example node.toml"),
        &documented,
        parse_node,
        "NodeConfig",
    );
}

#[test]
fn node_defaults_in_the_doc_are_the_code_defaults() {
    let rows = doc_rows(NODE_HEADING);
    let text = doc_example(MINIMAL_NODE);
    let raw = raw_table(text, "the smallest node.toml");

    // The smallest example holds exactly the keys documented as required.
    let given: BTreeSet<String> = flatten(&raw).into_keys().collect();
    let required: BTreeSet<String> = rows
        .values()
        .filter(|r| r.parsed_default() == DocDefault::Required)
        .map(|r| r.key.clone())
        .collect();
    let extra: Vec<&String> = given.difference(&required).collect();
    let missing: Vec<&String> = required.difference(&given).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "the smallest node.toml in {DOC_NAME} must hold exactly the required keys:\n  \
         given there but not documented as required: {extra:?}\n  \
         documented as required but not given there: {missing:?}"
    );

    // Everything not given has a default ...
    let config: NodeConfig = toml::from_str(text).unwrap_or_else(|e| {
        panic!("the smallest node.toml in {DOC_NAME} does not parse as NodeConfig: {e}")
    });
    // ... and every required key really is required.
    for key in &required {
        let mut without = raw.clone();
        assert!(remove_path(&mut without, key), "cannot remove `{key}`");
        let without = toml::to_string(&without).expect("serializes");
        let field = key.rsplit('.').next().unwrap_or(key);
        match parse_node(&without) {
            Ok(()) => panic!(
                "`{key}` is documented as required in {DOC_NAME}, but NodeConfig has a default for it"
            ),
            Err(e) => assert!(
                e.contains(field),
                "leaving out `{key}` fails without naming it: {e}"
            ),
        }
    }

    let serialized = flatten(&to_table(&config));
    for row in rows.values() {
        match row.parsed_default() {
            DocDefault::Required => {}
            DocDefault::Unset => {
                if let Some(actual) = serialized.get(&row.key) {
                    panic!(
                        "{DOC_NAME}:{}: `{}` is documented as unset by default, but the code's default is {}",
                        row.line,
                        row.key,
                        show(actual)
                    );
                }
            }
            DocDefault::Value(documented) => {
                let actual = serialized.get(&row.key).unwrap_or_else(|| {
                    panic!(
                        "{DOC_NAME}:{}: `{}` is documented with the default {}, but the code has none",
                        row.line, row.key, row.default
                    )
                });
                assert!(
                    actual.iter().all(|v| v == &documented),
                    "{DOC_NAME}:{}: `{}` is documented with the default {}, but the code's default is {}",
                    row.line,
                    row.key,
                    row.default,
                    show(actual)
                );
            }
        }
    }
}

/// Values as TOML, for messages.
fn show(values: &[Value]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `text` as `<dir>/DE-BAFA/node.toml` with an empty file at every path
/// it names, and loads it the way the daemon does (resolve, validate).
fn load_with_files(dir: &Path, text: &str) -> Result<NodeConfig, String> {
    let base = dir.join("DE-BAFA");
    std::fs::create_dir_all(&base).expect("mkdir");
    let mut config: NodeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    config.resolve_paths(&base);
    let files: Vec<PathBuf> = config
        .tls
        .ca
        .iter()
        .chain(&config.tls.crls)
        .chain([&config.tls.cert, &config.tls.key, &config.signing.key])
        .cloned()
        .collect();
    for file in files {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&file, b"").expect("touch");
    }
    let path = base.join("node.toml");
    std::fs::write(&path, text).expect("write node.toml");
    NodeConfig::load(&path).map_err(|e| e.to_string())
}

#[test]
fn the_node_examples_pass_validation() {
    for marker in [EXAMPLE_NODE, MINIMAL_NODE] {
        let dir = tempfile::tempdir().expect("tmp");
        let config = load_with_files(dir.path(), doc_example(marker))
            .unwrap_or_else(|e| panic!("the node.toml after {marker} in {DOC_NAME}: {e}"));
        // Relative paths resolved against the config file's directory.
        let base = dir.path().join("DE-BAFA");
        assert_eq!(config.data_dir, base.join("data"), "{marker}");
        assert_eq!(config.tls.cert, base.join("node.pem"), "{marker}");
    }
}

#[test]
fn cli_keys_are_documented_and_every_row_is_a_key() {
    let rows = doc_rows(CLI_HEADING);
    let documented: BTreeSet<String> = rows.keys().cloned().collect();
    let text = doc_example(EXAMPLE_CLI);
    // CliConfig is only Deserialize: the example must parse (unknown keys are
    // refused), show every documented key, and every serde field must be documented.
    toml::from_str::<CliConfig>(text).unwrap_or_else(|e| {
        panic!("the example cli.toml in {DOC_NAME} does not parse as CliConfig: {e}")
    });
    let raw = raw_table(text, "the example cli.toml");
    let shown: BTreeSet<String> = flatten(&raw).into_keys().collect();
    assert_same_keys(&shown, &documented, "the example cli.toml");
    assert_fields_documented(&raw, &documented, parse_cli, "CliConfig");

    // Required means required; anything else may be left out.
    for row in rows.values() {
        let mut without = raw.clone();
        assert!(
            remove_path(&mut without, &row.key),
            "cannot remove `{}`",
            row.key
        );
        let without = toml::to_string(&without).expect("serializes");
        let result = parse_cli(&without);
        match row.parsed_default() {
            DocDefault::Required => assert!(
                result.is_err(),
                "{DOC_NAME}:{}: `{}` is documented as required, but CliConfig has a default for it",
                row.line,
                row.key
            ),
            DocDefault::Unset | DocDefault::Value(_) => {
                if let Err(e) = result {
                    panic!(
                        "{DOC_NAME}:{}: `{}` is documented with a default, but leaving it out fails: {e}",
                        row.line, row.key
                    );
                }
            }
        }
    }
}

#[test]
fn what_certs_dev_writes_is_documented_and_valid() {
    let dir = tempfile::tempdir().expect("tmp");
    let agencies = ["DE-BAFA".to_owned(), "FR-SBDU".to_owned()];
    let made = dev_certs::generate(dir.path(), &agencies, 7400).expect("certs dev");
    let node_rows: BTreeSet<String> = doc_rows(NODE_HEADING).into_keys().collect();
    let cli_rows: BTreeSet<String> = doc_rows(CLI_HEADING).into_keys().collect();
    for agency in &made {
        let node_path = agency.dir.join("node.toml");
        NodeConfig::load(&node_path).unwrap_or_else(|e| panic!("{}: {e}", node_path.display()));
        let text = std::fs::read_to_string(&node_path).expect("read node.toml");
        for key in flatten(&raw_table(&text, "node.toml")).into_keys() {
            assert!(
                node_rows.contains(&key),
                "`tessera certs dev` writes `{key}` in node.toml, but {DOC_NAME} has no row for it"
            );
        }
        let cli_path = agency.dir.join("cli.toml");
        CliConfig::load(&cli_path).unwrap_or_else(|e| panic!("{}: {e}", cli_path.display()));
        let text = std::fs::read_to_string(&cli_path).expect("read cli.toml");
        for key in flatten(&raw_table(&text, "cli.toml")).into_keys() {
            assert!(
                cli_rows.contains(&key),
                "`tessera certs dev` writes `{key}` in cli.toml, but {DOC_NAME} has no row for it"
            );
        }
    }
}
