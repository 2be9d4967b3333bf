use clap::Parser;
use orchestrator::commands::{Invocation, execute};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = orchestrator::cli::Cli::parse();
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing::dispatcher::set_global_default(orchestrator::logging::subscriber(
        &cli.log,
        cli.log_json,
        ansi,
        orchestrator::progress::stderr,
    ))
    .ok();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(orchestrator::exit::FAILED);
        }
    };
    let how = Invocation {
        env: orchestrator_core::Environment::process(),
        watch_signals: true,
        progress: std::io::stderr().is_terminal(),
    };
    let code = runtime.block_on(execute(cli.command, &how, &mut std::io::stdout().lock(), &mut std::io::stderr()));
    ExitCode::from(code)
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
