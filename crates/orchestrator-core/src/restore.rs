//! The one restore engine: a stored backup's entries, read through the
//! sink, written to a [`RestoreTarget`] (a directory, or a source plugin's
//! writer for `restore --to URL`).
//!
//! One rule for every target: an entry that fails (damaged in the backup,
//! refused by the target, not writable) is reported with its path and the
//! restore goes on; `fail_fast` stops at the first. Reading the backup
//! itself failing ends the restore.

use crate::error::{Error, Result};
use crate::job::CHUNK;
use crate::plan::{Plan, label};
use crate::report::{EntryFailure, REPORT_VERSION, RestoreReport};
use crate::restore_dir::{FileWriter, RestoreWriter, show};
use crate::timespec;
use orchestrator_runtime::types::{Entry, EntryKind, PluginError, ReadRequest};
use orchestrator_runtime::{Reader, RuntimeError, SinkInstance, SourceInstance, Writer};
use std::path::PathBuf;
use std::time::Instant;

/// What to restore, and where.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    /// The source whose backup to restore.
    pub source: String,
    /// The sink to read, when several back up the source.
    pub sink: Option<String>,
    /// The state at this time (`now`, `2D`, an ISO date, epoch seconds).
    pub time: Option<String>,
    /// Only this path of the source.
    pub path: Option<String>,
    /// A directory, or a URL the source plugin writes back into.
    pub to: String,
    /// Restore into a non-empty directory.
    pub force: bool,
    /// Stop at the first entry that fails.
    pub fail_fast: bool,
}

/// Where restored entries go. Errors are sentences for one entry; the
/// engine adds the entry's path.
pub trait RestoreTarget {
    /// Whether the entry belongs to the restore, rewritten to its place in
    /// the target (`--path` selects and may reroot).
    fn select(&mut self, entry: Entry) -> Option<Entry>;
    /// Start an entry: `true` when its content is wanted next.
    fn add(&mut self, entry: &Entry) -> impl Future<Output = Result<bool, String>>;
    /// Content of the current entry.
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<(), String>>;
    /// The current entry's content is complete.
    fn end_entry(&mut self) -> impl Future<Output = Result<(), String>>;
    /// The current entry failed part-way: drop what was written of it.
    fn abandon_entry(&mut self) -> impl Future<Output = ()>;
    /// Every entry was given: finish, and say what was skipped and done.
    fn finish(self) -> impl Future<Output = Result<Finished, String>>;
    /// Where it restores into, for reports.
    fn describe(&self) -> String;
}

/// What a target says when it is done.
#[derive(Debug, Default)]
pub struct Finished {
    /// Entries left out on purpose.
    pub skipped: Vec<String>,
    /// The target's own summary.
    pub summary: Option<String>,
}

/// Restore what `request` asks for.
pub async fn restore(mut plan: Plan, request: &RestoreRequest) -> Result<RestoreReport> {
    let time =
        request.time.as_deref().map(|t| timespec::parse(t, timespec::now())).transpose().map_err(Error::Usage)?;
    let prefix: Vec<u8> = request.path.as_deref().map(|p| p.trim_matches('/').as_bytes().to_vec()).unwrap_or_default();
    let source = plan.source(&request.source)?.clone();
    let sink = plan.sink_for(&source.name, request.sink.as_deref())?.clone();
    plan.load_plugins([&sink.instance])?;
    plan.open_storages([&sink])?;
    let mut snk = plan.start_sink(&sink, &source.name).await?;
    let read = ReadRequest {
        source_name: source.name.clone(),
        time,
        path: (!prefix.is_empty()).then(|| prefix.clone()),
        with_content: true,
    };
    let reader = open_reader(&mut snk, &sink, &read).await?;
    let mut report = match target_url(&request.to) {
        Some(url) => {
            plan.load_plugins([&source])?;
            let target = PluginTarget::open(&plan, &source, url, prefix.clone()).await?;
            run(&mut snk, &reader, target, request.fail_fast).await?
        }
        None => {
            let target = DirTarget {
                writer: RestoreWriter::new(&PathBuf::from(&request.to), request.force)?,
                prefix: prefix.clone(),
                file: None,
            };
            run(&mut snk, &reader, target, request.fail_fast).await?
        }
    };
    let _ = snk.close_reader(reader).await;
    if report.entries == 0 {
        return Err(Error::NothingToRestore(format!("the backup has no entry at {:?}", show(&prefix))));
    }
    report.source = source.name;
    report.sink = sink.instance.name;
    Ok(report)
}

/// A reader of the backup at the requested time; a sink with nothing there
/// is "nothing to restore".
pub(crate) async fn open_reader(
    snk: &mut SinkInstance,
    sink: &orchestrator_config::Sink,
    request: &ReadRequest,
) -> Result<Reader> {
    snk.open_reader(&sink.instance.config.to_string(), request).await.map_err(|e| match e {
        RuntimeError::Plugin(PluginError::NotFound(m)) => Error::NothingToRestore(m),
        e => Error::Failed(format!("sink `{}`: {e}", sink.instance.name)),
    })
}

/// The engine: every entry of `reader` into `target`.
async fn run<T: RestoreTarget>(
    snk: &mut SinkInstance,
    reader: &Reader,
    mut target: T,
    fail_fast: bool,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let mut report = RestoreReport {
        report_version: REPORT_VERSION,
        source: String::new(),
        sink: String::new(),
        target: target.describe(),
        entries: 0,
        files: 0,
        bytes: 0,
        failures: Vec::new(),
        skipped: Vec::new(),
        summary: None,
        stopped_early: false,
        seconds: 0.0,
    };
    loop {
        let entry = match snk.reader_next(reader).await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(Error::Failed(format!("reading the backup failed: {e}"))),
        };
        let Some(entry) = target.select(entry) else { continue };
        report.entries += 1;
        let outcome = match target.add(&entry).await {
            Ok(true) => match copy(snk, reader, &mut target, &mut report.bytes).await {
                Ok(()) => target.end_entry().await.map(|()| report.files += 1),
                Err(e) => {
                    target.abandon_entry().await;
                    Err(e)
                }
            },
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(error) = outcome {
            let path = show(&entry.path);
            tracing::error!("cannot restore {path:?}: {error}");
            report.failures.push(EntryFailure { path, error });
            if fail_fast {
                report.stopped_early = true;
                break;
            }
        }
    }
    if report.entries > 0 {
        match target.finish().await {
            Ok(finished) => {
                for s in &finished.skipped {
                    tracing::warn!("skipped {s}");
                }
                report.skipped = finished.skipped;
                report.summary = finished.summary;
            }
            Err(error) => report.failures.push(EntryFailure { path: String::new(), error }),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One entry's content, chunk by chunk.
async fn copy<T: RestoreTarget>(
    snk: &mut SinkInstance,
    reader: &Reader,
    target: &mut T,
    bytes: &mut u64,
) -> Result<(), String> {
    loop {
        let chunk =
            snk.reader_read(reader, CHUNK).await.map_err(|e| format!("reading it from the backup failed: {e}"))?;
        if chunk.is_empty() {
            return Ok(());
        }
        *bytes += chunk.len() as u64;
        target.write(&chunk).await?;
    }
}

/// `--to` as a URL (`imap://user@host`) when it is one: a scheme (a letter,
/// then letters, digits, `+`, `-`, `.`) and `://`. Anything else is a directory.
pub fn target_url(to: &str) -> Option<&str> {
    let (scheme, _) = to.split_once("://")?;
    let mut chars = scheme.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    ok.then_some(to)
}

/// Restoring into a directory, never outside it ([`RestoreWriter`]).
struct DirTarget {
    writer: RestoreWriter,
    prefix: Vec<u8>,
    file: Option<FileWriter>,
}

impl RestoreTarget for DirTarget {
    /// The path asked for is the root (a directory) or lands under its own
    /// name (a file); everything else under it keeps its place below.
    fn select(&mut self, mut entry: Entry) -> Option<Entry> {
        let prefix = &self.prefix;
        if prefix.is_empty() {
            return Some(entry);
        }
        if entry.path == *prefix {
            if entry.meta.kind == EntryKind::Directory {
                entry.path.clear();
            } else {
                entry.path = prefix.rsplit(|&b| b == b'/').next().unwrap_or(prefix).to_vec();
            }
            return Some(entry);
        }
        let rest = entry.path.strip_prefix(prefix.as_slice())?.strip_prefix(b"/")?.to_vec();
        entry.path = rest;
        Some(entry)
    }

    async fn add(&mut self, entry: &Entry) -> Result<bool, String> {
        self.file = self.writer.add(entry).map_err(|e| e.to_string())?;
        Ok(self.file.is_some())
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.file.as_mut().map_or(Ok(()), |f| f.write(data)).map_err(|e| e.to_string())
    }

    async fn end_entry(&mut self) -> Result<(), String> {
        match self.file.take() {
            Some(f) => self.writer.finish_file(f).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    async fn abandon_entry(&mut self) {
        // What was written stays with mode 0600 and no metadata: a partial
        // file is reported, never dressed up as the backed-up one.
        self.file = None;
    }

    async fn finish(self) -> Result<Finished, String> {
        let skipped = self.writer.finish().map_err(|e| e.to_string())?;
        Ok(Finished { skipped, summary: None })
    }

    fn describe(&self) -> String {
        self.writer.root().display().to_string()
    }
}

/// `restore --to URL`: the backup's entries go to the source plugin's
/// writer (`open-writer`), which puts them back into the kind of place it
/// reads (an IMAP account). The plugin gets its pipeline configuration (so
/// the target's password is the source's `password` secret) and may connect
/// to the URL's server: the person who typed it granted that. Entries keep
/// their paths; `--path` selects a subtree without rerooting it.
struct PluginTarget {
    src: SourceInstance,
    writer: Writer,
    url: String,
    label: String,
    prefix: Vec<u8>,
}

impl PluginTarget {
    async fn open(
        plan: &Plan,
        source: &orchestrator_config::PluginInstance,
        url: &str,
        prefix: Vec<u8>,
    ) -> Result<PluginTarget> {
        let endpoints = orchestrator_runtime::grants::url_endpoints(url);
        let mut src = plan.start_source(source, &endpoints).await?;
        let label = label(source);
        let writer = match src.open_writer(&source.config.to_string(), url).await {
            Ok(w) => w,
            Err(RuntimeError::Plugin(PluginError::Unsupported(m))) => {
                return Err(Error::Usage(format!("{label}: {m}")));
            }
            Err(e) => return Err(Error::Failed(format!("{label} cannot restore into {url}: {e}"))),
        };
        Ok(PluginTarget { src, writer, url: url.to_string(), label, prefix })
    }
}

impl RestoreTarget for PluginTarget {
    fn select(&mut self, entry: Entry) -> Option<Entry> {
        // Paths keep their names (a folder is `Archiv/2024` whatever `--path`
        // selects); `--path` only chooses what is written.
        let under = entry
            .path
            .strip_prefix(self.prefix.as_slice())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"));
        (self.prefix.is_empty() || under).then_some(entry)
    }

    async fn add(&mut self, entry: &Entry) -> Result<bool, String> {
        self.src.writer_add(&self.writer, entry).await.map_err(|e| format!("{} refused it: {e}", self.label))
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.src.writer_write(&self.writer, data).await.map_err(|e| format!("{} failed writing it: {e}", self.label))
    }

    async fn end_entry(&mut self) -> Result<(), String> {
        self.src.writer_end_entry(&self.writer).await.map_err(|e| format!("{} failed writing it: {e}", self.label))
    }

    async fn abandon_entry(&mut self) {
        // The plugin's writer holds the entry until `end-entry`; the next
        // `add` starts afresh.
    }

    async fn finish(mut self) -> Result<Finished, String> {
        let summary = self
            .src
            .writer_finish(&self.writer)
            .await
            .map_err(|e| format!("restoring into {}: {} could not finish: {e}", self.url, self.label))?;
        Ok(Finished { skipped: Vec::new(), summary: Some(summary) })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}
