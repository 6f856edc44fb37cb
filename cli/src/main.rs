//! `tessera`: the operator's command line (see `tessera_cli::cli`).

fn main() -> std::process::ExitCode {
    tessera_cli::cli::main()
}
