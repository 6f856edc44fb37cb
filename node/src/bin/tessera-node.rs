//! `tessera-node --config node.toml`: the daemon (see `tessera_node::daemon`).

fn main() -> std::process::ExitCode {
    tessera_node::daemon::main()
}
