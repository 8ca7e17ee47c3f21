//! The `civicmap` binary: a thin shell over [`civicmap::cli`].

fn main() -> std::process::ExitCode {
    civicmap::cli::main()
}
