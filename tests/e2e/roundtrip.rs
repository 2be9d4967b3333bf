//! A tree with everything a backup must keep goes through the boundary, the
//! sink and back unchanged.

use crate::harness::Env;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(p: &Path, secs: i64) {
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 },
        last_modification: rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 },
    };
    rustix::fs::utimensat(rustix::fs::CWD, p, &ts, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// Build the odd tree; returns its root.
pub fn odd_tree(env: &Env) -> std::path::PathBuf {
    let root = env.path("data");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("plain.txt"), "plain\n").unwrap();
    std::fs::write(root.join("with space.txt"), "space").unwrap();
    std::fs::write(root.join("new\nline"), "newline").unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9")), "not utf-8").unwrap();
    std::fs::write(root.join("ünï©ode"), "utf-8").unwrap();
    let long = "a-name-longer-than-one-hundred-bytes-".repeat(4);
    std::fs::create_dir(root.join(&long)).unwrap();
    std::fs::write(root.join(&long).join(&long), "deep long").unwrap();
    std::fs::create_dir_all(root.join("empty/nested-empty")).unwrap();
    std::fs::create_dir(root.join("private")).unwrap();
    std::fs::write(root.join("private/secret"), "s").unwrap();
    set_mode(&root.join("private/secret"), 0o600);
    set_mode(&root.join("private"), 0o700);
    std::fs::write(root.join("setuid"), "#!/bin/sh\n").unwrap();
    set_mode(&root.join("setuid"), 0o4755);
    std::fs::write(root.join("empty-file"), "").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    symlink("plain.txt", root.join("link-to-plain")).unwrap();
    symlink("/nonexistent/dangling", root.join("dangling")).unwrap();
    symlink("/etc", root.join("link-outside")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(root.join("fifo")).status().unwrap().success());
    set_mode(&root.join("fifo"), 0o640);
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::create_dir(root.join("sub-x")).unwrap();
    std::fs::write(root.join("sub/deeper"), "d").unwrap();
    // Fixed times, so comparing mtimes is meaningful; directories last.
    for entry in walk(&root).iter().rev() {
        set_mtime(entry, 1_600_000_000 + entry.as_os_str().len() as i64);
    }
    root
}

pub fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            let mut children: Vec<_> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// Compare two trees: same names, kinds, modes, mtimes, owners, contents, targets.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (wa, wb) = (walk(a), walk(b));
    let rel = |root: &Path, v: &[std::path::PathBuf]| -> Vec<Vec<u8>> {
        v.iter().map(|p| p.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec()).collect()
    };
    assert_eq!(rel(a, &wa), rel(b, &wb), "different names");
    for (pa, pb) in wa.iter().zip(&wb) {
        let (ma, mb) = (std::fs::symlink_metadata(pa).unwrap(), std::fs::symlink_metadata(pb).unwrap());
        assert_eq!(ma.file_type(), mb.file_type(), "{pa:?}");
        assert_eq!((ma.uid(), ma.gid()), (mb.uid(), mb.gid()), "{pa:?}");
        if ma.file_type().is_symlink() {
            assert_eq!(std::fs::read_link(pa).unwrap(), std::fs::read_link(pb).unwrap(), "{pa:?}");
            continue;
        }
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "mode of {pa:?}");
        assert_eq!(ma.mtime(), mb.mtime(), "mtime of {pa:?}");
        if ma.is_file() {
            assert_eq!(std::fs::read(pa).unwrap(), std::fs::read(pb).unwrap(), "content of {pa:?}");
        }
    }
}

const PIPELINE: &str = r#"
[pipeline]
name = "roundtrip"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.local]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/backup"
keep = 2
"#;

#[test]
fn odd_tree_round_trips_exactly() {
    let env = Env::new();
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", PIPELINE);
    let p = p.to_str().unwrap();
    let run = env.run(&["run", p, "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let job = &report["jobs"][0];
    assert_eq!(job["ok"], true, "{}", run.all());
    assert_eq!(job["entries"].as_u64().unwrap(), walk(&root).len() as u64);

    let out = env.path("restored");
    let restore = env.run(&["restore", p, "--source", "docs", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(restore.code, 0, "{}", restore.all());
    assert_same_tree(&root, &out);
    // The outside symlink was kept as a link, never followed.
    assert_eq!(std::fs::read_link(out.join("link-outside")).unwrap(), Path::new("/etc"));

    // list shows every entry, names byte-exact in JSON (lossy only for display).
    let list = env.run(&["list", p, "--source", "docs", "--json"], &[]);
    assert_eq!(list.code, 0, "{}", list.all());
    let entries: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), walk(&root).len());
}

#[test]
fn restore_of_one_path_and_retention() {
    let env = Env::new();
    let root = odd_tree(&env);
    let p = env.pipeline("p.toml", PIPELINE);
    let p = p.to_str().unwrap();
    for _ in 0..3 {
        assert_eq!(env.run(&["run", p], &[]).code, 0);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // keep = 2 pruned the oldest set.
    let status = env.run(&["status", p, "--json"], &[]);
    assert_eq!(status.code, 0, "{}", status.all());
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s[0]["chains"].as_array().unwrap().len(), 2, "{}", status.all());

    let out = env.path("only-private");
    let r = env.run(&["restore", p, "--source", "docs", "--path", "private", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_same_tree(&root.join("private"), &out);

    let out = env.path("one-file");
    let r = env.run(&["restore", p, "--source", "docs", "--path", "big.bin", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), std::fs::read(root.join("big.bin")).unwrap());

    let verify = env.run(&["verify", p], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());
    assert!(verify.stdout.contains("ok, 2 object(s)"), "{}", verify.all());
}

/// A file name is data from whoever wrote the tree: `list` shows it with
/// terminal controls escaped, so listing a hostile backup cannot rewrite the
/// screen; `--json` keeps the exact bytes.
#[test]
fn list_escapes_terminal_controls_and_json_keeps_the_bytes() {
    let env = Env::new();
    let root = env.path("data");
    std::fs::create_dir(&root).unwrap();
    let hostile = "a\u{1b}]0;pwn\u{7}\u{1b}[2J\u{9b}31m";
    std::fs::write(root.join(hostile), "x").unwrap();
    std::fs::write(root.join("two\nlines"), "y").unwrap();
    let p = env.pipeline("p.toml", PIPELINE);
    let p = p.to_str().unwrap();
    assert_eq!(env.run(&["run", p], &[]).code, 0);

    let list = env.run(&["list", p, "--source", "docs"], &[]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(!list.stdout.contains(['\u{1b}', '\u{7}', '\u{9b}']), "{:?}", list.stdout);
    assert!(list.stdout.contains("a\\u{1b}]0;pwn\\u{7}\\u{1b}[2J\\u{9b}31m"), "{}", list.stdout);
    assert!(list.stdout.contains(" two\\nlines\n"), "{}", list.stdout);
    assert_eq!(list.stdout.lines().count(), 3, "one line per entry: {}", list.stdout);

    let json = env.run(&["list", p, "--source", "docs", "--json"], &[]);
    let entries: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let paths: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&hostile) && paths.contains(&"two\nlines"), "{paths:?}");
}
