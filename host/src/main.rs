use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = orchestrator::cli::Cli::parse();
    orchestrator::commands::init_logging(&cli.log, cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(orchestrator::commands::dispatch(cli.command));
    ExitCode::from(code)
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
