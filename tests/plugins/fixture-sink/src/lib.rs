//! A simple, honest test sink: each backup is one tar object
//! `set-<time, 20 digits>.tar`, so the end-to-end tests can prove that
//! entries cross the host/plugin boundary unchanged (until the duplicity sink
//! exists, and beside it as a second, simpler sink).
//!
//! The tar encoding and decoding live in [`format`], plain Rust over
//! `std::io`; the choice of sets, retention, status and verification are plain
//! functions over object listings. Only the thin [`Sink`] glue touches the
//! host's `storage` and `log` imports.

pub mod format;

use format::{TarReader, TarWriter};
use plugin_sdk::prelude::*;
use plugin_sdk::storage::{self, ObjectInfo};
use serde::Deserialize;
use std::io::{BufRead, BufReader};

/// The sink's table in the pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Retention: keep the newest N sets (every set is full). Absent: keep all.
    pub keep: Option<u32>,
    /// Store metadata only and never ask for content (for the benchmark of
    /// the walk and the boundary in `scripts/bench.sh`).
    #[serde(default)]
    pub skip_content: bool,
    /// Fail (`"fail"`) or hang (`"stall"`) once this many content bytes
    /// were written: a sink that breaks mid-stream, for the tests of one
    /// source feeding several sinks.
    pub fault_after_bytes: Option<u64>,
    /// What the fault is.
    #[serde(default)]
    pub fault: Fault,
}

/// A deliberate fault mid-stream (see [`Config::fault_after_bytes`]).
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Return an error.
    #[default]
    Fail,
    /// Never return (until the host's `call_timeout` stops the call).
    Stall,
}

impl Config {
    fn check(&self) -> Result<(), PluginError> {
        if self.keep == Some(0) {
            return Err(PluginError::Config("keep: must be at least 1 (the set just made is always kept)".into()));
        }
        Ok(())
    }
}

/// Read buffer for stored objects: large host reads, and skipping content
/// without crossing the boundary for every few kilobytes.
const READ_BUFFER: usize = 1 << 20;

/// The object name of the set taken at `time`.
pub fn set_name(time: i64) -> String {
    format!("set-{time:020}.tar")
}

/// The time of the set stored as `name`, if it is a set.
pub fn set_time(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("set-")?.strip_suffix(".tar")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

/// The sets among `objects`, oldest first.
pub fn sets(objects: Vec<ObjectInfo>) -> Vec<(i64, ObjectInfo)> {
    let mut sets: Vec<_> = objects.into_iter().filter_map(|o| set_time(&o.name).map(|t| (t, o))).collect();
    sets.sort_by_key(|(t, _)| *t);
    sets
}

/// The set a read at `time` uses: the newest at or before it, or the newest.
pub fn pick_set(objects: Vec<ObjectInfo>, source: &str, time: Option<i64>) -> Result<ObjectInfo, PluginError> {
    let found = sets(objects).into_iter().rev().find(|(t, _)| time.is_none_or(|limit| *t <= limit));
    found.map(|(_, o)| o).ok_or_else(|| {
        PluginError::NotFound(match time {
            Some(t) => format!("no backup of source {source} at or before {t}"),
            None => format!("no backup of source {source}"),
        })
    })
}

/// Chains (one per set: every set is full) and notes about other objects.
pub fn status_of(objects: Vec<ObjectInfo>) -> SourceStatus {
    let notes = objects
        .iter()
        .filter(|o| set_time(&o.name).is_none())
        .map(|o| format!("{} ({} bytes) is not a backup set of this sink", o.name, o.size))
        .collect();
    let chains = sets(objects)
        .into_iter()
        .map(|(time, o)| Chain {
            sets: vec![BackupSet { kind: SetKind::Full, time, volumes: 1, size: o.size, changed_entries: None }],
        })
        .collect();
    SourceStatus { chains, notes }
}

/// The sets to delete so that only the newest `keep` remain.
pub fn prune_plan(objects: Vec<ObjectInfo>, keep: u32) -> Vec<String> {
    let sets = sets(objects);
    let excess = sets.len().saturating_sub(keep as usize);
    sets.into_iter().take(excess).map(|(_, o)| o.name).collect()
}

/// Read one set completely: the number of entries, and its problems as
/// sentences naming the object.
pub fn verify_set(name: &str, input: impl BufRead) -> (u64, Vec<String>) {
    let mut reader = TarReader::new(input);
    let mut entries = 0;
    let mut problems = Vec::new();
    loop {
        match reader.next_entry() {
            Ok(Some(_)) => entries += 1,
            Ok(None) => break,
            Err(e) => {
                problems.push(format!("{name}: {} (after {entries} entries)", e.message()));
                break;
            }
        }
    }
    problems.splice(0..0, reader.problems.iter().map(|p| format!("{name}: {p}")));
    (entries, problems)
}

/// Whether `path` is `prefix` or lies below it, component-wise.
pub fn under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty() || path == prefix || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

/// The plugin.
pub struct FixtureSink;

impl Sink for FixtureSink {
    type Config = Config;
    type Backup = Backup;
    type Reader = SetReader<BufReader<storage::ObjectReader>>;

    fn info() -> PluginInfo {
        plugin_info!("fixture-sink", "Test sink: one tar object per backup, exact round trip")
    }

    fn validate(config: &Config) -> Result<Vec<Want>, PluginError> {
        config.check()?;
        Ok(Vec::new())
    }

    fn begin_backup(config: Config, context: BackupContext) -> Result<Backup, PluginError> {
        config.check()?;
        let object = storage::put(&set_name(context.time))?;
        let fault = config.fault_after_bytes.map(|after| (after, config.fault));
        Ok(Backup { tar: TarWriter::new(object, config.skip_content), time: context.time, written: 0, fault })
    }

    fn open_reader(_config: Config, request: ReadRequest) -> Result<Self::Reader, PluginError> {
        let object = pick_set(storage::list()?, &request.source_name, request.time)?;
        let input = BufReader::with_capacity(READ_BUFFER, storage::get(&object.name)?);
        Ok(SetReader::new(input, request.path))
    }

    fn status(_config: Config, _source: &str) -> Result<SourceStatus, PluginError> {
        Ok(status_of(storage::list()?))
    }

    fn verify(_config: Config, _source: &str) -> Result<VerifyReport, PluginError> {
        let mut report = VerifyReport { objects_checked: 0, entries_checked: 0, problems: Vec::new() };
        for (_, o) in sets(storage::list()?) {
            report.objects_checked += 1;
            plugin_sdk::log::status(&format!("verifying {}", o.name));
            match storage::get(&o.name) {
                Ok(object) => {
                    let (entries, problems) = verify_set(&o.name, BufReader::with_capacity(READ_BUFFER, object));
                    report.entries_checked += entries;
                    report.problems.extend(problems);
                }
                Err(e) => report.problems.push(format!("{}: cannot be read: {}", o.name, e.message())),
            }
        }
        Ok(report)
    }

    fn prune(config: Config, _source: &str) -> Result<Vec<String>, PluginError> {
        config.check()?;
        let Some(keep) = config.keep else { return Ok(Vec::new()) };
        let removed = prune_plan(storage::list()?, keep);
        for name in &removed {
            storage::delete(name)?;
        }
        Ok(removed)
    }
}

/// A backup being written: the tar stream goes straight into the object,
/// which becomes visible only when it is finished.
pub struct Backup {
    tar: TarWriter<storage::ObjectWriter>,
    time: i64,
    written: u64,
    fault: Option<(u64, Fault)>,
}

impl plugin_sdk::Backup for Backup {
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError> {
        self.tar.add(entry)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), PluginError> {
        self.written += data.len() as u64;
        match self.fault {
            Some((after, Fault::Fail)) if self.written > after => {
                Err(PluginError::Io(format!("deliberate fault after {after} bytes")))
            }
            Some((after, Fault::Stall)) if self.written > after => loop {
                std::hint::spin_loop();
            },
            _ => self.tar.write(data),
        }
    }

    fn end_entry(&mut self, status: ContentStatus) -> Result<(), PluginError> {
        let unreadable = match &status {
            ContentStatus::Complete => None,
            ContentStatus::Unreadable(reason) => Some(reason.as_str()),
        };
        for warning in self.tar.end_entry(unreadable)? {
            plugin_sdk::warn!("{warning}");
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<BackupSet, PluginError> {
        let (object, entries) = self.tar.finish()?;
        let stored = object.finish()?;
        Ok(BackupSet {
            kind: SetKind::Full,
            time: self.time,
            volumes: 1,
            size: stored.size,
            changed_entries: Some(entries),
        })
    }
}

/// A stored set being read back, limited to one path and what lies below it.
pub struct SetReader<R: BufRead> {
    tar: TarReader<R>,
    prefix: Option<Vec<u8>>,
    /// An entry matched already; entries of a subtree are contiguous, so the
    /// first one after that does not match ends the read.
    entered: bool,
    done: bool,
}

impl<R: BufRead> SetReader<R> {
    /// A reader of the set in `input`, limited to `prefix` when given.
    pub fn new(input: R, prefix: Option<Vec<u8>>) -> SetReader<R> {
        SetReader { tar: TarReader::new(input), prefix, entered: false, done: false }
    }

    /// The next entry under the prefix, in stored order.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, PluginError> {
        while !self.done {
            match self.tar.next_entry()? {
                None => self.done = true,
                Some(e) if self.prefix.as_deref().is_none_or(|p| under(&e.path, p)) => {
                    self.entered = true;
                    return Ok(Some(e));
                }
                Some(_) if self.entered => self.done = true,
                Some(_) => {}
            }
        }
        Ok(None)
    }

    /// Up to `max` further bytes of the last regular file returned.
    pub fn read(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        self.tar.read(max)
    }

    /// Incomplete entries met since the last call, one sentence each.
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.tar.problems)
    }
}

impl<R: BufRead + 'static> Reader for SetReader<R> {
    fn next(&mut self) -> Result<Option<Entry>, PluginError> {
        let next = self.next_entry();
        for problem in self.take_problems() {
            plugin_sdk::warn!("{problem}");
        }
        next
    }

    fn read(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        SetReader::read(self, max)
    }
}

#[cfg(target_arch = "wasm32")]
plugin_sdk::export_sink!(FixtureSink);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_sdk::{EntryKind, Metadata};

    fn object(name: &str, size: u64) -> ObjectInfo {
        ObjectInfo { name: name.into(), size }
    }

    fn listing() -> Vec<ObjectInfo> {
        vec![object(&set_name(300), 3), object("stray.tmp", 7), object(&set_name(100), 1), object(&set_name(200), 2)]
    }

    #[test]
    fn set_names_sort_and_parse() {
        assert_eq!(set_name(1_700_000_000), "set-00000000001700000000.tar");
        assert_eq!(set_time("set-00000000001700000000.tar"), Some(1_700_000_000));
        assert_eq!(set_time("set-1.tar"), None);
        assert_eq!(set_time("set-00000000001700000000.tar.part"), None);
        let times: Vec<i64> = sets(listing()).iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [100, 200, 300]);
    }

    #[test]
    fn the_newest_set_at_or_before_the_time_is_read() {
        assert_eq!(pick_set(listing(), "docs", None).unwrap().name, set_name(300));
        assert_eq!(pick_set(listing(), "docs", Some(299)).unwrap().name, set_name(200));
        assert_eq!(pick_set(listing(), "docs", Some(200)).unwrap().name, set_name(200));
        match pick_set(listing(), "docs", Some(99)) {
            Err(PluginError::NotFound(m)) => assert_eq!(m, "no backup of source docs at or before 99"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(pick_set(vec![], "docs", None), Err(PluginError::NotFound(m)) if m == "no backup of source docs")
        );
    }

    #[test]
    fn status_and_retention() {
        let s = status_of(listing());
        let sizes: Vec<(i64, u64)> = s.chains.iter().map(|c| (c.sets[0].time, c.sets[0].size)).collect();
        assert_eq!(sizes, [(100, 1), (200, 2), (300, 3)]);
        assert!(s.chains.iter().all(|c| c.sets.len() == 1 && c.sets[0].kind == SetKind::Full));
        assert_eq!(s.notes, ["stray.tmp (7 bytes) is not a backup set of this sink"]);
        assert_eq!(prune_plan(listing(), 2), [set_name(100)]);
        assert_eq!(prune_plan(listing(), 5), Vec::<String>::new());
        assert_eq!(prune_plan(listing(), 1), [set_name(100), set_name(200)]);
    }

    #[test]
    fn config_is_strict() {
        let c: Config = plugin_sdk::parse_config(r#"{"keep": 2}"#).unwrap();
        assert_eq!(c.keep, Some(2));
        assert!(plugin_sdk::parse_config::<Config>(r#"{"keep": 2, "kep": 1}"#).is_err());
        let zero: Config = plugin_sdk::parse_config(r#"{"keep": 0}"#).unwrap();
        assert!(matches!(FixtureSink::validate(&zero), Err(PluginError::Config(m)) if m.starts_with("keep:")));
        assert_eq!(FixtureSink::validate(&c).unwrap(), vec![]);
    }

    fn tree() -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new(), false);
        for path in ["", "a", "a/b", "a/b/c", "a/d", "ab", "b"] {
            let kind = if path.contains('c') || path == "a/d" { EntryKind::File } else { EntryKind::Directory };
            let meta = Metadata {
                kind,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 1,
                mtime_nsec: 0,
                size: if kind == EntryKind::File { 3 } else { 0 },
                symlink_target: None,
                device: None,
            };
            if w.add(Entry { path: path.into(), meta, attributes: vec![] }).unwrap() {
                w.write(path.as_bytes()).unwrap();
                w.write(b"!!!").unwrap();
                assert_eq!(w.end_entry(None).unwrap().len(), 1); // grew: kept 3 bytes
            }
        }
        w.finish().unwrap().0
    }

    fn read_paths(set: &[u8], prefix: Option<&str>) -> Vec<String> {
        let mut r = SetReader::new(set, prefix.map(|p| p.as_bytes().to_vec()));
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            out.push(String::from_utf8(e.path).unwrap());
        }
        out
    }

    #[test]
    fn reads_are_limited_to_a_path_component_wise() {
        let set = tree();
        assert_eq!(read_paths(&set, None), ["", "a", "a/b", "a/b/c", "a/d", "ab", "b"]);
        assert_eq!(read_paths(&set, Some("")), ["", "a", "a/b", "a/b/c", "a/d", "ab", "b"]);
        assert_eq!(read_paths(&set, Some("a")), ["a", "a/b", "a/b/c", "a/d"]);
        assert_eq!(read_paths(&set, Some("a/b")), ["a/b", "a/b/c"]);
        assert_eq!(read_paths(&set, Some("ab")), ["ab"]);
        assert_eq!(read_paths(&set, Some("a/d")), ["a/d"]);
        assert!(read_paths(&set, Some("a/x")).is_empty());
        let mut r = SetReader::new(&set[..], Some(b"a/d".to_vec()));
        r.next_entry().unwrap().unwrap();
        assert_eq!(r.read(2).unwrap(), b"a/");
        assert_eq!(r.read(100).unwrap(), b"d");
        assert!(r.read(100).unwrap().is_empty());
    }

    #[test]
    fn verify_counts_entries_and_names_problems() {
        let set = tree();
        assert_eq!(verify_set("s.tar", &set[..]), (7, vec![]));
        let (n, problems) = verify_set("s.tar", &set[..set.len() - 600]);
        assert_eq!(n, 7);
        assert_eq!(problems, ["s.tar: the set ends without its end-of-archive marker (truncated) (after 7 entries)"]);

        let mut w = TarWriter::new(Vec::new(), false);
        let dir = Metadata {
            kind: EntryKind::Directory,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
            mtime_nsec: 0,
            size: 0,
            symlink_target: None,
            device: None,
        };
        w.add(Entry { path: vec![], meta: dir.clone(), attributes: vec![] }).unwrap();
        let f = Metadata { kind: EntryKind::File, size: 4, ..dir };
        w.add(Entry { path: b"f".to_vec(), meta: f, attributes: vec![] }).unwrap();
        w.write(b"ab").unwrap();
        w.end_entry(Some("disk error")).unwrap();
        let (bytes, _) = w.finish().unwrap();
        let (n, problems) = verify_set("t.tar", &bytes[..]);
        assert_eq!(n, 2);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("t.tar: `f` is stored incomplete: `f` could not be read whole (disk error)"));
    }
}
