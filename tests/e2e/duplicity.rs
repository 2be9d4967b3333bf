//! Interop with stock duplicity, in two versions: Debian's package (0.8.22,
//! `duplicity` on PATH) and 3.x from PyPI (`$ORCHESTRATOR_DUPLICITY3`, else
//! the venv `scripts/test.sh` makes at
//! `${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci/duplicity3`). Every test
//! here runs once per version, as `duplicity::debian_0_8::NAME` and
//! `duplicity::pypi_3::NAME`; under `CI=true` a missing duplicity fails the
//! test, elsewhere it is skipped with a `SKIPPED` line. Failure messages
//! name the duplicity version.
//!
//! This file: duplicity restores, lists and verifies our full set; we restore
//! its plain and gzip fulls and append to its chain. `duplicity_interop.rs`:
//! the matrix over chains and points in time, both directions, short and
//! old-style names.

use crate::harness::Env;
use crate::roundtrip::{assert_same_tree, odd_tree, walk};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

#[path = "duplicity_interop.rs"]
pub mod interop;

/// Which duplicity a test talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Debian's package, `duplicity` on PATH (0.8.22 on bookworm).
    Debian,
    /// duplicity 3.x from PyPI, in the venv `scripts/test.sh` installs.
    Pypi3,
}

/// How archives are sealed, on both sides: the sink's settings, duplicity's
/// options and the environment both need. An encrypted variant is one more
/// arm in each method (e.g. `Symmetric`: `encryption = "symmetric"` with
/// `passphrase = { env = "BACKUP_PASSPHRASE" }`, no duplicity option, both
/// `BACKUP_PASSPHRASE` and `PASSPHRASE` in the environment, suffix `.gpg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// gzip volumes and signatures, plain manifests: duplicity's `--no-encryption`.
    None,
    /// OpenPGP with a passphrase: duplicity's default with `PASSPHRASE`.
    Symmetric,
}

impl Encryption {
    /// The sink's keys for this encryption (TOML lines).
    pub fn sink_settings(self) -> &'static str {
        match self {
            Encryption::None => r#"encryption = "none""#,
            Encryption::Symmetric => "encryption = \"symmetric\"\npassphrase = { env = \"BACKUP_PASSPHRASE\" }",
        }
    }

    /// A pipeline whose sink is `encryption = "symmetric"` with a passphrase
    /// file, its sink sealed as `self` says instead (with the passphrase
    /// duplicity reads too): for targets whose tests build their own pipeline.
    pub fn reseal(self, pipeline: &str) -> String {
        pipeline.replace("passphrase = { file = ", "#").replace("encryption = \"symmetric\"", self.sink_settings())
    }

    /// duplicity's options for the same archives.
    pub fn duplicity_options(self) -> &'static [&'static str] {
        match self {
            Encryption::None => &["--no-encryption"],
            Encryption::Symmetric => &[],
        }
    }

    /// Environment for both the orchestrator and duplicity.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Encryption::None => &[],
            Encryption::Symmetric => {
                &[("BACKUP_PASSPHRASE", "interop passphrase"), ("PASSPHRASE", "interop passphrase")]
            }
        }
    }

    /// The suffix of manifests on the target: manifests are never gzipped,
    /// but encrypted like the rest.
    pub fn manifest_suffix(self) -> &'static str {
        match self {
            Encryption::None => "",
            Encryption::Symmetric => ".gpg",
        }
    }

    /// The suffix of volumes and signatures on the target (long names).
    pub fn suffix(self) -> &'static str {
        match self {
            Encryption::None => ".gz",
            Encryption::Symmetric => ".gpg",
        }
    }
}

/// One duplicity program and its version.
pub struct Duplicity {
    pub peer: Peer,
    pub program: PathBuf,
    pub version: String,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `duplicity --version` says `duplicity 0.8.22` or `duplicity 3.0.7 December 31, 2025`.
fn version_of(program: &Path) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).map(str::to_string)
}

impl Duplicity {
    /// The program for `peer`, or `None` (after a `SKIPPED` line) when it is
    /// missing outside CI. Under `CI=true` a missing one fails the test.
    pub fn find(peer: Peer) -> Option<Duplicity> {
        let (program, how) = match peer {
            Peer::Debian => (
                PathBuf::from("duplicity"),
                "Debian's duplicity is not installed; scripts/test.sh installs it (apt-get install duplicity)",
            ),
            Peer::Pypi3 => (
                std::env::var_os("ORCHESTRATOR_DUPLICITY3").map(PathBuf::from).unwrap_or_else(|| {
                    let cache = std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
                    cache.join("orchestrator-ci/duplicity3/bin/duplicity")
                }),
                "duplicity 3.x from PyPI is not installed; scripts/test.sh installs it into a venv at \
                 ${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-ci/duplicity3 and exports \
                 ORCHESTRATOR_DUPLICITY3=<venv>/bin/duplicity (by hand: /usr/bin/python3 -m venv DIR && \
                 DIR/bin/pip install --no-deps duplicity==3.0.7 fasteners pexpect ptyprocess python-gettext)",
            ),
        };
        let version = version_of(&program);
        if peer == Peer::Pypi3
            && let Some(v) = &version
        {
            assert!(v.starts_with("3."), "{} is duplicity {v}, not 3.x; {how}", program.display());
        }
        match version {
            Some(version) => Some(Duplicity { peer, program, version }),
            None if in_ci() => panic!("{how} (looked for {}; CI=true, so this fails)", program.display()),
            None => {
                eprintln!("SKIPPED: {how} (looked for {})", program.display());
                None
            }
        }
    }

    /// For messages: `duplicity 0.8.22 (duplicity)`.
    pub fn label(&self) -> String {
        format!("duplicity {} ({})", self.version, self.program.display())
    }

    /// Run with a fresh, empty `--archive-dir`; the command must succeed.
    pub fn run(&self, env: &Env, enc: Encryption, args: &[&str]) -> Output {
        let out = self.output(env, enc, None, args, &[]);
        self.check(args, &out);
        out
    }

    /// Run with a given `--archive-dir` (kept between calls, as a user's
    /// cache), and extra environment; the command must succeed.
    pub fn run_in(&self, env: &Env, enc: Encryption, cache: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let out = self.output(env, enc, Some(cache), args, envs);
        self.check(args, &out);
        out
    }

    /// Run and return what happened, success or not. Times print as UTC
    /// (`TZ=UTC`) unless `envs` says otherwise.
    pub fn output(
        &self,
        env: &Env,
        enc: Encryption,
        cache: Option<&Path>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Output {
        static FRESH: AtomicU32 = AtomicU32::new(0);
        let cache = cache
            .map(Path::to_path_buf)
            .unwrap_or_else(|| env.path(&format!("duplicity-cache-{}", FRESH.fetch_add(1, Ordering::Relaxed))));
        let mut cmd = Command::new(&self.program);
        cmd.args(args).args(enc.duplicity_options()).arg("--archive-dir").arg(&cache);
        cmd.env_remove("PASSPHRASE").env("TZ", "UTC");
        for (k, v) in enc.env().iter().chain(envs) {
            cmd.env(k, v);
        }
        cmd.output().unwrap_or_else(|e| panic!("{}: cannot run: {e}", self.label()))
    }

    /// Success, and nothing to complain about: duplicity keeps going (exit 0)
    /// after some errors in an archive, e.g. a `deleted/` entry missing for a
    /// child of a deleted directory, or entries out of order.
    fn check(&self, args: &[&str], out: &Output) {
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "{} {args:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.label(),
            out.status,
        );
        let complaints: Vec<&str> = stdout.lines().chain(stderr.lines()).filter(|l| is_complaint(l)).collect();
        assert!(
            complaints.is_empty(),
            "{} {args:?} complained:\n{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.label(),
            complaints.join("\n"),
        );
    }
}

/// A line where duplicity reports a problem it went on after. Warnings that
/// an option is deprecated (0.8's `--short-filenames`) are not problems.
fn is_complaint(line: &str) -> bool {
    let l = line.trim_start();
    let lower = l.to_ascii_lowercase();
    let flagged = l.starts_with("Error '")
        || l.starts_with("Error:")
        || l.starts_with("ERROR")
        || lower.starts_with("warning")
        || l.starts_with("Traceback")
        || l.starts_with("Ignoring file")
        || lower.contains("discarding last backup set")
        || lower.contains("no corresponding backup files")
        || lower.contains("oldindex");
    flagged && !l.contains("pending deprecation")
}

/// Run `test` against one duplicity; a failure names the version.
pub fn with_duplicity(peer: Peer, test: impl FnOnce(&Duplicity)) {
    let Some(dup) = Duplicity::find(peer) else { return };
    eprintln!("testing against {}", dup.label());
    let started = std::time::Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&dup)));
    eprintln!("{}: done in {:.1} s", dup.label(), started.elapsed().as_secs_f64());
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("with {}: {message}", dup.label());
    }
}

/// One `#[test]` per duplicity version for each `name => closure taking &Duplicity;`.
macro_rules! against_both_duplicities {
    ($($name:ident => $test:expr;)+) => {
        /// Against Debian's duplicity (0.8.22).
        mod debian_0_8 {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    crate::duplicity::with_duplicity(crate::duplicity::Peer::Debian, $test)
                }
            )+
        }
        /// Against duplicity 3.x from PyPI.
        mod pypi_3 {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    crate::duplicity::with_duplicity(crate::duplicity::Peer::Pypi3, $test)
                }
            )+
        }
    };
}
pub(crate) use against_both_duplicities;

// ---------------------------------------------------------------------------
// Times and listings, to compare duplicity's output with ours.

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn epoch(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
}

/// `Sun Nov 22 18:51:25 2026` (Python's `time.asctime`, in UTC here).
pub fn parse_asctime(s: &str) -> Option<i64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() != 5 || !DAYS.contains(&f[0]) {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == f[1])? as i64 + 1;
    let hms: Vec<i64> = f[3].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    Some(epoch(f[4].parse().ok()?, month, f[2].parse().ok()?, hms[0], hms[1], hms[2]))
}

/// `2026-11-22T18:51:25Z` (our `list --json`) or `20261122T185125Z` (duplicity's names).
pub fn parse_utc(s: &str) -> Option<i64> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 14 || !s.ends_with('Z') {
        return None;
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<i64>().ok();
    Some(epoch(n(0, 4)?, n(4, 6)?, n(6, 8)?, n(8, 10)?, n(10, 12)?, n(12, 14)?))
}

/// `duplicity list-current-files` (run with `TZ=UTC`): each entry is
/// `<asctime> <raw path bytes>`; a name with a newline continues on the next
/// line. Returns (path, mtime), root as `.`, sorted.
pub fn parse_duplicity_list(stdout: &[u8]) -> Vec<(Vec<u8>, i64)> {
    let mut out: Vec<(Vec<u8>, i64)> = Vec::new();
    for line in stdout.split(|&b| b == b'\n') {
        let entry = (line.len() > 25 && line[24] == b' ')
            .then(|| std::str::from_utf8(&line[..24]).ok().and_then(parse_asctime))
            .flatten();
        match (entry, out.last_mut()) {
            (Some(t), _) => out.push((line[25..].to_vec(), t)),
            (None, Some(last)) if !line.is_empty() => {
                last.0.push(b'\n');
                last.0.extend_from_slice(line);
            }
            _ => {}
        }
    }
    out.sort();
    out
}

/// The tree at `root` as duplicity lists it: (relative path, lstat mtime), sorted.
pub fn tree_listing(root: &Path) -> Vec<(Vec<u8>, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<(Vec<u8>, i64)> = walk(root)
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().as_os_str().as_bytes();
            let rel = if rel.is_empty() { b".".to_vec() } else { rel.to_vec() };
            (rel, std::fs::symlink_metadata(p).unwrap().mtime())
        })
        .collect();
    out.sort();
    out
}

/// Our `list --json [--time T]`: (path, mtime), sorted. Paths in JSON are
/// lossy for names that are not UTF-8.
pub fn our_listing(env: &Env, pipeline: &Path, enc: Encryption, time: Option<i64>) -> Vec<(String, i64)> {
    let time = time.map(|t| t.to_string());
    let mut args = vec!["list", pipeline.to_str().unwrap(), "--source", "docs", "--json"];
    if let Some(t) = &time {
        args.extend(["--time", t]);
    }
    let run = env.run(&args, enc.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let entries: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let mut out: Vec<(String, i64)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mtime = e["mtime"].as_str().and_then(parse_utc);
            (e["path"].as_str().unwrap().to_string(), mtime.unwrap_or_else(|| panic!("mtime of {e}")))
        })
        .collect();
    out.sort();
    out
}

/// Paths as our JSON shows them (lossy UTF-8), for comparing with ours.
pub fn lossy(listing: &[(Vec<u8>, i64)]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> =
        listing.iter().map(|(p, t)| (String::from_utf8_lossy(p).into_owned(), *t)).collect();
    out.sort();
    out
}

/// The names in a directory, sorted.
pub fn objects(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Restore with our binary (whole source, at `time` or the newest).
pub fn our_restore(env: &Env, pipeline: &Path, enc: Encryption, time: Option<i64>, to: &str) -> PathBuf {
    let dest = env.path(to);
    let time = time.map(|t| t.to_string());
    let mut args = vec!["restore", pipeline.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()];
    if let Some(t) = &time {
        args.extend(["--time", t]);
    }
    let run = env.run(&args, enc.env());
    assert_eq!(run.code, 0, "our restore at {time:?}: {}", run.all());
    dest
}

// ---------------------------------------------------------------------------

const PIPELINE: &str = r#"
[pipeline]
name = "interop"
cache_dir = "{dir}/our-cache"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
volsize_mb = 1
"#;

/// The pipeline above with `enc`'s settings.
pub fn pipeline(env: &Env, name: &str, enc: Encryption) -> PathBuf {
    env.pipeline(name, &format!("{PIPELINE}{}\n", enc.sink_settings()))
}

against_both_duplicities! {
    duplicity_restores_lists_and_verifies_our_full_backup => |d| restores_lists_and_verifies_our_full(d, Encryption::None);
    we_restore_a_plain_full_duplicity_wrote => we_restore_a_plain_full;
    we_restore_duplicitys_gzip_full_and_append_to_its_chain => we_restore_a_gzip_full_and_append;
}

fn restores_lists_and_verifies_our_full(dup: &Duplicity, enc: Encryption) {
    let env = Env::new();
    let root = odd_tree(&env);
    let p = pipeline(&env, "p.toml", enc);
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], enc.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(report["jobs"][0]["set"]["volumes"].as_u64().unwrap() >= 3, "big.bin spans volumes: {}", run.stdout);

    let url = format!("file://{}", env.path("backup/docs").display());
    let restored = env.path("restored-by-duplicity");
    dup.run(&env, enc, &["restore", &url, restored.to_str().unwrap()]);
    assert_same_tree(&root, &restored);

    let listed = dup.run(&env, enc, &["list-current-files", &url]);
    assert_eq!(
        parse_duplicity_list(&listed.stdout),
        tree_listing(&root),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );

    let status = dup.run(&env, enc, &["collection-status", &url]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("Number of contained backup sets: 1"), "{status}");
    assert!(status.contains("No orphaned or incomplete backup sets found."), "{status}");

    let verify = dup.run(&env, enc, &["verify", "--compare-data", &url, root.to_str().unwrap()]);
    let verify = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.contains(&format!("{} file", walk(&root).len())), "{verify}");

    // Our own restore, status and verify of the same archive.
    let ours = our_restore(&env, &p, enc, None, "restored-by-us");
    assert_same_tree(&root, &ours);
    let v = env.run(&["verify", p.to_str().unwrap()], enc.env());
    assert_eq!(v.code, 0, "{}", v.all());
}

fn we_restore_a_plain_full(dup: &Duplicity) {
    let env = Env::new();
    let root = odd_tree(&env);
    let url = format!("file://{}", env.path("backup/docs").display());
    dup.run(&env, Encryption::None, &["full", "--no-compression", "--volsize", "1", root.to_str().unwrap(), &url]);
    let names = objects(&env.path("backup/docs"));
    assert!(names.iter().filter(|n| n.ends_with(".difftar")).count() >= 3, "expected several plain volumes: {names:?}");

    let p = pipeline(&env, "p.toml", Encryption::None);
    let out = our_restore(&env, &p, Encryption::None, None, "restored");
    assert_same_tree(&root, &out);
    assert_eq!(lossy(&tree_listing(&root)), our_listing(&env, &p, Encryption::None, None));
}

fn we_restore_a_gzip_full_and_append(dup: &Duplicity) {
    let env = Env::new();
    let root = odd_tree(&env);
    let url = format!("file://{}", env.path("backup/docs").display());
    dup.run(&env, Encryption::None, &["full", "--volsize", "1", root.to_str().unwrap(), &url]);
    let names = objects(&env.path("backup/docs"));
    assert!(names.iter().any(|n| n.ends_with(".difftar.gz")), "{names:?}");

    let p = pipeline(&env, "p.toml", Encryption::None);
    let out = our_restore(&env, &p, Encryption::None, None, "restored");
    assert_same_tree(&root, &out);

    // Our own sets are gzip too, with manifests left plain, as duplicity writes them.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let ours = objects(&env.path("backup/docs"));
    // Nothing changed, so our run appends an (empty) incremental to
    // duplicity's chain, using duplicity's signatures.
    assert!(ours.iter().any(|n| n.starts_with("duplicity-inc.") && n.ends_with(".vol1.difftar.gz")), "{ours:?}");
    assert!(ours.iter().all(|n| !n.contains("manifest.gz")), "{ours:?}");
    let status = dup.run(&env, Encryption::None, &["collection-status", &url]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("Number of contained backup sets: 2"), "{status}");
    assert!(status.contains("No orphaned or incomplete backup sets found."), "{status}");
    let again = env.path("restored-by-duplicity");
    dup.run(&env, Encryption::None, &["restore", &url, again.to_str().unwrap()]);
    assert_same_tree(&root, &again);
}
