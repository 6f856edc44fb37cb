//! The deployment files under `deploy/` agree with the node and the CLI as built.
//!
//! CI has no Docker daemon and no Kubernetes cluster, so these tests check the files themselves:
//! - `docker-compose.yml`: the `certs` service's script is run for real (with this build's
//!   `tessera` and the volume path mapped to a temporary directory), twice, to show that it makes
//!   the PKI once and keeps it; each node service's config is a file that script writes and
//!   passes `NodeConfig::load`; its listen ports are those of `tessera certs dev --hostnames`;
//!   its data volume is mounted at its `data_dir`; only operator ports are published, on loopback;
//!   the health checks run `tessera ... health` with the agency's own `cli.toml`.
//! - `k8s/*.yaml`: the ConfigMap's `node.toml` parses as `NodeConfig` and, with the Secret mapped
//!   to `tessera certs dev` output and the peer keys filled in, passes `validate()`; ports agree
//!   between node.toml, containerPorts and Services; every certificate and key path lies under
//!   the Secret's mount and names one of its keys; `data_dir` is the PVC mount; probes run
//!   `tessera ... health`; the pod runs as non-root with a read-only root filesystem.
//! - `Dockerfile` and `systemd/tessera-node.service`: the entry point, health check, user, volume
//!   and ports; the sandboxing keys of the unit.
//!
//! Where a Docker daemon answers, `docker compose config` is run as well; otherwise the test says
//! so on stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use tessera_cli::client::CliConfig;
use tessera_cli::dev_certs::{DevAgency, generate_with};
use tessera_node::config::{NodeConfig, split_endpoint};
use tessera_tests::cli_binary;
use yaml_rust2::{Yaml, YamlLoader};

const AGENCIES: [&str; 3] = ["DE-BAFA", "FR-SBDU", "US-BIS"];
const UID: i64 = 10001;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn load_yaml(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn agencies() -> Vec<String> {
    AGENCIES.iter().map(|a| (*a).to_owned()).collect()
}

fn dev_pki(dir: &Path) -> Vec<DevAgency> {
    generate_with(dir, &agencies(), 7400, true).expect("tessera certs dev --hostnames")
}

/// A scalar as a string, with `what` in the panic message.
fn text<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {y:?}"))
}

fn list<'a>(y: &'a Yaml, what: &str) -> &'a [Yaml] {
    y.as_vec()
        .unwrap_or_else(|| panic!("{what}: expected a list, found {y:?}"))
}

fn strings(y: &Yaml, what: &str) -> Vec<String> {
    list(y, what)
        .iter()
        .map(|v| match v {
            Yaml::String(s) => s.clone(),
            Yaml::Integer(i) => i.to_string(),
            other => panic!("{what}: expected strings, found {other:?}"),
        })
        .collect()
}

fn int(y: &Yaml, what: &str) -> i64 {
    y.as_i64()
        .unwrap_or_else(|| panic!("{what}: expected an integer, found {y:?}"))
}

fn port_of(listen: &str) -> u16 {
    split_endpoint(listen)
        .unwrap_or_else(|| panic!("{listen:?} is not host:port"))
        .1
}

/// `tessera <args> --help` succeeds only if every subcommand and flag in `args` exists: the
/// health-check command lines are real command lines of this build.
fn assert_cli_accepts(args: &[String], what: &str) {
    assert_eq!(
        args.first().map(String::as_str),
        Some("tessera"),
        "{what}: {args:?}"
    );
    let out = Command::new(cli_binary!())
        .args(&args[1..])
        .arg("--help")
        .output()
        .expect("run tessera");
    assert!(
        out.status.success(),
        "{what}: `{}` is not a valid tessera command line: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A health check or probe: `tessera --config CLI_TOML health`; returns CLI_TOML.
fn health_config(argv: &[String], what: &str) -> String {
    assert_cli_accepts(argv, what);
    assert_eq!(
        argv.last().map(String::as_str),
        Some("health"),
        "{what}: {argv:?}"
    );
    let i = argv
        .iter()
        .position(|a| a == "--config")
        .unwrap_or_else(|| panic!("{what}: no --config in {argv:?}"));
    argv[i + 1].clone()
}

// ------------------------------------------------------------------------------------------
// docker-compose.yml

/// A compose volume entry `source:target[:ro]`.
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

fn mounts(service: &Yaml, name: &str) -> Vec<Mount> {
    strings(&service["volumes"], &format!("services.{name}.volumes"))
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            assert!(
                (2..=3).contains(&parts.len()),
                "services.{name}.volumes: {v:?} is not source:target[:mode]"
            );
            Mount {
                source: parts[0].to_owned(),
                target: parts[1].to_owned(),
                read_only: parts.get(2) == Some(&"ro"),
            }
        })
        .collect()
}

/// Compose interpolates `$NAME` and `${NAME}`; a literal dollar is written `$$`. Returns the
/// script as the shell sees it, refusing any single `$` (compose would reject or substitute it).
fn uninterpolate(script: &str) -> String {
    let mut out = String::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            assert_eq!(
                chars.next(),
                Some('$'),
                "the certs script has a single `$`, which compose would interpolate; write `$$`:\n{script}"
            );
        }
        out.push(c);
    }
    out
}

fn run_script(script: &str, bin: &Path) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "the certs service's script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn compose_pilot_matches_certs_dev_hostnames() {
    let compose = &load_yaml(&deploy_dir().join("docker-compose.yml"))[0];
    let services = compose["services"]
        .as_hash()
        .expect("services is a mapping");
    let names: BTreeSet<&str> = services.keys().map(|k| text(k, "service name")).collect();
    let expected: BTreeSet<&str> = ["certs", "de-bafa", "fr-sbdu", "us-bis"].into();
    assert_eq!(names, expected, "compose services");

    let tmp = tempfile::tempdir().expect("tempdir");
    let dev = dev_pki(&tmp.path().join("reference"));

    // One image for all, built from deploy/Dockerfile with the repository root as context.
    let certs = &compose["services"]["certs"];
    let image = text(&certs["image"], "services.certs.image");
    for name in &names {
        assert_eq!(
            text(&compose["services"][*name]["image"], "image"),
            image,
            "services.{name}.image: every service runs the same image"
        );
    }
    let context = deploy_dir().join(text(&certs["build"]["context"], "build.context"));
    let dockerfile = context.join(text(&certs["build"]["dockerfile"], "build.dockerfile"));
    assert_eq!(
        dockerfile
            .canonicalize()
            .expect("the build's Dockerfile exists"),
        deploy_dir()
            .join("Dockerfile")
            .canonicalize()
            .expect("deploy/Dockerfile")
    );
    assert!(
        context.join("Cargo.toml").is_file(),
        "the build context is the workspace root"
    );

    // The certs service: `sh -c SCRIPT`, writing into the `pki` volume.
    assert_eq!(
        strings(&certs["entrypoint"], "services.certs.entrypoint"),
        ["sh", "-c"]
    );
    let command = strings(&certs["command"], "services.certs.command");
    assert_eq!(command.len(), 1, "services.certs.command is one script");
    let script = uninterpolate(&command[0]);
    let tokens: Vec<&str> = script.split_whitespace().collect();
    let out_at = tokens
        .iter()
        .position(|t| *t == "--out")
        .expect("certs dev --out");
    let out_dir = tokens[out_at + 1].to_owned();
    let given: Vec<&str> = tokens
        .windows(2)
        .filter(|w| w[0] == "--agency")
        .map(|w| w[1])
        .collect();
    assert_eq!(given, AGENCIES, "--agency order decides the ports");
    assert!(tokens.contains(&"--hostnames"), "certs dev --hostnames");
    assert!(
        !tokens.contains(&"--base-port"),
        "the compose ports assume the default --base-port 7400"
    );
    let certs_mounts = mounts(certs, "certs");
    let pki = certs_mounts
        .iter()
        .find(|m| m.target == out_dir)
        .unwrap_or_else(|| panic!("services.certs mounts no volume at --out {out_dir}"));
    assert!(!pki.read_only, "the certs service writes its volume");
    assert!(
        compose["volumes"][pki.source.as_str()].is_null()
            || compose["volumes"][pki.source.as_str()].is_hash(),
        "{} is a named volume",
        pki.source
    );

    // Run the script with this build's `tessera` and the volume at a temporary directory.
    let volume = tmp.path().join("pki-volume");
    std::fs::create_dir(&volume).expect("mkdir");
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    std::os::unix::fs::symlink(cli_binary!(), bin.join("tessera")).expect("symlink");
    let mapped = |p: &str| -> PathBuf {
        let rest = p
            .strip_prefix(&out_dir)
            .unwrap_or_else(|| panic!("{p} is not in the certs volume at {out_dir}"));
        volume.join(rest.trim_start_matches('/'))
    };
    let local_script = script.replace(&out_dir, &volume.display().to_string());
    run_script(&local_script, &bin);
    let ca = std::fs::read(volume.join("ca.pem")).expect("the script makes ca.pem");
    let again = run_script(&local_script, &bin);
    assert_eq!(
        std::fs::read(volume.join("ca.pem")).expect("ca.pem"),
        ca,
        "a second start keeps the PKI"
    );
    assert!(again.contains("keeping"), "second run: {again}");

    let node_configs: Vec<NodeConfig> = dev
        .iter()
        .map(|d| check_compose_node(compose, d, &dev, &out_dir, &mapped, pki))
        .collect();
    assert_eq!(node_configs.len(), AGENCIES.len());

    docker_compose_config();
}

/// One node service against what `certs dev --hostnames` made for it; returns its loaded config.
fn check_compose_node(
    compose: &Yaml,
    d: &DevAgency,
    dev: &[DevAgency],
    out_dir: &str,
    mapped: &dyn Fn(&str) -> PathBuf,
    pki: &Mount,
) -> NodeConfig {
    let name = d.host.as_str();
    let svc = &compose["services"][name];
    assert!(svc.is_hash(), "no compose service {name} for {}", d.agency);
    assert_eq!(
        text(&svc["hostname"], "hostname"),
        name,
        "services.{name}.hostname"
    );
    assert_eq!(
        text(&svc["user"], "user"),
        format!("{UID}:{UID}"),
        "services.{name}.user"
    );
    assert_eq!(
        text(&svc["depends_on"]["certs"]["condition"], "depends_on"),
        "service_completed_successfully",
        "services.{name}: start after the PKI exists"
    );
    assert_eq!(
        svc["read_only"].as_bool(),
        Some(true),
        "services.{name}.read_only"
    );
    assert_eq!(
        strings(&svc["cap_drop"], "cap_drop"),
        ["ALL"],
        "services.{name}.cap_drop"
    );
    assert!(
        strings(&svc["security_opt"], "security_opt").contains(&"no-new-privileges:true".into()),
        "services.{name}.security_opt"
    );

    // Its config is a file the certs script wrote, and it loads (and validates) as is.
    let command = strings(&svc["command"], "command");
    assert_eq!(command.len(), 2, "services.{name}.command: --config FILE");
    assert_eq!(command[0], "--config");
    assert!(
        command[1].starts_with(&format!("{out_dir}/")),
        "services.{name}: its config {} is in the PKI volume at {out_dir}",
        command[1]
    );
    let config_file = mapped(&command[1]);
    assert!(
        config_file.is_file(),
        "services.{name}: the certs script did not write {}",
        command[1]
    );
    let config = NodeConfig::load(&config_file).unwrap_or_else(|e| {
        panic!("services.{name}: {} does not load: {e}", command[1]);
    });
    assert_eq!(config.agency, d.agency);
    assert_eq!(
        config.federation.listen,
        format!("{}:{}", d.listen_host, d.federation_port)
    );
    assert_eq!(
        config.operator.listen,
        format!("{}:{}", d.listen_host, d.operator_port)
    );

    // Volumes: the PKI read-only at the same path as in the certs service; data_dir on its own
    // named volume, writable.
    let own_mounts = mounts(svc, name);
    let pki_here = own_mounts
        .iter()
        .find(|m| m.source == pki.source)
        .unwrap_or_else(|| panic!("services.{name} does not mount {}", pki.source));
    assert_eq!(pki_here.target, out_dir, "services.{name}: PKI mount");
    assert!(
        pki_here.read_only,
        "services.{name}: the PKI is mounted :ro"
    );
    let data_dir = config.data_dir.display().to_string();
    assert_eq!(
        data_dir, "/var/lib/tessera",
        "services.{name}: node.compose.toml moves data_dir out of the read-only PKI volume"
    );
    let data = own_mounts
        .iter()
        .find(|m| m.target == data_dir)
        .unwrap_or_else(|| panic!("services.{name}: nothing is mounted at data_dir {data_dir}"));
    assert!(
        !data.read_only,
        "services.{name}: the data volume is writable"
    );
    assert_ne!(data.source, pki.source);
    assert!(
        !data.source.starts_with('.') && !data.source.starts_with('/'),
        "services.{name}: data is a named volume"
    );
    assert!(
        !compose["volumes"][data.source.as_str()].is_badvalue(),
        "volume {} is declared",
        data.source
    );
    for other in dev.iter().filter(|o| o.agency != d.agency) {
        let theirs = mounts(&compose["services"][other.host.as_str()], &other.host);
        assert!(
            theirs.iter().all(|m| m.source != data.source),
            "{} and {} share the data volume {}",
            d.agency,
            other.agency,
            data.source
        );
    }

    // Ports: only the operator port is published, on loopback; the federation port is exposed
    // inside the compose network, where peers dial it by service name.
    assert_eq!(
        strings(&svc["ports"], "ports"),
        [format!("127.0.0.1:{0}:{0}", d.operator_port)],
        "services.{name}.ports"
    );
    assert_eq!(
        strings(&svc["expose"], "expose"),
        [d.federation_port.to_string()],
        "services.{name}.expose"
    );
    for peer in &config.peers {
        let other = dev
            .iter()
            .find(|o| o.agency == peer.agency)
            .expect("a peer of the pilot");
        assert_eq!(
            peer.endpoint,
            format!("{}:{}", other.host, other.federation_port)
        );
        assert!(
            compose["services"][other.host.as_str()].is_hash(),
            "{} dials {}, which is no compose service",
            d.agency,
            peer.endpoint
        );
    }

    // The health check: this agency's cli.toml, pointing at this node's operator port.
    let test = strings(&svc["healthcheck"]["test"], "healthcheck.test");
    assert_eq!(
        test[0], "CMD",
        "services.{name}.healthcheck.test is exec form"
    );
    let cli_path = health_config(&test[1..], &format!("services.{name}.healthcheck"));
    let cli = CliConfig::load(&mapped(&cli_path)).expect("the health check's cli.toml loads");
    assert_eq!(cli.agency, d.agency);
    assert_eq!(cli.endpoint, format!("{name}:{}", d.operator_port));
    for f in cli.tls.ca.iter().chain([&cli.tls.cert, &cli.tls.key]) {
        assert!(f.is_file(), "{} exists", f.display());
    }
    config
}

fn docker_compose_config() {
    let daemon = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !daemon {
        println!("skipped: no docker daemon (docker compose config not run)");
        return;
    }
    let compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !compose {
        println!("skipped: docker compose plugin not installed (docker compose config not run)");
        return;
    }
    let file = deploy_dir().join("docker-compose.yml");
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(&file)
        .args(["config", "--quiet"])
        .output()
        .expect("docker compose config");
    assert!(
        out.status.success(),
        "docker compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("docker compose config: ok");
}

// ------------------------------------------------------------------------------------------
// Kubernetes

fn k8s_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("k8s"))
        .expect("deploy/k8s")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn named_port(ports: &Yaml, name: &str, what: &str) -> i64 {
    let p = list(ports, what)
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{what}: no port named {name}"));
    p["containerPort"]
        .as_i64()
        .or_else(|| p["port"].as_i64())
        .unwrap_or_else(|| panic!("{what}: port {name} has no number"))
}

#[test]
fn kubernetes_manifests_match_the_node() {
    let files = k8s_files();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dev = dev_pki(tmp.path());
    let mut seen = BTreeSet::new();
    let mut secret_keys_all = BTreeSet::new();
    for file in &files {
        let docs = load_yaml(file);
        let what = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let (agency, keys) = check_k8s_agency(&docs, &what, &dev);
        assert!(seen.insert(agency.clone()), "{agency} is deployed twice");
        secret_keys_all.extend(keys);
    }
    let expected: BTreeSet<String> = agencies().into_iter().collect();
    assert_eq!(seen, expected, "one manifest per pilot agency");

    // kustomization.yaml lists every manifest.
    let kustomization = &load_yaml(&deploy_dir().join("k8s/kustomization.yaml"))[0];
    let resources: BTreeSet<String> =
        strings(&kustomization["resources"], "kustomization resources")
            .into_iter()
            .collect();
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(resources, names, "kustomization.yaml resources");

    // The README's Secret recipe names every key the pods mount.
    let readme = read(&deploy_dir().join("k8s/README.md"));
    for key in &secret_keys_all {
        assert!(
            readme.contains(&format!("--from-file={key}=")),
            "deploy/k8s/README.md does not put {key} in the Secret"
        );
    }
}

/// Checks one agency's manifest; returns its agency and the Secret keys it mounts.
fn check_k8s_agency(docs: &[Yaml], what: &str, dev: &[DevAgency]) -> (String, BTreeSet<String>) {
    let sets = of_kind(docs, "StatefulSet");
    assert_eq!(sets.len(), 1, "{what}: one StatefulSet");
    let set = sets[0];
    let spec = &set["spec"];
    assert_eq!(int(&spec["replicas"], "replicas"), 1, "{what}: one replica");
    let pod = &spec["template"]["spec"];
    let containers = list(&pod["containers"], "containers");
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = &containers[0];
    assert_eq!(
        int(
            &pod["terminationGracePeriodSeconds"],
            "terminationGracePeriodSeconds"
        ),
        30,
        "{what}: SIGTERM drains within 30 s"
    );

    // Security: non-root 10001, read-only root, no capabilities, RuntimeDefault seccomp.
    let psc = &pod["securityContext"];
    let csc = &c["securityContext"];
    assert_eq!(
        psc["runAsNonRoot"].as_bool(),
        Some(true),
        "{what}: pod runAsNonRoot"
    );
    assert_eq!(
        psc["runAsUser"].as_i64(),
        Some(UID),
        "{what}: pod runAsUser"
    );
    assert_eq!(
        csc["runAsNonRoot"].as_bool(),
        Some(true),
        "{what}: container runAsNonRoot"
    );
    assert_eq!(
        csc["runAsUser"].as_i64(),
        Some(UID),
        "{what}: container runAsUser"
    );
    assert_eq!(
        csc["readOnlyRootFilesystem"].as_bool(),
        Some(true),
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        csc["allowPrivilegeEscalation"].as_bool(),
        Some(false),
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        strings(&csc["capabilities"]["drop"], "drop"),
        ["ALL"],
        "{what}: drop ALL"
    );
    for sc in [psc, csc] {
        assert_eq!(
            text(&sc["seccompProfile"]["type"], "seccompProfile"),
            "RuntimeDefault",
            "{what}: seccompProfile"
        );
    }
    for kind in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(
                !c["resources"][kind][r].is_badvalue(),
                "{what}: resources.{kind}.{r}"
            );
        }
    }

    // Volumes and mounts.
    let volumes: BTreeMap<&str, &Yaml> = list(&pod["volumes"], "volumes")
        .iter()
        .map(|v| (text(&v["name"], "volume name"), v))
        .collect();
    let claim = list(&spec["volumeClaimTemplates"], "volumeClaimTemplates");
    assert_eq!(claim.len(), 1, "{what}: one volumeClaimTemplate");
    let claim_name = text(&claim[0]["metadata"]["name"], "claim name");
    let mut data_mount = None;
    let mut secret_mount = None;
    let mut config_files = BTreeMap::new(); // mountPath -> ConfigMap key
    let mut config_map_name = None;
    for m in list(&c["volumeMounts"], "volumeMounts") {
        let name = text(&m["name"], "mount name");
        let path = text(&m["mountPath"], "mountPath");
        if name == claim_name {
            data_mount = Some(path.to_owned());
            continue;
        }
        let volume = volumes
            .get(name)
            .unwrap_or_else(|| panic!("{what}: mount of unknown volume {name}"));
        assert_eq!(
            m["readOnly"].as_bool(),
            Some(true),
            "{what}: {path} is read-only"
        );
        if !volume["secret"].is_badvalue() {
            assert!(secret_mount.is_none(), "{what}: one Secret mount");
            secret_mount = Some((path.to_owned(), *volume));
        } else if !volume["configMap"].is_badvalue() {
            let cm = text(&volume["configMap"]["name"], "configMap.name");
            config_map_name = Some(cm.to_owned());
            let key = text(&m["subPath"], "subPath of a ConfigMap file");
            config_files.insert(path.to_owned(), key.to_owned());
        }
    }
    let data_mount = data_mount.unwrap_or_else(|| panic!("{what}: the PVC is not mounted"));
    let (secret_path, secret_volume) =
        secret_mount.unwrap_or_else(|| panic!("{what}: no Secret mount"));
    let secret_name = text(&secret_volume["secret"]["secretName"], "secretName");
    // Secret item path -> key.
    let items: BTreeMap<String, String> = list(&secret_volume["secret"]["items"], "secret items")
        .iter()
        .map(|i| {
            (
                text(&i["path"], "item path").to_owned(),
                text(&i["key"], "item key").to_owned(),
            )
        })
        .collect();

    // The ConfigMap.
    let config_map_name = config_map_name.unwrap_or_else(|| panic!("{what}: no ConfigMap mount"));
    let cm = of_kind(docs, "ConfigMap")
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(config_map_name.as_str()))
        .unwrap_or_else(|| panic!("{what}: ConfigMap {config_map_name} is not in the file"));
    let args = strings(&c["args"], "args");
    assert_eq!(args.len(), 2, "{what}: args --config FILE");
    assert_eq!(args[0], "--config");
    let node_key = config_files
        .get(&args[1])
        .unwrap_or_else(|| panic!("{what}: --config {} is not a ConfigMap file", args[1]));
    let node_toml = text(&cm["data"][node_key.as_str()], "node.toml");
    let config: NodeConfig = toml::from_str(node_toml)
        .unwrap_or_else(|e| panic!("{what}: node.toml does not parse as NodeConfig: {e}"));
    let agency = config.agency.clone();
    let d = dev
        .iter()
        .find(|d| d.agency == agency)
        .unwrap_or_else(|| panic!("{what}: {agency} is not a pilot agency"));

    // data_dir is the PVC.
    assert_eq!(
        config.data_dir,
        Path::new(&data_mount),
        "{what}: data_dir is the PVC mount"
    );

    // Every path of node.toml (and of cli.toml) is an item of the Secret, under its mount.
    let secret_key_of = |p: &Path, key: &str| -> String {
        let rest = p.strip_prefix(&secret_path).unwrap_or_else(|_| {
            panic!(
                "{what}: {key} = {} is not under the Secret mount {secret_path}",
                p.display()
            )
        });
        items
            .get(&rest.display().to_string())
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {key} = {} names no item of the Secret {secret_name}",
                    p.display()
                )
            })
            .clone()
    };
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for (i, p) in config.tls.ca.iter().enumerate() {
        paths.push((format!("tls.ca[{i}]"), p.clone()));
    }
    for (i, p) in config.tls.crls.iter().enumerate() {
        paths.push((format!("tls.crls[{i}]"), p.clone()));
    }
    paths.push(("tls.cert".into(), config.tls.cert.clone()));
    paths.push(("tls.key".into(), config.tls.key.clone()));
    paths.push(("signing.key".into(), config.signing.key.clone()));
    assert!(!config.tls.crls.is_empty(), "{what}: the node checks a CRL");
    let mut used = BTreeSet::new();
    for (key, p) in &paths {
        used.insert(secret_key_of(p, key));
    }

    // Ports: node.toml = containerPorts = Service ports.
    let fed = i64::from(port_of(&config.federation.listen));
    let op = i64::from(port_of(&config.operator.listen));
    assert_eq!(
        config.federation.listen, "0.0.0.0:7400",
        "{what}: federation.listen"
    );
    assert_eq!(
        config.operator.listen, "0.0.0.0:7401",
        "{what}: operator.listen"
    );
    assert_eq!(named_port(&c["ports"], "federation", what), fed);
    assert_eq!(named_port(&c["ports"], "operator", what), op);
    let labels = &spec["template"]["metadata"]["labels"];
    let mut service_ports = BTreeMap::new();
    for svc in of_kind(docs, "Service") {
        let name = text(&svc["metadata"]["name"], "Service name");
        let selector = svc["spec"]["selector"].as_hash().expect("Service selector");
        for (k, v) in selector {
            assert_eq!(
                &labels[text(k, "label")],
                v,
                "{what}: Service {name} selects the pod"
            );
        }
        for p in list(&svc["spec"]["ports"], "Service ports") {
            let target = match &p["targetPort"] {
                Yaml::String(n) => named_port(&c["ports"], n, what),
                Yaml::Integer(i) => *i,
                _ => int(&p["port"], "port"),
            };
            service_ports.insert(name.to_owned(), (int(&p["port"], "port"), target));
        }
    }
    assert_eq!(
        service_ports.get(&d.host),
        Some(&(fed, fed)),
        "{what}: Service {} serves the federation port peers dial",
        d.host
    );
    assert!(
        service_ports
            .values()
            .any(|&(port, target)| port == op && target == op),
        "{what}: a Service for the operator port {op}"
    );
    assert_eq!(
        text(&spec["serviceName"], "serviceName"),
        d.host,
        "{what}: serviceName"
    );
    // Peers dial the other agencies' federation Services.
    for peer in &config.peers {
        assert_eq!(
            peer.endpoint,
            format!("{}:{fed}", peer.agency.to_ascii_lowercase()),
            "{what}: peer {}",
            peer.agency
        );
        assert_eq!(
            peer.signing_key,
            format!("@{}_SIGNING_PUB@", peer.agency),
            "{what}: peer signing keys are placeholders the README fills in"
        );
    }
    let peers: BTreeSet<&str> = config.peers.iter().map(|p| p.agency.as_str()).collect();
    let others: BTreeSet<&str> = AGENCIES.iter().copied().filter(|a| *a != agency).collect();
    assert_eq!(peers, others, "{what}: every other pilot agency is a peer");

    // Probes: `tessera --config CLI health`, with a cli.toml from the ConfigMap.
    let mut probe_config = None;
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if probe == "startupProbe" && c[probe].is_badvalue() {
            continue;
        }
        let argv = strings(&c[probe]["exec"]["command"], probe);
        let cli_path = health_config(&argv, &format!("{what}: {probe}"));
        assert!(
            probe_config.as_ref().is_none_or(|p| *p == cli_path),
            "{what}: the probes use one cli.toml"
        );
        probe_config = Some(cli_path);
    }
    let cli_path = probe_config.expect("probes");
    let cli_key = config_files
        .get(&cli_path)
        .unwrap_or_else(|| panic!("{what}: the probes' {cli_path} is not a ConfigMap file"));
    let cli: CliConfig = toml::from_str(text(&cm["data"][cli_key.as_str()], "cli.toml"))
        .unwrap_or_else(|e| panic!("{what}: cli.toml does not parse: {e}"));
    assert_eq!(cli.agency, agency);
    let (host, port) = split_endpoint(&cli.endpoint).expect("cli endpoint");
    assert_eq!(
        host, "127.0.0.1",
        "{what}: probes dial the pod itself, not the Service"
    );
    assert_eq!(
        i64::from(port),
        op,
        "{what}: cli.toml dials the operator port"
    );
    assert_eq!(
        cli.server_name.as_deref(),
        Some(d.host.as_str()),
        "{what}: server_name"
    );
    for (i, p) in cli.tls.ca.iter().enumerate() {
        used.insert(secret_key_of(p, &format!("cli tls.ca[{i}]")));
    }
    used.insert(secret_key_of(&cli.tls.cert, "cli tls.cert"));
    used.insert(secret_key_of(&cli.tls.key, "cli tls.key"));
    let all_keys: BTreeSet<String> = items.values().cloned().collect();
    assert_eq!(
        used, all_keys,
        "{what}: every Secret item is used, every used file is an item"
    );

    // With the Secret made from `tessera certs dev` output and the placeholders filled in,
    // the ConfigMap's node.toml passes the node's own validation.
    let dev_file = |key: &str| -> PathBuf {
        let top = d.dir.parent().expect("dev out dir");
        if matches!(key, "ca.pem" | "crl.pem") {
            top.join(key)
        } else {
            d.dir.join(key)
        }
    };
    let mut filled = node_toml.to_owned();
    for other in dev {
        filled = filled.replace(
            &format!("@{}_SIGNING_PUB@", other.agency),
            &other.signing_public_hex,
        );
    }
    let mut real: NodeConfig = toml::from_str(&filled).expect("filled node.toml");
    let remap = |p: &mut PathBuf| *p = dev_file(&secret_key_of(p, "path"));
    real.tls.ca.iter_mut().for_each(remap);
    real.tls.crls.iter_mut().for_each(remap);
    remap(&mut real.tls.cert);
    remap(&mut real.tls.key);
    remap(&mut real.signing.key);
    real.validate()
        .unwrap_or_else(|e| panic!("{what}: node.toml with dev certificates: {e}"));

    (agency, all_keys)
}

// ------------------------------------------------------------------------------------------
// Dockerfile

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (op, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        out.push((op.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

fn json_argv(s: &str, what: &str) -> Vec<String> {
    serde_json::from_str(s)
        .unwrap_or_else(|e| panic!("{what}: {s:?} is not an exec-form array: {e}"))
}

#[test]
fn dockerfile_runs_the_node_as_tessera() {
    let ins = instructions(&read(&deploy_dir().join("Dockerfile")));
    let one = |op: &str| -> Vec<&str> {
        ins.iter()
            .filter(|(o, _)| o == op)
            .map(|(_, r)| r.as_str())
            .collect()
    };
    assert_eq!(one("FROM").len(), 2, "multi-stage: builder and runtime");
    let args = one("ARG").join(" ");
    assert!(
        args.contains("rust:1") && args.contains("-bookworm"),
        "builder: {args}"
    );
    assert!(args.contains("debian:bookworm-slim"), "runtime: {args}");
    let runs = one("RUN").join("\n");
    for needle in [
        "cargo build --release",
        "-p tessera-node",
        "-p tessera-cli",
        "--mount=type=cache",
    ] {
        assert!(runs.contains(needle), "the build runs {needle}");
    }
    assert!(
        runs.contains("--uid 10001") && runs.contains("--gid 10001"),
        "user tessera is 10001"
    );

    // The last stage's settings.
    let last_from = ins.iter().rposition(|(o, _)| o == "FROM").expect("FROM");
    let runtime = &ins[last_from..];
    let get = |op: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, r)| r.as_str())
            .collect()
    };
    assert_eq!(get("USER"), ["10001:10001"]);
    assert_eq!(get("VOLUME"), ["[\"/var/lib/tessera\"]"]);
    assert_eq!(get("EXPOSE"), ["7400 7401"]);
    assert_eq!(get("STOPSIGNAL"), ["SIGTERM"]);
    assert_eq!(
        json_argv(get("ENTRYPOINT")[0], "ENTRYPOINT"),
        ["tessera-node"]
    );
    assert_eq!(
        json_argv(get("CMD")[0], "CMD"),
        ["--config", "/etc/tessera/node.toml"]
    );
    let copies = get("COPY").join("\n");
    assert!(
        copies.contains("/usr/local/bin/")
            && copies.contains("tessera-node")
            && copies.contains("/out/tessera "),
        "both binaries go to /usr/local/bin: {copies}"
    );
    let health = get("HEALTHCHECK");
    assert_eq!(health.len(), 1, "one HEALTHCHECK");
    let cmd = health[0]
        .split_once("CMD ")
        .map(|(_, c)| c)
        .expect("HEALTHCHECK ... CMD [...]");
    let argv = json_argv(cmd, "HEALTHCHECK");
    assert_eq!(health_config(&argv, "HEALTHCHECK"), "/etc/tessera/cli.toml");

    // Every workspace member is in the build context and copied (Cargo needs them all).
    let workspace: toml::Value =
        toml::from_str(&read(&deploy_dir().join("../Cargo.toml"))).expect("Cargo.toml");
    let members = workspace["workspace"]["members"]
        .as_array()
        .expect("members");
    let ignore = read(&deploy_dir().join("Dockerfile.dockerignore"));
    let allowed: BTreeSet<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    assert!(
        ignore.lines().any(|l| l.trim() == "**/target"),
        "target/ stays out of the context"
    );
    let builder_copies: Vec<&str> = ins[..last_from]
        .iter()
        .filter(|(o, _)| o == "COPY")
        .map(|(_, r)| r.as_str())
        .collect();
    for m in members {
        let m = m.as_str().expect("member");
        assert!(
            builder_copies
                .iter()
                .any(|c| c.split_whitespace().next() == Some(m)),
            "the builder does not COPY workspace member {m}"
        );
        assert!(
            allowed.contains(m),
            "Dockerfile.dockerignore leaves out {m}"
        );
    }
    for c in &builder_copies {
        for src in c.split_whitespace().rev().skip(1) {
            assert!(
                allowed.contains(src) || src.starts_with("--"),
                "COPY {src}: not in the context (Dockerfile.dockerignore)"
            );
            assert!(
                deploy_dir().join("..").join(src).exists(),
                "COPY {src}: no such path"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// systemd

#[test]
fn systemd_unit_is_sandboxed() {
    let unit = read(&deploy_dir().join("systemd/tessera-node.service"));
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        keys.entry(format!("{section}{k}"))
            .or_default()
            .push(v.to_owned());
    }
    let service = |k: &str| -> Vec<String> {
        keys.get(&format!("[Service]{k}"))
            .cloned()
            .unwrap_or_default()
    };
    let expect = [
        ("User", "tessera"),
        (
            "ExecStart",
            "/usr/local/bin/tessera-node --config /etc/tessera/node.toml",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("StateDirectory", "tessera"),
        ("ConfigurationDirectory", "tessera"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ReadWritePaths", "/var/lib/tessera"),
        ("UMask", "0077"),
        ("TimeoutStopSec", "30"),
    ];
    for (k, v) in expect {
        assert_eq!(service(k), [v], "[Service] {k}");
    }
    assert!(
        service("SystemCallFilter").first().map(String::as_str) == Some("@system-service"),
        "[Service] SystemCallFilter=@system-service first"
    );
    assert_eq!(
        keys.get("[Install]WantedBy").map(Vec::as_slice),
        Some(&["multi-user.target".to_owned()][..])
    );
    // The node's data_dir for this unit is the StateDirectory.
    let readme = read(&deploy_dir().join("systemd/README.md"));
    assert!(readme.contains("data_dir = \"/var/lib/tessera\""));
    assert!(readme.contains("systemctl enable --now tessera-node"));
}

/// The systemd guide's step 3, run as written (without the ownership, which needs root) on
/// what `tessera certs dev` writes: every path of node.toml and cli.toml then points into
/// /etc/tessera (or the StateDirectory), and both files load.
#[test]
fn systemd_guide_covers_every_relative_path() {
    let readme = read(&deploy_dir().join("systemd/README.md"));
    let step3: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("# 3."))
        .take_while(|l| !l.starts_with("# 4."))
        .filter(|l| l.starts_with("install ") || l.starts_with("sed "))
        .collect();
    assert!(step3.len() >= 4, "step 3 not found: {step3:?}");
    let dir = tempfile::tempdir().expect("tmp");
    let names = ["DE-BAFA".to_owned(), "FR-SBDU".to_owned()];
    let made = generate_with(dir.path(), &names, 7400, false).expect("certs dev");
    let me = &made[0];
    for (file, text) in [
        ("node.toml", tessera_cli::dev_certs::node_toml(me, &made)),
        ("cli.toml", tessera_cli::dev_certs::cli_toml(me)),
    ] {
        std::fs::write(me.dir.join(file), text).expect("write");
    }
    // The operator gathers the files in one folder, as step 3 expects them.
    for f in ["ca.pem", "crl.pem"] {
        std::fs::copy(dir.path().join(f), me.dir.join(f)).expect("copy");
    }
    let etc = dir.path().join("etc-tessera");
    let script = step3
        .join("\n")
        .replace("-o root -g tessera ", "")
        .replace("/etc/tessera", etc.to_str().expect("path"));
    let out = Command::new("sh")
        .arg("-ec")
        .arg(&script)
        .current_dir(&me.dir)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = NodeConfig::load(&etc.join("node.toml")).expect("node.toml loads from /etc/tessera");
    assert_eq!(node.data_dir, Path::new("/var/lib/tessera"));
    let mut paths: Vec<PathBuf> = node.tls.ca.clone();
    paths.extend(node.tls.crls.clone());
    paths.extend([
        node.tls.cert.clone(),
        node.tls.key.clone(),
        node.signing.key.clone(),
    ]);
    let cli = CliConfig::load(&etc.join("cli.toml")).expect("cli.toml loads from /etc/tessera");
    paths.extend(cli.tls.ca.clone());
    paths.extend([cli.tls.cert.clone(), cli.tls.key.clone()]);
    assert!(!node.tls.crls.is_empty());
    let etc = etc.canonicalize().expect("etc");
    for p in paths {
        assert!(
            p.canonicalize().is_ok_and(|c| c.starts_with(&etc)),
            "{} is not a file in /etc/tessera",
            p.display()
        );
    }
}
