//! `knockoff-serve`: the real-time scoring server (see `knockoff::http` and `knockoff::serve`).

use clap::Parser;
use knockoff::http::{self, Cli};
use knockoff::telemetry;
use std::process::ExitCode;
use std::time::Duration;

// Every request allocates its body, listings and answer on one thread and frees them on
// another: mimalloc handles that cross-thread traffic far better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    knockoff::threads::set_worker_threads(None);
    telemetry::init(cli.log_format);
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            eprintln!("knockoff-serve: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("knockoff-serve: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(http::run(config));
    // A reload still loading a model must not hold the exit back.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "knockoff-serve failed");
            eprintln!("knockoff-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
