//! `tessera-node` as built for the end-to-end tests (the same `daemon::main`),
//! so that tests always run the code of this build.

/// mimalloc instead of the system allocator: under a flood of large junk requests glibc's
/// per-thread arenas kept growing the node's resident memory (BENCHMARKS.md, "Soak").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera_node::daemon::main()
}
