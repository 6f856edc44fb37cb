//! `tessera-node` as built for the end-to-end tests (the same `daemon::main`),
//! so that tests always run the code of this build.

fn main() -> std::process::ExitCode {
    tessera_node::daemon::main()
}
