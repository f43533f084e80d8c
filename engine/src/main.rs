//! The `medallion` binary: parses the command line, sets up logging, runs
//! the command on a Tokio runtime and turns its error into one line and an
//! exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use medallion_engine::cli::{Cli, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.global.verbose {
        0 => "warn,medallion_engine=info,medallion_catalog=info",
        1 => "warn,medallion_engine=debug,medallion_catalog=debug,medallion_jobs=debug",
        _ => "info,medallion_engine=trace,medallion_catalog=trace,medallion_jobs=trace",
    };
    let live = !cli.global.quiet
        && !cli.global.json
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // On a terminal the progress lines say what the info logs would.
    let default_filter = if live && cli.global.verbose == 0 {
        "warn"
    } else {
        default_filter
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole cause chain.
            eprintln!("error: {}", medallion_engine::errors::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
