//! Logs go to stderr through tracing, as text or JSON lines.

use tracing_subscriber::fmt::MakeWriter;

/// A subscriber writing to `writer` at `filter` (a level or a tracing
/// directive; a bad one falls back to `info`). `ansi` colours text logs.
pub fn subscriber<W>(filter: &str, json: bool, ansi: bool, writer: W) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(false).with_ansi(ansi);
    if json { builder.json().finish().into() } else { builder.finish().into() }
}
