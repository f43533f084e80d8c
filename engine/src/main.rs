//! The `medallion` binary: parses the command line, sets up logging, runs
//! the command on a Tokio runtime and turns its error into one line and an
//! exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use medallion_engine::cli::{Cli, run};
use medallion_engine::config::LogFormat;
use medallion_engine::logging::{command_span, new_trace_id};
use tracing::Instrument;

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
    let log_format = cli.global.settings.log_format;
    medallion_engine::logging::init(log_format, default_filter);
    // Every log line of the command carries its trace id; so does its report.
    let trace_id = new_trace_id();
    let span = command_span(&trace_id);

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
    match runtime.block_on(run(cli, trace_id).instrument(span.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole cause chain; a JSON object among JSON logs.
            let line = medallion_engine::errors::one_line(&e);
            match log_format {
                LogFormat::Text => eprintln!("error: {line}"),
                LogFormat::Json => span.in_scope(|| tracing::error!("error: {line}")),
            }
            ExitCode::FAILURE
        }
    }
}
