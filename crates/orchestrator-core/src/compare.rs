//! `verify --compare`: the newest backup of a source against the live
//! source, entry by entry (kind, mode, owner, mtime, size, link target,
//! attributes) and
//! file by file (every byte, as `duplicity verify --compare-data` does).
//!
//! Both sides are streams in duplicity's index order (the host enforces it on
//! sources, the sink's reader merges its sets in it), so one pass with a
//! merge compares them in constant memory, whatever the tree's size.

use crate::job::{CHUNK, index_less};
use crate::plan::Plan;
use crate::report::Comparison;
use crate::restore_dir::show;
use orchestrator_config::{PluginInstance, Sink};
use orchestrator_runtime::types::{Entry, EntryKind, Outcome, ReadRequest, RunContext};
use orchestrator_runtime::{Reader, Session, SinkInstance, SourceInstance};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// Compare the newest backup of `source` in `sink` with the live source.
pub async fn compare(plan: &Plan, source: &PluginInstance, sink: &Sink, now: i64) -> Result<Comparison, String> {
    let mut snk = plan.start_sink(sink, &source.name).await.map_err(|e| e.to_string())?;
    let request = ReadRequest { source_name: source.name.clone(), time: None, path: None, with_content: true };
    let reader = snk
        .open_reader(&sink.instance.config.to_string(), &request)
        .await
        .map_err(|e| format!("the sink cannot read the backup: {e}"))?;
    let mut src = plan.start_source(source, &[]).await.map_err(|e| e.to_string())?;
    let context = RunContext { source_name: source.name.clone(), run_id: format!("verify-{now}"), time: now };
    let session =
        src.open(&source.config.to_string(), &context).await.map_err(|e| format!("the source cannot be read: {e}"))?;
    let result = merge(&mut src, &session, &mut snk, &reader).await;
    // The source releases what it holds (a snapshot) whatever happened.
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    let released = src.finish(&session, outcome).await;
    let _ = src.close_session(session).await;
    let _ = snk.close_reader(reader).await;
    let comparison = result?;
    released.map_err(|e| format!("the comparison finished, but the source could not release what it holds: {e}"))?;
    Ok(comparison)
}

/// The live side: entries in batches.
struct Live<'a> {
    src: &'a mut SourceInstance,
    session: &'a Session,
    batch: VecDeque<Entry>,
    ended: bool,
}

impl Live<'_> {
    async fn peek(&mut self) -> Result<Option<&Entry>, String> {
        if self.batch.is_empty() && !self.ended {
            let next = self.src.next(self.session, 512).await.map_err(|e| format!("the source failed: {e}"))?;
            self.ended = next.is_empty();
            self.batch.extend(next);
        }
        Ok(self.batch.front())
    }
}

async fn merge(
    src: &mut SourceInstance,
    session: &Session,
    snk: &mut SinkInstance,
    reader: &Reader,
) -> Result<Comparison, String> {
    let mut out = Comparison::default();
    let mut live = Live { src, session, batch: VecDeque::new(), ended: false };
    let mut stored = next_stored(snk, reader).await?;
    loop {
        let live_entry = live.peek().await?.cloned();
        match (live_entry, stored.take()) {
            (None, None) => break,
            (Some(l), s) if s.as_ref().is_none_or(|s| index_less(&l.path, &s.path)) => {
                out.differences.push(format!("{}: new in the source, not in the backup", show(&l.path)));
                live.batch.pop_front();
                stored = s;
            }
            (l, Some(s)) if l.as_ref().is_none_or(|l| index_less(&s.path, &l.path)) => {
                out.differences.push(format!("{}: in the backup, no longer in the source", show(&s.path)));
                stored = next_stored(snk, reader).await?;
            }
            (Some(l), Some(s)) => {
                live.batch.pop_front();
                out.compared += 1;
                let mut found = metadata_differences(&l, &s);
                if found.is_empty() && l.meta.kind == EntryKind::File {
                    found.extend(content_difference(live.src, live.session, snk, reader, &l).await?);
                }
                out.differences.extend(found.into_iter().map(|d| format!("{}: {d}", show(&l.path))));
                stored = next_stored(snk, reader).await?;
            }
            (None, Some(_)) | (Some(_), None) => unreachable!("handled by the guards above"),
        }
    }
    Ok(out)
}

async fn next_stored(snk: &mut SinkInstance, reader: &Reader) -> Result<Option<Entry>, String> {
    snk.reader_next(reader).await.map_err(|e| format!("reading the backup failed: {e}"))
}

fn metadata_differences(live: &Entry, stored: &Entry) -> Vec<String> {
    let (l, s) = (&live.meta, &stored.meta);
    let mut found = Vec::new();
    if l.kind != s.kind {
        found.push(format!("a {} in the source, a {} in the backup", l.kind, s.kind));
        return found;
    }
    if l.mode & 0o7777 != s.mode & 0o7777 {
        found.push(format!("mode {:o} in the source, {:o} in the backup", l.mode & 0o7777, s.mode & 0o7777));
    }
    if (l.uid, l.gid) != (s.uid, s.gid) {
        found.push(format!("owner {}:{} in the source, {}:{} in the backup", l.uid, l.gid, s.uid, s.gid));
    }
    // Directories' times change with their content and are not compared,
    // as duplicity does not compare them.
    if l.kind != EntryKind::Directory && l.mtime != s.mtime {
        found.push(format!(
            "modified at {} in the source, {} in the backup",
            crate::timespec::format(l.mtime),
            crate::timespec::format(s.mtime)
        ));
    }
    if l.kind == EntryKind::Symlink && l.symlink_target != s.symlink_target {
        found.push("the link points elsewhere".into());
    }
    let (la, sa) = (attribute_map(&live.attributes), attribute_map(&stored.attributes));
    if la != sa {
        found.push(format!(
            "attributes {} in the source, {} in the backup",
            show_attributes(&la),
            show_attributes(&sa)
        ));
    }
    found
}

/// Attributes by name, the last value of a name winning (as sinks store them).
fn attribute_map(attributes: &[(String, String)]) -> std::collections::BTreeMap<&str, &str> {
    attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

fn show_attributes(map: &std::collections::BTreeMap<&str, &str>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let pairs: Vec<String> = map.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Whether a file's bytes differ: both streams are hashed as they pass.
async fn content_difference(
    src: &mut SourceInstance,
    session: &Session,
    snk: &mut SinkInstance,
    reader: &Reader,
    entry: &Entry,
) -> Result<Option<String>, String> {
    let content = match src.open_content(session, &entry.path).await {
        Ok(c) => c,
        Err(e @ orchestrator_runtime::RuntimeError::Plugin(_)) => {
            return Ok(Some(format!("cannot be read from the source: {e}")));
        }
        Err(e) => return Err(format!("the source failed: {e}")),
    };
    let (mut live_hash, mut live_len) = (Sha256::new(), 0u64);
    let unreadable = loop {
        match src.read(&content, CHUNK).await {
            Ok(chunk) if chunk.is_empty() => break None,
            Ok(chunk) => {
                live_len += chunk.len() as u64;
                live_hash.update(&chunk);
            }
            Err(e @ orchestrator_runtime::RuntimeError::Plugin(_)) => {
                break Some(format!("cannot be read from the source: {e}"));
            }
            Err(e) => return Err(format!("the source failed: {e}")),
        }
    };
    let _ = src.close_content(content).await;
    let (mut stored_hash, mut stored_len) = (Sha256::new(), 0u64);
    loop {
        let chunk = snk.reader_read(reader, CHUNK).await.map_err(|e| format!("reading the backup failed: {e}"))?;
        if chunk.is_empty() {
            break;
        }
        stored_len += chunk.len() as u64;
        stored_hash.update(&chunk);
    }
    if unreadable.is_some() {
        return Ok(unreadable);
    }
    if live_len != stored_len {
        return Ok(Some(format!("{live_len} bytes in the source, {stored_len} in the backup")));
    }
    Ok((live_hash.finalize() != stored_hash.finalize()).then(|| "the content differs".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_runtime::types::Metadata;

    fn file(attributes: &[(&str, &str)]) -> Entry {
        Entry {
            path: b"cur/msg".to_vec(),
            meta: Metadata {
                kind: EntryKind::File,
                mode: 0o600,
                uid: 1,
                gid: 2,
                mtime: 3,
                mtime_nsec: 0,
                size: 4,
                symlink_target: None,
                device: None,
            },
            attributes: attributes.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn attributes_are_compared_as_metadata() {
        let seen = file(&[("imap.flags", "\\Seen"), ("maildir.info", "2,S")]);
        let reordered = file(&[("maildir.info", "2,S"), ("imap.flags", "\\Seen")]);
        assert!(metadata_differences(&seen, &reordered).is_empty());
        assert!(metadata_differences(&file(&[]), &file(&[])).is_empty());
        let flagged = file(&[("imap.flags", "\\Flagged \\Seen"), ("maildir.info", "2,FS")]);
        assert_eq!(
            metadata_differences(&flagged, &seen),
            [
                r#"attributes {imap.flags="\\Flagged \\Seen", maildir.info="2,FS"} in the source, {imap.flags="\\Seen", maildir.info="2,S"} in the backup"#
            ]
        );
        assert_eq!(metadata_differences(&file(&[]), &seen).len(), 1);
        assert!(metadata_differences(&file(&[]), &seen)[0].starts_with("attributes none in the source"));
    }
}
