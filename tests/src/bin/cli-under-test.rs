//! `tessera` as built for the end-to-end tests (the same `cli::main`).

fn main() -> std::process::ExitCode {
    tessera_cli::cli::main()
}
