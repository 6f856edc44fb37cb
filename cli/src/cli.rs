//! The `tessera` command line: arguments, dispatch, output. See DESIGN.md's
//! command-line contract.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::CliConfig;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Operate a Tessera node: share licence denials with peer agencies"
)]
struct Cli {
    /// The CLI config (cli.toml) of your agency.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificates: a development PKI, and revocation.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Your node's identity and its peers: reachable, last seen, round trip.
    Status,
    /// Exit 0 if the node answers the gRPC health check as SERVING (for probes).
    Health,
    /// Licence denials and enforcement notices.
    #[command(subcommand)]
    Notice(NoticeCommand),
    /// Offline: the match keys of one party, or of JSON Lines parties on stdin.
    Keys {
        /// The party's name (without it, JSON Lines parties are read from stdin).
        #[arg(long)]
        name: Option<String>,
        /// person, organisation, vessel or aircraft.
        #[arg(long)]
        kind: Option<String>,
        /// Another name; repeat for more.
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// A country code or name; repeat for more.
        #[arg(long = "country")]
        countries: Vec<String>,
        /// An identifier as TYPE:VALUE (LEI, IMO, PASSPORT, ...); repeat for more.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// YYYY, YYYY-MM or YYYY-MM-DD.
        #[arg(long)]
        birth_date: Option<String>,
    },
    /// Screen parties privately against every peer's denials and enforcement subjects.
    Screen {
        /// The party's name (or use --file).
        #[arg(long)]
        name: Option<String>,
        /// person, organisation, vessel or aircraft.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long = "country")]
        countries: Vec<String>,
        /// TYPE:VALUE, e.g. LEI:529900T8BM49AURSDO55.
        #[arg(long = "id")]
        ids: Vec<String>,
        #[arg(long = "alias")]
        aliases: Vec<String>,
        #[arg(long)]
        birth_date: Option<String>,
        /// JSON Lines parties, one per line.
        #[arg(long, conflicts_with = "name")]
        file: Option<PathBuf>,
    },
    /// Continuous screening: parties whose new matches at any peer raise alerts.
    #[command(subcommand)]
    Watch(WatchCommand),
    /// Alerts raised by the watch list and deconfliction.
    Alerts {
        /// Only alerts after this number.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Investigation subjects matched privately against peers' enforcement subjects.
    #[command(subcommand)]
    Deconflict(DeconflictCommand),
    /// How many of our match keys are in a peer's list (a count, nothing else).
    Overlap {
        #[arg(long)]
        peer: String,
    },
    /// Pairwise overlap counts of a group's members, optionally as an SVG heat map.
    Harmonise {
        #[arg(long)]
        group: String,
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// No-undercut consultations with the agency whose denial a licence would undercut.
    #[command(subcommand)]
    Consult(ConsultCommand),
    /// The labelled indexes this node serves.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Copy the node's data while it runs (restore with `tessera-node restore`).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// The tamper-evident audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measurements on the public lists.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Three agencies on this machine: a guided run that exits 0.
    Demo,
}

#[derive(Subcommand)]
enum NoticeCommand {
    /// Issue a notice from a JSON file (see docs/notices.md).
    Issue {
        #[arg(long)]
        file: PathBuf,
        /// local, all, peer:AGENCY[,AGENCY], group:NAME (default: the node's notices.default_to).
        #[arg(long)]
        to: Option<String>,
    },
    /// Import a public list: every entry becomes a denial; repeatable without duplicates.
    Import {
        /// csl, dpl, sdn, jsonl, ftm (or un).
        #[arg(long)]
        format: String,
        file: PathBuf,
        #[arg(long)]
        to: Option<String>,
    },
    /// The newest version of each notice.
    List {
        #[arg(long)]
        origin: Option<String>,
        /// denial, enforcement or grant.
        #[arg(long)]
        kind: Option<String>,
        /// Show at most this many (0: all).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Every version of AGENCY/SERIAL.
    Show { reference: String },
    /// A new version with the body of a JSON file.
    Amend {
        reference: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// A new version with a new review date (default: three years from today).
    Renew {
        reference: String,
        #[arg(long)]
        until: Option<String>,
    },
    /// A new version with status revoked.
    Revoke {
        reference: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum WatchCommand {
    /// Add JSON Lines parties (e.g. the parties of pending applications).
    Add {
        #[arg(long)]
        file: PathBuf,
        /// Your reference for them (application number).
        #[arg(long, default_value = "")]
        reference: String,
    },
    List,
    Remove {
        id: u64,
    },
}

#[derive(Subcommand)]
enum DeconflictCommand {
    /// Register investigation subjects (JSON Lines) with the case contact pointer.
    Add {
        #[arg(long)]
        file: PathBuf,
        /// Who a peer's unit should call on a hit (never a case file).
        #[arg(long)]
        contact: String,
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Registered subjects.
    List,
}

#[derive(Subcommand)]
enum ConsultCommand {
    /// Consult the denying agency about a matched denial.
    Open {
        /// The matched denial: ORIGIN/SERIAL, as screening shows it.
        #[arg(long = "match")]
        reference: String,
        /// A file with what you choose to show of the transaction.
        #[arg(long)]
        summary: PathBuf,
        /// Working days to answer (at most 30).
        #[arg(long, default_value_t = 10)]
        days: u32,
    },
    List,
    Show {
        id: String,
    },
    /// Answer as the denying agency: no-objection, objection or more-information.
    Respond {
        id: String,
        #[arg(long)]
        answer: String,
        #[arg(long, default_value = "")]
        text: String,
    },
    /// Extend the deadline once, to at most 30 working days.
    Extend {
        id: String,
        #[arg(long)]
        days: u32,
    },
    /// Record your decision: granted, refused or withdrawn.
    Decide {
        id: String,
        #[arg(long)]
        decision: String,
        #[arg(long, default_value = "")]
        text: String,
    },
}

#[derive(Subcommand)]
enum IndexCommand {
    /// A new OPRF key (epoch) for one peer; its index is rebuilt.
    Rotate {
        #[arg(long)]
        peer: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-walk the chain; fails naming the first bad entry.
    Verify,
    /// JSON Lines for an oversight body.
    Export {
        /// From this entry number on.
        #[arg(long)]
        since: Option<u64>,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Match-key quality on the real lists: alias recall, cross-script agreement, collisions, speed.
    Keys {
        /// The folder of the public lists (default: ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Screening quality: precision and recall on labelled pairs built from the lists,
    /// over the threshold, per family; the leakage below the threshold.
    Screening {
        /// The folder of the public lists (default: ../shared/data, else fixtures/lists).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seed of the pair generator.
        #[arg(long, default_value_t = 20_261_202)]
        seed: u64,
        /// Most pairs per family and split.
        #[arg(long, default_value_t = 600)]
        per_family: usize,
        /// Write the generated pairs here (JSON Lines), to read them or re-use them.
        #[arg(long)]
        pairs_out: Option<PathBuf>,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json_out: Option<PathBuf>,
        /// Fuzzy-key parameters other than the spec's, `key=value,...` (tuning only).
        #[arg(long, hide = true)]
        params: Option<String>,
        /// Write the pairs decided wrongly at the default threshold here (JSON Lines: the
        /// pair and its scores), to see what the keys miss.
        #[arg(long)]
        errors_out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Make a dev CA, CRL and per-agency certificates, keys and configs.
    Dev {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// An agency id such as DE-BAFA; repeat for each agency.
        #[arg(long = "agency", required = true)]
        agencies: Vec<String>,
        /// Agency i listens for peers on base+2i and for operators on base+2i+1.
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
        /// Reach each node at its lower-case agency name (containers) and listen on all interfaces.
        #[arg(long)]
        hostnames: bool,
    },
    /// Add a certificate to the CA's CRL (DIR/crl.pem); then send SIGHUP to the nodes.
    Revoke {
        /// The directory holding ca.pem, ca.key and crl.pem.
        #[arg(long)]
        ca: PathBuf,
        /// The certificate (PEM) to revoke.
        #[arg(long)]
        cert: PathBuf,
    },
}

/// The whole `tessera` program.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config(cli: &Cli) -> anyhow::Result<CliConfig> {
    let path = cli.config.clone().ok_or_else(|| {
        anyhow::anyhow!("no CLI config: pass --config DIR/AGENCY/cli.toml or set TESSERA_CONFIG")
    })?;
    CliConfig::load(&path)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Certs(CertsCommand::Dev {
            out: dir,
            agencies,
            base_port,
            hostnames,
        }) => {
            let made = crate::dev_certs::generate_with(dir, agencies, *base_port, *hostnames)?;
            for m in &made {
                writeln!(
                    out,
                    "{}: {} (peers on {}:{}, operators on {}:{})",
                    m.agency,
                    m.dir.display(),
                    m.host,
                    m.federation_port,
                    m.host,
                    m.operator_port
                )?;
            }
            writeln!(out, "CA and CRL: {}", dir.display())?;
        }
        Command::Certs(CertsCommand::Revoke { ca, cert }) => {
            let n = crate::pki::revoke(ca, cert)?;
            writeln!(
                out,
                "revoked; {} now lists {n} certificate(s). Send SIGHUP to each node (or restart it) to apply.",
                ca.join("crl.pem").display()
            )?;
        }
        Command::Status => {
            let cfg = config(&cli)?;
            let mut client = cfg.operator()?;
            let status = client
                .status(tessera_proto::v1::StatusRequest {})
                .await
                .map_err(|s| crate::client::explain_call(&cfg, &s))?
                .into_inner();
            if cli.json {
                serde_json::to_writer_pretty(&mut out, &crate::status::to_json(&status))?;
                writeln!(out)?;
            } else {
                write!(
                    out,
                    "{}",
                    crate::status::render(&status, tessera_node::peers::now_ms())
                )?;
            }
        }
        Command::Health => {
            let cfg = config(&cli)?;
            let mut client = tonic_health::pb::health_client::HealthClient::new(cfg.channel()?);
            let response = client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|s| crate::client::explain_call(&cfg, &s))?
                .into_inner();
            let serving = response.status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
            if !serving {
                anyhow::bail!(
                    "the node at {} is not serving (status {})",
                    cfg.endpoint,
                    response.status
                );
            }
            if cli.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"endpoint": cfg.endpoint, "status": "serving"})
                )?;
            } else {
                writeln!(out, "serving")?;
            }
        }
        Command::Notice(cmd) => {
            let cfg = config(&cli)?;
            let json = cli.json;
            match cmd {
                NoticeCommand::Issue { file, to } => {
                    crate::notices::issue(&cfg, file, to.as_deref(), json, &mut out).await?;
                }
                NoticeCommand::Import { format, file, to } => {
                    let format = crate::notices::parse_format(format)?;
                    let mut human = Vec::new();
                    let summary =
                        crate::notices::import(&cfg, format, file, to.as_deref(), &mut human)
                            .await?;
                    if !json {
                        out.write_all(&human)?;
                    }
                    if json {
                        serde_json::to_writer(&mut out, &summary)?;
                        writeln!(out)?;
                    }
                }
                NoticeCommand::List {
                    origin,
                    kind,
                    limit,
                } => {
                    crate::notices::list(
                        &cfg,
                        origin.as_deref(),
                        kind.as_deref(),
                        *limit,
                        json,
                        &mut out,
                    )
                    .await?;
                }
                NoticeCommand::Show { reference } => {
                    crate::notices::show(&cfg, reference, json, &mut out).await?;
                }
                NoticeCommand::Amend { reference, file } => {
                    crate::notices::change(
                        &cfg,
                        reference,
                        crate::notices::ChangeArg::Amend(file),
                        json,
                        &mut out,
                    )
                    .await?;
                }
                NoticeCommand::Renew { reference, until } => {
                    crate::notices::change(
                        &cfg,
                        reference,
                        crate::notices::ChangeArg::Renew(until.clone()),
                        json,
                        &mut out,
                    )
                    .await?;
                }
                NoticeCommand::Revoke { reference, reason } => {
                    crate::notices::change(
                        &cfg,
                        reference,
                        crate::notices::ChangeArg::Revoke(reason.clone()),
                        json,
                        &mut out,
                    )
                    .await?;
                }
            }
        }
        Command::Keys {
            name,
            kind,
            aliases,
            countries,
            ids,
            birth_date,
        } => {
            if let Some(name) = name {
                let flags = crate::keys::PartyFlags {
                    name: name.clone(),
                    kind: kind.clone(),
                    aliases: aliases.clone(),
                    countries: countries.clone(),
                    ids: ids.clone(),
                    birth_date: birth_date.clone(),
                };
                crate::keys::one(&flags, &mut out)?;
            } else {
                crate::keys::stream(std::io::stdin().lock(), &mut out)?;
            }
        }
        Command::Screen {
            name,
            kind,
            countries,
            ids,
            aliases,
            birth_date,
            file,
        } => {
            let cfg = config(&cli)?;
            let parties = if let Some(file) = file {
                crate::matching::read_parties(file)?
            } else {
                let name = name
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("give --name NAME or --file PARTIES.jsonl"))?;
                vec![
                    crate::keys::PartyFlags {
                        name,
                        kind: kind.clone(),
                        aliases: aliases.clone(),
                        countries: countries.clone(),
                        ids: ids.clone(),
                        birth_date: birth_date.clone(),
                    }
                    .to_party()?,
                ]
            };
            let r = crate::matching::screen(&cfg, &parties, cli.json, &mut out).await?;
            if !r.unavailable.is_empty() {
                anyhow::bail!("{} peer(s) could not be screened", r.unavailable.len());
            }
        }
        Command::Watch(cmd) => {
            let cfg = config(&cli)?;
            match cmd {
                WatchCommand::Add { file, reference } => {
                    let parties = crate::matching::read_parties(file)?;
                    crate::matching::watch_add(&cfg, &parties, reference, "watch", "", &mut out)
                        .await?;
                }
                WatchCommand::List => {
                    crate::matching::watch_list(&cfg, "watch", cli.json, &mut out).await?;
                }
                WatchCommand::Remove { id } => {
                    crate::matching::watch_remove(&cfg, *id, &mut out).await?;
                }
            }
        }
        Command::Alerts { after } => {
            let cfg = config(&cli)?;
            crate::matching::alerts(&cfg, *after, cli.json, &mut out).await?;
        }
        Command::Deconflict(cmd) => {
            let cfg = config(&cli)?;
            match cmd {
                DeconflictCommand::Add {
                    file,
                    contact,
                    reference,
                } => {
                    let parties = crate::matching::read_parties(file)?;
                    crate::matching::watch_add(
                        &cfg,
                        &parties,
                        reference,
                        "investigation",
                        contact,
                        &mut out,
                    )
                    .await?;
                }
                DeconflictCommand::List => {
                    crate::matching::watch_list(&cfg, "investigation", cli.json, &mut out).await?;
                }
            }
        }
        Command::Overlap { peer } => {
            let cfg = config(&cli)?;
            crate::matching::overlap(&cfg, peer, cli.json, &mut out).await?;
        }
        Command::Harmonise { group, svg } => {
            let cfg = config(&cli)?;
            crate::matching::harmonise(&cfg, group, svg.as_deref(), cli.json, &mut out).await?;
        }
        Command::Consult(cmd) => {
            let cfg = config(&cli)?;
            let json = cli.json;
            match cmd {
                ConsultCommand::Open {
                    reference,
                    summary,
                    days,
                } => {
                    crate::consult::open(&cfg, reference, summary, *days, json, &mut out).await?;
                }
                ConsultCommand::List => {
                    crate::consult::list(&cfg, json, &mut out).await?;
                }
                ConsultCommand::Show { id } => {
                    crate::consult::show(&cfg, id, json, &mut out).await?;
                }
                ConsultCommand::Respond { id, answer, text } => {
                    crate::consult::respond(&cfg, id, answer, text, json, &mut out).await?;
                }
                ConsultCommand::Extend { id, days } => {
                    crate::consult::extend(&cfg, id, *days, json, &mut out).await?;
                }
                ConsultCommand::Decide { id, decision, text } => {
                    crate::consult::decide(&cfg, id, decision, text, json, &mut out).await?;
                }
            }
        }
        Command::Index(IndexCommand::Rotate { peer }) => {
            let cfg = config(&cli)?;
            crate::matching::rotate(&cfg, peer, &mut out).await?;
        }
        Command::Backup { out: path } => {
            let cfg = config(&cli)?;
            crate::backup::run(&cfg, path, &mut out).await?;
        }
        Command::Audit(cmd) => {
            let cfg = config(&cli)?;
            match cmd {
                AuditCommand::Verify => crate::audit::verify(&cfg, cli.json, &mut out).await?,
                AuditCommand::Export { since } => {
                    crate::audit::export(&cfg, *since, &mut out).await?;
                }
            }
        }
        Command::Eval(EvalCommand::Keys { data, json_out }) => {
            let dir = data
                .clone()
                .or_else(tessera_node::lists::shared_data_dir)
                .ok_or_else(|| anyhow::anyhow!("no list data: pass --data DIR (the folder with us_csl/, ofac_sdn_2023-12-28/, un_consolidated/)"))?;
            let report = crate::eval::keys::run(&dir);
            write!(out, "{}", report.table())?;
            if let Some(path) = json_out {
                std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
                writeln!(out, "figures written to {}", path.display())?;
            }
        }
        Command::Eval(EvalCommand::Screening {
            data,
            seed,
            per_family,
            pairs_out,
            json_out,
            errors_out,
            params,
        }) => {
            let params = match params {
                Some(spec) => tessera_node::party::FuzzyParams::parse(spec)
                    .map_err(|e| anyhow::anyhow!("--params: {e}"))?,
                None => tessera_node::party::FuzzyParams::default(),
            };
            let dir = data
                .clone()
                .or_else(tessera_node::lists::shared_data_dir)
                .unwrap_or_else(|| PathBuf::from("fixtures/lists"));
            let sources = crate::eval::dataset::Sources::read(&dir);
            let pairs = crate::eval::dataset::generate(
                &sources,
                *seed,
                crate::eval::dataset::Sizes {
                    per_family: *per_family,
                },
            );
            if let Some(path) = pairs_out {
                let mut lines = String::new();
                for p in &pairs {
                    lines.push_str(&serde_json::to_string(p)?);
                    lines.push('\n');
                }
                std::fs::write(path, lines)?;
            }
            if let Some(path) = errors_out {
                let mut lines = String::new();
                for p in &pairs {
                    let s = crate::eval::oracle::score_pair(p, &params);
                    let reported = s.reported(tessera_node::party::verdict::DEFAULT_THRESHOLD);
                    if reported != p.positive {
                        lines.push_str(&serde_json::to_string(&serde_json::json!({
                            "pair": p, "exact": s.exact, "fuzzy": s.fuzzy,
                        }))?);
                        lines.push('\n');
                    }
                }
                std::fs::write(path, lines)?;
            }
            let report = crate::eval::screening::report(&sources, &pairs, *seed, &params, None);
            write!(out, "{}", report.table())?;
            if let Some(path) = json_out {
                std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
                writeln!(out, "figures written to {}", path.display())?;
            }
        }
        Command::Demo => {
            tessera_node::logging::init(&tessera_node::config::LogConfig {
                format: "text".into(),
                level: "warn".into(),
            });
            crate::demo::run(&mut out).await?;
        }
    }
    Ok(())
}
