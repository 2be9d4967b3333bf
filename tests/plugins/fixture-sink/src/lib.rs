//! A test sink that stores each backup as one object in a plain framed
//! format, so the end-to-end tests can prove that entries cross the
//! host/plugin boundary unchanged (until the duplicity sink exists, and beside
//! it as a second, simpler sink).

pub mod format;

use format::{Record, read_record, write_entry};
use plugin_sdk::prelude::*;
use plugin_sdk::storage;
use serde::Deserialize;
use std::io::{BufReader, Read, Write};

/// The sink's table in the pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Keep only the newest N sets.
    pub keep: Option<u32>,
    /// Store metadata only and never ask for content (for benchmarks of the
    /// walk and the boundary).
    #[serde(default)]
    pub skip_content: bool,
}

fn set_name(time: i64) -> String {
    format!("set-{time:020}.fix")
}

fn set_time(name: &str) -> Option<i64> {
    name.strip_prefix("set-")?.strip_suffix(".fix")?.parse().ok()
}

fn sets() -> Result<Vec<(i64, storage::ObjectInfo)>, PluginError> {
    let mut sets: Vec<_> = storage::list()?.into_iter().filter_map(|o| set_time(&o.name).map(|t| (t, o))).collect();
    sets.sort_by_key(|(t, _)| *t);
    Ok(sets)
}

/// The plugin.
pub struct FixtureSink;

impl Sink for FixtureSink {
    type Config = Config;
    type Backup = Backup;
    type Reader = SetReader;

    fn info() -> PluginInfo {
        plugin_info!("fixture-sink", "Test sink: one framed object per backup")
    }

    fn validate(_config: &Config) -> Result<Vec<Want>, PluginError> {
        Ok(Vec::new())
    }

    fn begin_backup(config: Config, context: BackupContext) -> Result<Backup, PluginError> {
        let mut object = storage::put(&set_name(context.time))?;
        object.write_all(format::MAGIC).map_err(PluginError::from_io)?;
        Ok(Backup {
            object,
            time: context.time,
            entries: 0,
            expected: 0,
            written: 0,
            in_file: false,
            skip_content: config.skip_content,
        })
    }

    fn open_reader(_config: Config, request: ReadRequest) -> Result<SetReader, PluginError> {
        let chosen = sets()?.into_iter().rev().find(|(t, _)| request.time.is_none_or(|limit| *t <= limit));
        let Some((_, object)) = chosen else {
            return Err(PluginError::NotFound(format!(
                "no backup of source `{}` at or before the requested time",
                request.source_name
            )));
        };
        let mut input = BufReader::with_capacity(1 << 20, storage::get(&object.name)?);
        format::read_magic(&mut input)?;
        Ok(SetReader { input: Box::new(input), prefix: request.path, in_content: false, done: false })
    }

    fn status(_config: Config, _source: &str) -> Result<SourceStatus, PluginError> {
        let mut notes = Vec::new();
        for o in storage::list()? {
            if set_time(&o.name).is_none() {
                notes.push(format!("unknown object {}", o.name));
            }
        }
        let chains = sets()?
            .into_iter()
            .map(|(time, o)| Chain {
                sets: vec![BackupSet { kind: SetKind::Full, time, volumes: 1, size: o.size, changed_entries: None }],
            })
            .collect();
        Ok(SourceStatus { chains, notes })
    }

    fn verify(_config: Config, source: &str) -> Result<VerifyReport, PluginError> {
        let mut report = VerifyReport { objects_checked: 0, entries_checked: 0, problems: Vec::new() };
        for (_, o) in sets()? {
            report.objects_checked += 1;
            let mut input = BufReader::with_capacity(1 << 20, storage::get(&o.name)?);
            let result = format::read_magic(&mut input).and_then(|_| {
                loop {
                    match read_record(&mut input)? {
                        Record::Entry(_) => report.entries_checked += 1,
                        Record::End => break Ok(()),
                        Record::Data(_) | Record::EndContent(true) => {}
                        Record::EndContent(false) => {
                            report.problems.push(format!("{}: an entry of {source} is incomplete", o.name))
                        }
                    }
                }
            });
            if let Err(e) = result {
                report.problems.push(format!("{}: {e:?}", o.name));
            }
        }
        Ok(report)
    }

    fn prune(config: Config, _source: &str) -> Result<Vec<String>, PluginError> {
        let Some(keep) = config.keep else { return Ok(Vec::new()) };
        let sets = sets()?;
        let excess = sets.len().saturating_sub(keep as usize);
        let mut removed = Vec::new();
        for (_, o) in sets.into_iter().take(excess) {
            storage::delete(&o.name)?;
            removed.push(o.name);
        }
        Ok(removed)
    }
}

/// A backup being written.
pub struct Backup {
    object: storage::ObjectWriter,
    time: i64,
    entries: u64,
    expected: u64,
    written: u64,
    in_file: bool,
    skip_content: bool,
}

impl plugin_sdk::Backup for Backup {
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError> {
        let is_file = entry.meta.kind == EntryKind::File && !self.skip_content;
        self.expected = entry.meta.size;
        self.written = 0;
        self.in_file = is_file;
        write_entry(&mut self.object, &entry).map_err(PluginError::from_io)?;
        self.entries += 1;
        if !is_file && entry.meta.kind == EntryKind::File {
            // Metadata only: close the content right away so readers stay in step.
            format::write_end_content(&mut self.object, true).map_err(PluginError::from_io)?;
        }
        Ok(is_file)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        self.written += data.len() as u64;
        format::write_data(&mut self.object, data).map_err(PluginError::from_io)
    }

    fn end_entry(&mut self, status: ContentStatus) -> Result<(), PluginError> {
        let complete = match status {
            ContentStatus::Complete => true,
            ContentStatus::Unreadable(reason) => {
                plugin_sdk::warn!("stored an incomplete entry: {reason}");
                false
            }
        };
        if complete && self.in_file && self.written != self.expected {
            plugin_sdk::warn!(
                "a file changed size while it was read ({} bytes announced, {} read)",
                self.expected,
                self.written
            );
        }
        format::write_end_content(&mut self.object, complete).map_err(PluginError::from_io)
    }

    fn finish(mut self: Box<Self>) -> Result<BackupSet, PluginError> {
        format::write_end(&mut self.object).map_err(PluginError::from_io)?;
        let stored = self.object.finish()?;
        Ok(BackupSet {
            kind: SetKind::Full,
            time: self.time,
            volumes: 1,
            size: stored.size,
            changed_entries: Some(self.entries),
        })
    }
}

/// A stored set being read back.
pub struct SetReader {
    input: Box<dyn Read>,
    prefix: Option<Vec<u8>>,
    in_content: bool,
    done: bool,
}

fn under(path: &[u8], prefix: &[u8]) -> bool {
    path == prefix || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

impl Reader for SetReader {
    fn next(&mut self) -> Result<Option<Entry>, PluginError> {
        while !self.done {
            match read_record(&mut self.input)? {
                Record::Entry(e) => {
                    self.in_content = e.meta.kind == EntryKind::File;
                    if self.prefix.as_deref().is_none_or(|p| under(&e.path, p)) {
                        return Ok(Some(e));
                    }
                }
                Record::Data(_) | Record::EndContent(_) => {}
                Record::End => self.done = true,
            }
        }
        Ok(None)
    }

    fn read(&mut self, _max: usize) -> Result<Vec<u8>, PluginError> {
        if !self.in_content {
            return Ok(Vec::new());
        }
        match read_record(&mut self.input)? {
            Record::Data(d) => Ok(d),
            Record::EndContent(_) => {
                self.in_content = false;
                Ok(Vec::new())
            }
            other => Err(PluginError::Corrupt(format!("unexpected record in content: {other:?}"))),
        }
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_sink!(FixtureSink);
