//! Commands that read what a sink stored: `restore`, `list`, `status`, `verify`.

use super::{exit, find_sink, find_source, human_bytes, json_out, now, selected_sources};
use crate::backup::CHUNK;
use crate::cli::{ListArgs, RestoreArgs, StatusArgs, VerifyArgs};
use crate::host::{Host, UsageError};
use crate::restore::{RestoreWriter, show};
use crate::runtime::bindings::sink::exports::orchestrator::plugin::sink as sink_api;
use crate::runtime::bindings::{Entry, EntryKind, PluginError};
use crate::runtime::{CallError, SinkInstance};
use crate::timespec;
use orchestrator_config::Sink;

/// Open a sink for reading one source's backups.
async fn open_sink(host: &mut Host, source: &str, sink: Option<&str>) -> Result<(SinkInstance, Sink), UsageError> {
    find_source(host, source)?;
    let sink = find_sink(host, source, sink)?.clone();
    host.load_plugins([&sink.instance])?;
    host.open_backends([&sink])?;
    let backend = host.backend_of(&sink).map_err(UsageError)?;
    let (instance, _) = host.start_sink(&sink, backend, source).await.map_err(UsageError)?;
    Ok((instance, sink))
}

fn parse_time(spec: Option<&str>) -> Result<Option<i64>, UsageError> {
    spec.map(|t| timespec::parse(t, now())).transpose().map_err(UsageError)
}

/// Outcome of opening a reader: a reader, or an exit code already reported.
async fn open_reader(
    snk: &mut SinkInstance,
    sink: &Sink,
    request: &sink_api::ReadRequest,
) -> Result<wasmtime::component::ResourceAny, u8> {
    match snk.open_reader(&sink.instance.config.to_string(), request).await {
        Ok(r) => Ok(r),
        Err(CallError::Plugin(PluginError::NotFound(m))) => {
            eprintln!("nothing to restore: {m}");
            Err(exit::NOTHING)
        }
        Err(e) => {
            eprintln!("error: sink `{}`: {e}", sink.instance.name);
            Err(exit::FAILED)
        }
    }
}

/// Map an entry of the backup into the restore tree rooted at `path`: the
/// path itself is the root (a directory) or lands under its own name.
fn reroot(entry: &mut Entry, prefix: &[u8], single_file: &mut Option<Vec<u8>>) -> bool {
    if prefix.is_empty() {
        return true;
    }
    if entry.path == prefix {
        if entry.meta.kind == EntryKind::Directory {
            entry.path.clear();
        } else {
            let name = prefix.rsplit(|&b| b == b'/').next().unwrap_or(prefix).to_vec();
            *single_file = Some(name.clone());
            entry.path = name;
        }
        return true;
    }
    match entry.path.strip_prefix(prefix).and_then(|r| r.strip_prefix(b"/")) {
        Some(rest) => {
            entry.path = rest.to_vec();
            true
        }
        None => false,
    }
}

pub async fn restore(args: RestoreArgs) -> Result<u8, UsageError> {
    let mut host = Host::new(&args.pipeline)?;
    let time = parse_time(args.time.as_deref())?;
    let prefix: Vec<u8> = args.path.as_deref().map(|p| p.trim_matches('/').as_bytes().to_vec()).unwrap_or_default();
    let (mut snk, sink) = open_sink(&mut host, &args.source, args.sink.as_deref()).await?;
    let request = sink_api::ReadRequest {
        source_name: args.source.clone(),
        time,
        path: (!prefix.is_empty()).then(|| prefix.clone()),
        with_content: true,
    };
    let reader = match open_reader(&mut snk, &sink, &request).await {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if let Some(url) = target_url(&args.to) {
        return restore_to_url(&mut host, &args, url, &mut snk, reader, &prefix).await;
    }
    let mut writer = RestoreWriter::new(&args.to, args.force).map_err(|e| UsageError(e.0))?;
    let (mut entries, mut files, mut bytes, mut failures) = (0u64, 0u64, 0u64, Vec::new());
    let mut single_file = None;
    loop {
        let mut entry = match snk.reader_next(reader).await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                eprintln!("error: reading the backup failed: {e}");
                return Ok(exit::FAILED);
            }
        };
        if !reroot(&mut entry, &prefix, &mut single_file) {
            continue;
        }
        entries += 1;
        match writer.add(&entry) {
            Ok(Some(mut file)) => {
                loop {
                    match snk.reader_read(reader, CHUNK).await {
                        Ok(chunk) if chunk.is_empty() => break,
                        Ok(chunk) => {
                            bytes += chunk.len() as u64;
                            if let Err(e) = file.write(&chunk) {
                                eprintln!("error: {e}");
                                return Ok(exit::FAILED);
                            }
                        }
                        Err(e) => {
                            eprintln!("error: reading {} from the backup failed: {e}", show(&entry.path));
                            return Ok(exit::FAILED);
                        }
                    }
                }
                files += 1;
                if let Err(e) = writer.finish_file(file) {
                    tracing::error!("{e}");
                    failures.push(e.0);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("{e}");
                failures.push(e.0);
            }
        }
    }
    if entries == 0 {
        eprintln!("nothing to restore: the backup has no entry at {:?}", show(&prefix));
        return Ok(exit::NOTHING);
    }
    let root = writer.root().to_path_buf();
    match writer.finish() {
        Ok(skipped) => {
            for s in skipped {
                tracing::warn!("skipped {s}");
            }
        }
        Err(e) => failures.push(e.0),
    }
    println!(
        "restored {entries} entries ({files} files, {}) of source `{}` into {}",
        human_bytes(bytes),
        args.source,
        root.display()
    );
    if failures.is_empty() {
        Ok(exit::OK)
    } else {
        eprintln!("{} entries could not be restored:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
        Ok(exit::FAILED)
    }
}

/// `--to` as a URL (`imap://user@host`) when it is one: a scheme (a letter,
/// then letters, digits, `+`, `-`, `.`) and `://`. Anything else is a directory.
fn target_url(to: &std::path::Path) -> Option<&str> {
    let s = to.to_str()?;
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    ok.then_some(s)
}

/// `restore --to URL`: the backup's entries go to the source plugin's writer
/// (`open-writer`), which puts them back into the kind of place it reads (an
/// IMAP account). The plugin gets its pipeline configuration (so the target's
/// password is the source's `password` secret) and may connect to the URL's
/// server: the person who typed it granted that. Entries keep their paths;
/// `--path` selects a subtree without rerooting it.
async fn restore_to_url(
    host: &mut Host,
    args: &RestoreArgs,
    url: &str,
    snk: &mut SinkInstance,
    reader: wasmtime::component::ResourceAny,
    prefix: &[u8],
) -> Result<u8, UsageError> {
    let source = find_source(host, &args.source)?.clone();
    host.load_plugins([&source])?;
    let (mut src, mut granted) = host.start_source(&source).await.map_err(UsageError)?;
    for endpoint in crate::grants::url_endpoints(url) {
        if !granted.connect.contains(&endpoint) {
            granted.connect.push(endpoint);
        }
    }
    src.grant(&granted).map_err(|e| UsageError(e.to_string()))?;
    let label = Host::label(&source);
    let writer = match src.open_writer(&source.config.to_string(), url).await {
        Ok(w) => w,
        Err(CallError::Plugin(PluginError::Unsupported(m))) => return Err(UsageError(format!("{label}: {m}"))),
        Err(e) => {
            eprintln!("error: {label} cannot restore into {url}: {e}");
            return Ok(exit::FAILED);
        }
    };
    let (mut entries, mut files, mut bytes) = (0u64, 0u64, 0u64);
    let fail = |what: String| {
        eprintln!("error: restoring into {url}: {what}");
        Ok(exit::FAILED)
    };
    loop {
        let entry = match snk.reader_next(reader).await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return fail(format!("reading the backup failed: {e}")),
        };
        // Paths keep their names (a folder is `Archiv/2024` whatever `--path`
        // selects); `--path` only chooses what is written.
        let under = entry.path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"));
        if !prefix.is_empty() && !under {
            continue;
        }
        entries += 1;
        let wanted = match src.writer_add(writer, &entry).await {
            Ok(w) => w,
            Err(e) => return fail(format!("{label} refused {}: {e}", show(&entry.path))),
        };
        if !wanted {
            continue;
        }
        loop {
            match snk.reader_read(reader, CHUNK).await {
                Ok(chunk) if chunk.is_empty() => break,
                Ok(chunk) => {
                    bytes += chunk.len() as u64;
                    if let Err(e) = src.writer_write(writer, &chunk).await {
                        return fail(format!("{label} failed writing {}: {e}", show(&entry.path)));
                    }
                }
                Err(e) => return fail(format!("reading {} from the backup failed: {e}", show(&entry.path))),
            }
        }
        if let Err(e) = src.writer_end_entry(writer).await {
            return fail(format!("{label} failed writing {}: {e}", show(&entry.path)));
        }
        files += 1;
    }
    if entries == 0 {
        eprintln!("nothing to restore: the backup has no entry at {:?}", show(prefix));
        return Ok(exit::NOTHING);
    }
    match src.writer_finish(writer).await {
        Ok(summary) => {
            println!(
                "restored {entries} entries ({files} files, {}) of source `{}` into {url}: {summary}",
                human_bytes(bytes),
                args.source
            );
            Ok(exit::OK)
        }
        Err(e) => fail(format!("{label} could not finish: {e}")),
    }
}

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

pub async fn list(args: ListArgs) -> Result<u8, UsageError> {
    let mut host = Host::new(&args.pipeline)?;
    let time = parse_time(args.time.as_deref())?;
    let (mut snk, sink) = open_sink(&mut host, &args.source, args.sink.as_deref()).await?;
    let request = sink_api::ReadRequest { source_name: args.source.clone(), time, path: None, with_content: false };
    let reader = match open_reader(&mut snk, &sink, &request).await {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let mut json = Vec::new();
    loop {
        match snk.reader_next(reader).await {
            Ok(Some(e)) => {
                let m = &e.meta;
                if args.json {
                    json.push(serde_json::json!({
                        "path": show(&e.path),
                        "kind": m.kind.to_string(),
                        "mode": format!("{:o}", m.mode),
                        "uid": m.uid, "gid": m.gid, "size": m.size,
                        "mtime": timespec::format(m.mtime),
                        "target": m.symlink_target.as_deref().map(show),
                        "attributes": attributes_json(&e.attributes),
                    }));
                } else {
                    let target = m.symlink_target.as_deref().map(|t| format!(" -> {}", show(t))).unwrap_or_default();
                    println!(
                        "{} {:>5}/{:<5} {:>12} {} {}{target}{}",
                        mode_string(m.kind, m.mode),
                        m.uid,
                        m.gid,
                        m.size,
                        timespec::format(m.mtime),
                        show(&e.path),
                        attributes_plain(&e.attributes)
                    );
                }
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("error: reading the backup failed: {e}");
                return Ok(exit::FAILED);
            }
        }
    }
    if args.json {
        json_out(&serde_json::Value::Array(json));
    }
    Ok(exit::OK)
}

pub async fn status(args: StatusArgs) -> Result<u8, UsageError> {
    let mut host = Host::new(&args.pipeline)?;
    let sources = selected_sources(&host, &args.sources)?;
    let sinks = host.pipeline.sinks.clone();
    host.load_plugins(sinks.iter().map(|s| &s.instance))?;
    host.open_backends(&sinks)?;
    let (mut out, mut code) = (Vec::new(), exit::OK);
    for source in &sources {
        for sink in sinks.iter().filter(|s| s.inputs.contains(&source.name)) {
            let backend = host.backend_of(sink).map_err(UsageError)?;
            let result = match host.start_sink(sink, backend, &source.name).await {
                Ok((mut snk, _)) => {
                    snk.status(&sink.instance.config.to_string(), &source.name).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(status) => {
                    if !args.json {
                        print_status(&source.name, &sink.instance.name, &status);
                    }
                    out.push(status_json(&source.name, &sink.instance.name, &status));
                }
                Err(e) => {
                    code = exit::FAILED;
                    eprintln!("error: {} → {}: {e}", source.name, sink.instance.name);
                    out.push(serde_json::json!({"source": source.name, "sink": sink.instance.name, "error": e}));
                }
            }
        }
    }
    if args.json {
        json_out(&serde_json::Value::Array(out));
    }
    Ok(code)
}

fn set_kind(k: sink_api::SetKind) -> &'static str {
    match k {
        sink_api::SetKind::Full => "full",
        sink_api::SetKind::Incremental => "incremental",
    }
}

fn print_status(source: &str, sink: &str, status: &sink_api::SourceStatus) {
    println!("{source} → {sink}: {} chain(s)", status.chains.len());
    for (i, chain) in status.chains.iter().enumerate() {
        let size: u64 = chain.sets.iter().map(|s| s.size).sum();
        println!("  chain {}: {} set(s), {}", i + 1, chain.sets.len(), human_bytes(size));
        for set in &chain.sets {
            println!(
                "    {:<11} {}  {} volume(s)  {}",
                set_kind(set.kind),
                timespec::format(set.time),
                set.volumes,
                human_bytes(set.size)
            );
        }
    }
    if let Some(last) = status.chains.iter().flat_map(|c| &c.sets).map(|s| s.time).max() {
        println!("  last backup: {}", timespec::format(last));
    }
    for note in &status.notes {
        println!("  note: {note}");
    }
}

fn status_json(source: &str, sink: &str, status: &sink_api::SourceStatus) -> serde_json::Value {
    let chains: Vec<_> = status
        .chains
        .iter()
        .map(|c| {
            let sets: Vec<_> = c
                .sets
                .iter()
                .map(|s| serde_json::json!({"kind": set_kind(s.kind), "time": s.time, "volumes": s.volumes, "size": s.size, "changed_entries": s.changed_entries}))
                .collect();
            serde_json::json!({"sets": sets})
        })
        .collect();
    serde_json::json!({"source": source, "sink": sink, "chains": chains, "notes": status.notes})
}

pub async fn verify(args: VerifyArgs) -> Result<u8, UsageError> {
    let mut host = Host::new(&args.pipeline)?;
    let sources = selected_sources(&host, &args.sources)?;
    let sinks = host.pipeline.sinks.clone();
    host.load_plugins(sinks.iter().map(|s| &s.instance))?;
    if args.compare {
        host.load_plugins(sources.iter())?;
    }
    host.open_backends(&sinks)?;
    let mut code = exit::OK;
    for source in &sources {
        for sink in sinks.iter().filter(|s| s.inputs.contains(&source.name)) {
            let backend = host.backend_of(sink).map_err(UsageError)?;
            let result = match host.start_sink(sink, backend, &source.name).await {
                Ok((mut snk, _)) => {
                    snk.verify(&sink.instance.config.to_string(), &source.name).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(report) if report.problems.is_empty() => println!(
                    "{} → {}: ok, {} object(s) and {} entries checked",
                    source.name, sink.instance.name, report.objects_checked, report.entries_checked
                ),
                Ok(report) => {
                    code = exit::FAILED;
                    println!("{} → {}: {} problem(s)", source.name, sink.instance.name, report.problems.len());
                    for p in &report.problems {
                        println!("  {p}");
                    }
                }
                Err(e) => {
                    code = exit::FAILED;
                    eprintln!("error: {} → {}: {e}", source.name, sink.instance.name);
                }
            }
            if args.compare {
                let backend = host.backend_of(sink).map_err(UsageError)?;
                match crate::compare::compare(&host, source, sink, backend, now()).await {
                    Ok(c) if c.differences.is_empty() => println!(
                        "{} → {}: the newest backup equals the live source ({} entries compared)",
                        source.name, sink.instance.name, c.compared
                    ),
                    Ok(c) => {
                        code = exit::FAILED;
                        println!(
                            "{} → {}: {} difference(s) between the newest backup and the live source",
                            source.name,
                            sink.instance.name,
                            c.differences.len()
                        );
                        for d in &c.differences {
                            println!("  {d}");
                        }
                    }
                    Err(e) => {
                        code = exit::FAILED;
                        eprintln!(
                            "error: {} → {}: comparing with the live source: {e}",
                            source.name, sink.instance.name
                        );
                    }
                }
            }
        }
    }
    Ok(code)
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
}
