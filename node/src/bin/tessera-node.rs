//! `tessera-node --config node.toml`: the daemon (see `tessera_node::daemon`).

/// mimalloc instead of the system allocator: under a flood of large junk requests glibc's
/// per-thread arenas kept growing the node's resident memory (BENCHMARKS.md, "Soak").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera_node::daemon::main()
}
