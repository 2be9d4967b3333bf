//! The command line: what each command takes. The work is in `commands`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Backups with WebAssembly plugins, stored in duplicity's format.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter: error, warn, info, debug, trace (or a tracing directive).
    #[arg(long, global = true, env = "ORCHESTRATOR_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up now.
    Run(RunArgs),
    /// Restore a source, or one path of it, into a directory.
    Restore(RestoreArgs),
    /// List the files in a backup.
    List(ListArgs),
    /// Show chains, sets and sizes per source.
    Status(StatusArgs),
    /// Check the integrity of stored backups.
    Verify(VerifyArgs),
    /// Apply each sink's retention (`keep_full`, `keep_within`) now.
    Prune(PruneArgs),
    /// Write what restoring from nothing needs; keep it off this machine.
    RecoveryKit(RecoveryKitArgs),
    /// Get back a pipeline file stored in a target (`store_pipeline = true`).
    FetchPipeline(FetchPipelineArgs),
    /// Check a pipeline file and print each plugin's grants; touches no target.
    Validate(ValidateArgs),
    /// Built-in and third-party plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run pipelines on their schedules.
    Daemon(DaemonArgs),
}

/// `run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Back up only these sources (repeatable).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Start new full backups.
    #[arg(long)]
    pub full: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// After the run, write Prometheus metrics of every source here (for
    /// node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// `restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// The source to restore.
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// The directory to restore into (created if missing; must be empty), or
    /// a URL the source plugin writes back into (`imap://user@host[:port]`
    /// for the imap source; the password is the source's `password`).
    #[arg(long, value_name = "DIR|URL")]
    pub to: PathBuf,
    /// The state at this time: now, an age (2D, 1W), an ISO date, epoch seconds.
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Only this path of the source (relative to its root). A directory's
    /// content lands in DIR; a file lands as DIR/NAME.
    #[arg(long, value_name = "P")]
    pub path: Option<String>,
    /// The sink to restore from, when several back up the source.
    #[arg(long, value_name = "NAME")]
    pub sink: Option<String>,
    /// Restore into a non-empty directory, replacing what is in the way.
    #[arg(long)]
    pub force: bool,
    /// Stop at the first entry that cannot be restored (by default each
    /// is reported and the restore goes on).
    #[arg(long)]
    pub fail_fast: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// The source whose backup to list.
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// The state at this time.
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// The sink to read, when several back up the source.
    #[arg(long, value_name = "NAME")]
    pub sink: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Only these sources.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Exit 1 when a source's newest backup in a sink is older than this
    /// (26h, 2D, 1W), or it has none: a health check.
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Only these sources.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Also compare the backup with the live source.
    #[arg(long)]
    pub compare: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Only these sources.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `recovery-kit`
#[derive(Debug, Args)]
pub struct RecoveryKitArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Write the kit to this file (mode 0600) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print JSON instead of the Markdown document.
    #[arg(long)]
    pub json: bool,
}

/// `fetch-pipeline`
#[derive(Debug, Args)]
pub struct FetchPipelineArgs {
    /// The sink's target URL, as in the pipeline file.
    pub target: String,
    /// The pipeline's name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// A setting of the target, as its `storage` table has it (repeatable):
    /// `key_file=/root/.ssh/id_ed25519`, `endpoint=https://…`. S3 keys come
    /// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long = "storage", value_name = "KEY=VALUE")]
    pub storage: Vec<String>,
    /// The recipients' armored secret key, for public-key archives (its
    /// passphrase, like a symmetric archive's, in PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub secret_key: Option<PathBuf>,
    /// Write the pipeline file here (mode 0600) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// The built-in plugins.
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// What a component is: its world, version and imports.
    Inspect {
        /// A `.wasm` component.
        file: PathBuf,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// `daemon`
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The pipeline file; its sources run on their `schedule`. SIGHUP
    /// re-reads it, SIGTERM stops.
    pub pipeline: PathBuf,
    /// After every run, write Prometheus metrics here.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}
