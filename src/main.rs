//! The `civicmap` binary: a thin shell over [`civicmap::cli`].

// mimalloc: about a tenth of the server's CPU went to glibc malloc under load (perf, see
// docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    civicmap::cli::main()
}
