//! `tessera keys` as docs/architecture.md ("The party line contract") and docs/cli.md define it: one party by flags,
//! or JSON Lines on stdin with one line out per line in, in order, and an
//! error line (never quoting the input) for a line it cannot read.

use std::io::Write;
use std::process::{Command, Stdio};

use tessera_tests::cli_binary;

fn keys(stdin: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(cli_binary!())
        .arg("keys")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tessera keys");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect()
}

#[test]
fn one_line_out_per_line_in_and_errors_continue() {
    let input = [
        r#"{"kind":"organisation","name":"Polotsk-Steklovolokno OAO","countries":["BY"]}"#,
        r#"{"name": "Secret Name Unclosed"#,
        "not json at all",
        r#"{"kind":"spaceship","name":"X"}"#,
        r#"{"kind":"person","name":"Muammar QADHAFI","birth_date":"1942","countries":["LY"]}"#,
        r#"{"aliases":["no name"]}"#,
    ]
    .join("\n");
    let out = keys(&input);
    assert_eq!(out.len(), 6, "{out:?}");
    for i in [0, 4] {
        let ks = out[i]["keys"].as_array().expect("keys");
        assert!(!ks.is_empty());
        for k in ks {
            assert!(
                k["value"].as_str().expect("value").starts_with("mk2|"),
                "{k}"
            );
            assert!(
                ["weak", "medium", "strong"].contains(&k["strength"].as_str().expect("strength"))
            );
        }
    }
    for i in [1, 2, 3, 5] {
        let err = out[i]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("line {i}: {}", out[i]));
        assert!(
            !err.contains("Secret") && !err.contains("spaceship") && !err.contains("no name"),
            "{err}"
        );
    }
    // The same party by flags gives the same keys as by JSON.
    let by_flags = Command::new(cli_binary!())
        .args([
            "keys",
            "--name",
            "Polotsk-Steklovolokno OAO",
            "--kind",
            "organisation",
            "--country",
            "BY",
        ])
        .output()
        .expect("run");
    let by_flags: serde_json::Value = serde_json::from_slice(&by_flags.stdout).expect("json");
    assert_eq!(by_flags, out[0]);
}

/// A reader that stops early (`tessera keys | head -1`) ends the command quietly, with
/// success: what it read was whole.
#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(cli_binary!())
        .arg("keys")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tessera keys");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let line = "{\"name\":\"Example Widget Trading Corp\"}\n".repeat(20_000);
        // The child may stop reading once its reader is gone: a failed write is expected.
        let _ = stdin.write_all(line.as_bytes());
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert!(first.starts_with("{\"keys\""), "{first}");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// A country that is not known is said on stderr, not silently dropped; an `--id` whose
/// middle part looks like a country code but is none is said to be read as the value.
#[test]
fn unknown_countries_are_warned_about() {
    let out = Command::new(cli_binary!())
        .args([
            "keys",
            "--name",
            "Acme Trading",
            "--country",
            "Atlantis",
            "--country",
            "DE",
            "--id",
            "REG:QQ:12345",
        ])
        .output()
        .expect("run tessera keys");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --country \"Atlantis\" is not a country"),
        "{stderr}"
    );
    assert!(!stderr.contains("\"DE\""), "{stderr}");
    assert!(
        stderr.contains("\"QQ\" is not a country code known here; read as part of the value"),
        "{stderr}"
    );
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap_or_default())
            .expect("JSON line");
    assert!(line.get("keys").is_some(), "{line}");
}

/// The example of docs/cli.md is what `tessera keys` prints for it, byte for byte.
#[test]
fn the_documented_example_is_what_the_command_prints() {
    let doc = include_str!("../../docs/cli.md");
    let command = "$ tessera keys --name \"ACME Trading GmbH\" --country DE\n";
    let at = doc.find(command).expect("docs/cli.md shows the example") + command.len();
    let documented = doc[at..].lines().next().expect("the example's output line");
    let out = Command::new(cli_binary!())
        .args(["keys", "--name", "ACME Trading GmbH", "--country", "DE"])
        .output()
        .expect("run tessera keys");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        printed.trim_end(),
        documented,
        "docs/cli.md's example is stale"
    );
}
