//! Reports as people read them, or as JSON for programs. Rendering never
//! decides an exit code (`exit` does) and never changes what happened.

use orchestrator_core::inspect::{PluginReport, ValidateReport};
use orchestrator_core::recovery::RecoveryKit;
use orchestrator_core::report::{JobReport, PruneReport, RestoreReport, RunReport, StatusReport, VerifyReport};
use orchestrator_core::types::{Entry, EntryKind};
use orchestrator_core::{show, timespec};
use std::io::{self, Write};

pub use orchestrator_core::report::human_bytes;

/// Output for a terminal: control characters that are not line structure
/// (ESC, BEL, CR, DEL, the C1 controls) are written escaped, as `\u{1b}`,
/// so a name from a backup or a server cannot move the cursor, retitle the
/// window or clear the screen of whoever reads it. JSON has none to escape:
/// serde_json writes them as `\u001b`, and the exact bytes stay there.
pub struct Printable<'a> {
    inner: &'a mut dyn Write,
    /// A 0xC2 at the end of the last write: the first byte of a C1 control
    /// or of a printable character, decided by the next byte.
    held: bool,
}

impl<'a> Printable<'a> {
    /// Filter what goes to `inner`.
    pub fn new(inner: &'a mut dyn Write) -> Printable<'a> {
        Printable { inner, held: false }
    }

    fn escape(&mut self, byte: u8) -> io::Result<()> {
        write!(self.inner, "\\u{{{byte:x}}}")
    }
}

impl Write for Printable<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        let mut i = 0;
        if self.held {
            self.held = false;
            match buf.first() {
                Some(&b) if (0x80..=0x9f).contains(&b) => {
                    self.escape(b)?;
                    start = 1;
                    i = 1;
                }
                Some(_) => self.inner.write_all(&[0xc2])?,
                None => {
                    self.held = true;
                    return Ok(0);
                }
            }
        }
        while i < buf.len() {
            let b = buf[i];
            let c0 = (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f;
            let c1 = b == 0xc2 && buf.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
            if c0 || c1 || (b == 0xc2 && i + 1 == buf.len()) {
                self.inner.write_all(&buf[start..i])?;
                if c0 {
                    self.escape(b)?;
                    i += 1;
                } else if c1 {
                    self.escape(buf[i + 1])?;
                    i += 2;
                } else {
                    self.held = true;
                    i += 1;
                }
                start = i;
            } else {
                i += 1;
            }
        }
        self.inner.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.held) {
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

impl Drop for Printable<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A name on one line: a newline in it is shown as `\n`.
fn one_line(name: String) -> String {
    if name.contains('\n') { name.replace('\n', "\\n") } else { name }
}

/// Pretty JSON and a newline.
pub fn json(out: &mut dyn Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// `run`: the JSON report, or one line per job. Failed jobs are also logged
/// as errors, so a log collector sees them whichever form stdout takes.
pub fn run(out: &mut dyn Write, report: &RunReport, as_json: bool) -> io::Result<()> {
    if as_json {
        json(out, report)?;
    }
    for job in &report.jobs {
        job_line(out, job, as_json)?;
    }
    Ok(())
}

fn job_line(out: &mut dyn Write, r: &JobReport, as_json: bool) -> io::Result<()> {
    let what = format!("{} → {}", r.source, r.sink);
    match (&r.error, &r.set) {
        (None, Some(set)) => {
            let line = format!(
                "{what}: ok, {} set, {} entries, {} files read ({}), stored {} in {} volume(s), {} warning(s), {:.1}s",
                set.kind,
                r.entries,
                r.files_read,
                human_bytes(r.bytes_read),
                human_bytes(set.size),
                set.volumes,
                r.warnings,
                r.seconds
            );
            if as_json {
                tracing::info!("{line}");
            } else {
                writeln!(out, "{line}")?;
            }
        }
        (error, _) => {
            let message = error.as_deref().unwrap_or("failed");
            tracing::error!("{what} FAILED: {message}");
            if !as_json {
                writeln!(out, "{what}: FAILED: {message}")?;
            }
        }
    }
    Ok(())
}

/// `restore`: what was restored on stdout, each failed entry on stderr.
pub fn restore(out: &mut dyn Write, err: &mut dyn Write, r: &RestoreReport, as_json: bool) -> io::Result<()> {
    if as_json {
        json(out, r)?;
    } else {
        let summary = r.summary.as_deref().map(|s| format!(": {s}")).unwrap_or_default();
        writeln!(
            out,
            "restored {} entries ({} files, {}) of source `{}` into {}{summary}",
            r.entries,
            r.files,
            human_bytes(r.bytes),
            r.source,
            r.target
        )?;
    }
    if !r.failures.is_empty() {
        writeln!(err, "{} entries could not be restored:", r.failures.len())?;
        for f in &r.failures {
            if f.path.is_empty() {
                writeln!(err, "  {}", f.error)?;
            } else {
                writeln!(err, "  {}: {}", one_line(f.path.clone()), f.error)?;
            }
        }
    }
    if r.stopped_early {
        writeln!(err, "stopped at the first failure (--fail-fast); later entries were not restored")?;
    }
    Ok(())
}

/// `ls -l`'s mode column.
fn mode_string(kind: EntryKind, mode: u32) -> String {
    let t = match kind {
        EntryKind::File => '-',
        EntryKind::Directory => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::CharDevice => 'c',
        EntryKind::BlockDevice => 'b',
        EntryKind::Socket => 's',
    };
    let mut s = String::from(t);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (0o400 >> i) != 0 { c } else { '-' });
    }
    s
}

/// An entry's attributes as a JSON object (the last value of a name wins).
fn attributes_json(attributes: &[(String, String)]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> =
        attributes.iter().map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone()))).collect();
    serde_json::Value::Object(map)
}

/// An entry's attributes for `list`: ` [name=value; …]`, or nothing.
fn attributes_plain(attributes: &[(String, String)]) -> String {
    if attributes.is_empty() {
        return String::new();
    }
    // Control characters are escaped so an entry stays on one line.
    let shown = |v: &str| -> String {
        v.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
    };
    let pairs: Vec<String> = attributes.iter().map(|(n, v)| format!("{n}={}", shown(v))).collect();
    format!(" [{}]", pairs.join("; "))
}

/// `list` as it streams: one line per entry, or one element of a JSON array
/// (opened by [`ListJson::start`], closed by [`ListJson::end`]), so a listing
/// of millions of entries is never held in memory.
pub struct ListJson {
    first: bool,
}

impl ListJson {
    /// The array's opening.
    pub fn start(out: &mut dyn Write) -> io::Result<ListJson> {
        write!(out, "[")?;
        Ok(ListJson { first: true })
    }

    /// One entry.
    pub fn entry(&mut self, out: &mut dyn Write, e: &Entry) -> io::Result<()> {
        let m = &e.meta;
        let value = serde_json::json!({
            "path": show(&e.path),
            "kind": m.kind.to_string(),
            "mode": format!("{:o}", m.mode),
            "uid": m.uid, "gid": m.gid, "size": m.size,
            "mtime": timespec::format(m.mtime),
            "target": m.symlink_target.as_deref().map(show),
            "attributes": attributes_json(&e.attributes),
        });
        write!(out, "{}\n  ", if self.first { "" } else { "," })?;
        self.first = false;
        serde_json::to_writer(&mut *out, &value).map_err(io::Error::other)
    }

    /// The array's end.
    pub fn end(self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}]", if self.first { "" } else { "\n" })
    }
}

/// One `list` line.
pub fn list_line(out: &mut dyn Write, e: &Entry) -> io::Result<()> {
    let m = &e.meta;
    let target = m.symlink_target.as_deref().map(|t| format!(" -> {}", one_line(show(t)))).unwrap_or_default();
    writeln!(
        out,
        "{} {:>5}/{:<5} {:>12} {} {}{target}{}",
        mode_string(m.kind, m.mode),
        m.uid,
        m.gid,
        m.size,
        timespec::format(m.mtime),
        one_line(show(&e.path)),
        attributes_plain(&e.attributes)
    )
}

/// `status`.
pub fn status(out: &mut dyn Write, err: &mut dyn Write, reports: &[StatusReport], as_json: bool) -> io::Result<()> {
    for r in reports {
        if let Some(e) = &r.error {
            writeln!(err, "error: {} → {}: {e}", r.source, r.sink)?;
        }
        if r.too_old == Some(true) {
            match r.newest {
                Some(t) => writeln!(
                    err,
                    "too old: {} → {}: the newest backup is from {}",
                    r.source,
                    r.sink,
                    timespec::format(t)
                )?,
                None => writeln!(err, "too old: {} → {}: there is no backup", r.source, r.sink)?,
            }
        }
    }
    if as_json {
        return json(out, &reports);
    }
    for r in reports {
        let Some(chains) = &r.chains else { continue };
        writeln!(out, "{} → {}: {} chain(s)", r.source, r.sink, chains.len())?;
        for (i, chain) in chains.iter().enumerate() {
            let size: u64 = chain.sets.iter().map(|s| s.size).sum();
            writeln!(out, "  chain {}: {} set(s), {}", i + 1, chain.sets.len(), human_bytes(size))?;
            for set in &chain.sets {
                writeln!(
                    out,
                    "    {:<11} {}  {} volume(s)  {}",
                    set.kind,
                    timespec::format(set.time),
                    set.volumes,
                    human_bytes(set.size)
                )?;
            }
        }
        if let Some(last) = chains.iter().flat_map(|c| &c.sets).map(|s| s.time).max() {
            writeln!(out, "  last backup: {}", timespec::format(last))?;
        }
        for note in r.notes.iter().flatten() {
            writeln!(out, "  note: {note}")?;
        }
    }
    Ok(())
}

/// `recovery-kit`: a Markdown document to print or keep in a password
/// manager.
pub fn recovery_kit(out: &mut dyn Write, kit: &RecoveryKit, as_json: bool) -> io::Result<()> {
    if as_json {
        return json(out, kit);
    }
    writeln!(out, "# Recovery kit: pipeline \"{}\"\n", kit.pipeline)?;
    writeln!(
        out,
        "Made {} by orchestrator {} from `{}` (SHA-256 {}).\n",
        timespec::format(kit.made),
        kit.version,
        kit.file,
        kit.file_sha256
    )?;
    writeln!(
        out,
        "Keep this where losing this machine cannot take it: printed, or in a password manager. It holds no \
         secret value; it says where each one comes from, and those values must be kept safe apart from the \
         machine too.\n"
    )?;
    writeln!(out, "## Backups\n")?;
    for b in &kit.backups {
        writeln!(out, "### {} → {}\n", b.source, b.sink)?;
        writeln!(out, "- sink plugin: {}", b.plugin)?;
        if let Some(l) = &b.location {
            writeln!(out, "- archives at: `{l}`")?;
        }
        if let Some(e) = &b.encryption {
            let how = match e.as_str() {
                "symmetric" => "OpenPGP with a passphrase (AES-256)",
                "public-key" => "OpenPGP to the recipients' public keys",
                "none" => "not encrypted (gzip)",
                other => other,
            };
            writeln!(out, "- encryption: {e}: {how}")?;
        }
        for r in &b.recipients {
            writeln!(out, "- recipient: {r}")?;
        }
        writeln!(out, "\nWith orchestrator (the pipeline file below and its secrets on a new machine):\n")?;
        writeln!(out, "```sh\n{}\n```\n", b.restore_with_orchestrator)?;
        if let Some(d) = &b.restore_with_duplicity {
            writeln!(out, "With stock duplicity alone:\n")?;
            writeln!(out, "```sh\n{d}\n```\n")?;
        }
    }
    writeln!(out, "## Secrets\n")?;
    if kit.secrets.is_empty() {
        writeln!(out, "The pipeline names no secret.\n")?;
    } else {
        writeln!(out, "| used by | comes from |\n|---|---|")?;
        for s in &kit.secrets {
            writeln!(out, "| `{}` | {} |", s.used_by, s.comes_from)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "## The pipeline file\n\n```toml\n{}\n```", kit.pipeline_text.trim_end())?;
    Ok(())
}

/// `prune`.
pub fn prune(out: &mut dyn Write, err: &mut dyn Write, reports: &[PruneReport], as_json: bool) -> io::Result<()> {
    for r in reports {
        if let Some(e) = &r.error {
            writeln!(err, "error: {} → {}: {e}", r.source, r.sink)?;
        }
    }
    if as_json {
        return json(out, &reports);
    }
    for r in reports {
        let Some(removed) = &r.removed else { continue };
        let verb = if r.dry_run { "would remove" } else { "removed" };
        writeln!(out, "{} → {}: {verb} {} object(s)", r.source, r.sink, removed.len())?;
        for name in removed {
            writeln!(out, "  {name}")?;
        }
    }
    Ok(())
}

/// `verify`.
pub fn verify(out: &mut dyn Write, err: &mut dyn Write, reports: &[VerifyReport], as_json: bool) -> io::Result<()> {
    for r in reports {
        let what = format!("{} → {}", r.source, r.sink);
        match &r.archive {
            Ok(a) if a.problems.is_empty() => {
                if !as_json {
                    writeln!(
                        out,
                        "{what}: ok, {} object(s) and {} entries checked",
                        a.objects_checked, a.entries_checked
                    )?;
                }
            }
            Ok(a) => {
                if !as_json {
                    writeln!(out, "{what}: {} problem(s)", a.problems.len())?;
                    for p in &a.problems {
                        writeln!(out, "  {p}")?;
                    }
                }
            }
            Err(e) => writeln!(err, "error: {what}: {e}")?,
        }
        match &r.compare {
            None => {}
            Some(Ok(_)) if as_json => {}
            Some(Ok(c)) if c.differences.is_empty() => {
                writeln!(out, "{what}: the newest backup equals the live source ({} entries compared)", c.compared)?
            }
            Some(Ok(c)) => {
                writeln!(
                    out,
                    "{what}: {} difference(s) between the newest backup and the live source",
                    c.differences.len()
                )?;
                for d in &c.differences {
                    writeln!(out, "  {d}")?;
                }
            }
            Some(Err(e)) => writeln!(err, "error: {what}: comparing with the live source: {e}")?,
        }
    }
    if as_json {
        json(out, &reports)?;
    }
    Ok(())
}

/// `validate`: each instance's grants and secrets, then `FILE: ok`, or the
/// problems on stderr.
pub fn validate(
    out: &mut dyn Write,
    err: &mut dyn Write,
    file: &std::path::Path,
    r: &ValidateReport,
    as_json: bool,
) -> io::Result<()> {
    if as_json {
        json(out, r)?;
    } else {
        for p in &r.plugins {
            writeln!(out, "{} {} ({}, {})", p.kind, p.name, p.plugin, p.origin)?;
            let lines = p.grants.lines();
            if lines.is_empty() {
                writeln!(out, "  grants: none")?;
            }
            for l in &lines {
                writeln!(out, "  grant: {l}")?;
            }
            for s in &p.secrets {
                writeln!(out, "  secret: {s}")?;
            }
        }
        if r.ok {
            writeln!(out, "{}: ok", file.display())?;
        }
    }
    if !r.ok {
        writeln!(err, "error: {}", r.problems.join("\n"))?;
    }
    Ok(())
}

/// `plugin list`.
pub fn plugin_list(out: &mut dyn Write, plugins: &[PluginReport], as_json: bool) -> io::Result<()> {
    if as_json {
        let list: Vec<_> = plugins
            .iter()
            .map(|p| {
                serde_json::json!({"name": p.name, "world": p.world, "version": p.info.version,
                    "description": p.info.description, "sha256": p.sha256})
            })
            .collect();
        return json(out, &list);
    }
    for p in plugins {
        writeln!(out, "{:<16} {:<7} {:<8} {}", p.name, p.world, p.info.version, p.info.description)?;
    }
    Ok(())
}

/// `plugin inspect`.
pub fn plugin_inspect(out: &mut dyn Write, p: &PluginReport, as_json: bool) -> io::Result<()> {
    const API: &str = "orchestrator:plugin@0.1";
    if as_json {
        return json(
            out,
            &serde_json::json!({
                "file": p.name, "name": p.info.name, "version": p.info.version,
                "description": p.info.description, "world": p.world,
                "api": API, "sha256": p.sha256, "size": p.size,
                "imports": p.imports, "exports": p.exports,
            }),
        );
    }
    writeln!(out, "{}: {} {} — {}", p.name, p.info.name, p.info.version, p.info.description)?;
    writeln!(out, "  world:   {} ({API})", p.world)?;
    writeln!(out, "  sha256:  {}", p.sha256)?;
    writeln!(out, "  size:    {} bytes", p.size)?;
    writeln!(out, "  imports: {}", p.imports.join(", "))?;
    writeln!(out, "  exports: {}", p.exports.join(", "))?;
    writeln!(out, "  what it wants depends on its configuration: `orchestrator validate PIPELINE` prints the grants")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_listed_as_an_object_and_compactly() {
        let a = vec![
            ("imap.flags".to_string(), "\\Seen \\Answered".to_string()),
            ("maildir.info".to_string(), "2,RS".to_string()),
        ];
        assert_eq!(attributes_json(&a), serde_json::json!({"imap.flags": "\\Seen \\Answered", "maildir.info": "2,RS"}));
        assert_eq!(attributes_json(&[]), serde_json::json!({}));
        assert_eq!(attributes_plain(&a), " [imap.flags=\\Seen \\Answered; maildir.info=2,RS]");
        assert_eq!(attributes_plain(&[("x".into(), "a\nb".into())]), " [x=a\\nb]");
        assert_eq!(attributes_plain(&[]), "");
    }

    #[test]
    fn terminal_controls_are_escaped_and_text_is_not() {
        let shown = |parts: &[&[u8]]| {
            let mut out = Vec::new();
            let mut p = Printable::new(&mut out);
            for part in parts {
                p.write_all(part).unwrap();
            }
            drop(p);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(shown(&[b"a\x1b]0;pwn\x07\x1b[2Jb\n"]), "a\\u{1b}]0;pwn\\u{7}\\u{1b}[2Jb\n");
        assert_eq!(shown(&[b"tab\tand\rdel\x7f"]), "tab\tand\\u{d}del\\u{7f}");
        // C1 CSI (U+009B), whole or split across writes; other two-byte
        // characters pass, split or not.
        assert_eq!(shown(&["x\u{9b}2J".as_bytes()]), "x\\u{9b}2J");
        assert_eq!(shown(&[b"x\xc2", b"\x9b2J"]), "x\\u{9b}2J");
        assert_eq!(shown(&["caf\u{e9} \u{a9}".as_bytes()]), "caf\u{e9} \u{a9}");
        assert_eq!(shown(&[b"\xc2", b"\xa9"]), "\u{a9}");
        // A lone 0xC2 at the very end is given back as it came.
        let mut out = Vec::new();
        Printable::new(&mut out).write_all(b"end\xc2").unwrap();
        assert_eq!(out, b"end\xc2");
        assert_eq!(one_line("new\nline".into()), "new\\nline");
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn a_streamed_json_list_is_one_valid_array() {
        let entry = |path: &str| Entry {
            path: path.as_bytes().to_vec(),
            meta: orchestrator_core::types::Metadata {
                kind: EntryKind::File,
                mode: 0o644,
                uid: 1,
                gid: 2,
                size: 3,
                mtime: 0,
                mtime_nsec: 0,
                symlink_target: None,
                device: None,
            },
            attributes: vec![],
        };
        for n in [0, 1, 3] {
            let mut out = Vec::new();
            let mut list = ListJson::start(&mut out).unwrap();
            for i in 0..n {
                list.entry(&mut out, &entry(&format!("f{i}"))).unwrap();
            }
            list.end(&mut out).unwrap();
            let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(parsed.as_array().unwrap().len(), n, "{}", String::from_utf8_lossy(&out));
        }
    }
}
