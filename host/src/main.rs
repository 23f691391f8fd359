//! The `tandem` binary: a thin bootstrap over [`tandem::cli`].

fn main() -> std::process::ExitCode {
    tandem::cli::main()
}
