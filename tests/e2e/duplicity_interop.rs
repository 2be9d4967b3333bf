//! The interop matrix (issue outcome 8), per duplicity version and per
//! [`Encryption`] (only `None` for now; an encrypted variant is one more line
//! per test in the `against_both_duplicities!` list below):
//!
//! - our sink writes a full and two incrementals (contents changed, a file
//!   larger than a volume, files and a directory deleted, files added, odd
//!   names); for every point in time duplicity restores it byte-exact (and
//!   one file and one directory of it with `-r`),
//!   `list-current-files` agrees with our `list`, `collection-status` sees one
//!   chain of three sets, `verify --compare-data` passes (and fails on a
//!   changed byte);
//! - duplicity appends an incremental to our chain, we restore every point in
//!   time, then we append again and duplicity restores that;
//! - duplicity writes a full and two incrementals (3.x with `--jsonstat`
//!   files), we restore and list every point in time, then append to it;
//! - short names (`df.<base36>.1.dt.z`) and old W3C times
//!   (`2026-11-22T11:52:10-07:00`): duplicity 0.8.22 still writes them
//!   (`--short-filenames`, `--old-filenames`); 3.x only reads them (the
//!   options are gone). We read both as 0.8.22 writes them and append to
//!   them, and our own chain renamed to either form is read by us and by
//!   both duplicity versions.

use super::{
    Duplicity, Encryption, Peer, against_both_duplicities, lossy, objects, our_listing, our_restore, parse_asctime,
    parse_duplicity_list, parse_utc, tree_listing, with_duplicity,
};
use crate::harness::Env;
use crate::roundtrip::{assert_same_tree, odd_tree, walk};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

against_both_duplicities! {
    duplicity_reads_our_chain_at_every_time => |d| duplicity_reads_our_chain(d, Encryption::None);
    duplicity_appends_to_our_chain_and_we_restore_every_time => |d| duplicity_appends_to_our_chain(d, Encryption::None);
    we_restore_every_time_of_a_chain_duplicity_wrote => |d| we_read_duplicitys_chain(d, Encryption::None);
    short_and_old_names_of_our_chain_are_read_by_both => |d| renamed_chains(d, Encryption::None);
    duplicity_reads_our_encrypted_chain_at_every_time => |d| duplicity_reads_our_chain(d, Encryption::Symmetric);
    duplicity_appends_to_our_encrypted_chain_and_we_restore_every_time => |d| duplicity_appends_to_our_chain(d, Encryption::Symmetric);
    we_restore_every_time_of_an_encrypted_chain_duplicity_wrote => |d| we_read_duplicitys_chain(d, Encryption::Symmetric);
}

/// duplicity 0.8.22 writes short and old-style names itself; 3.x cannot
/// (`--short-filenames` and `--old-filenames` were removed), so this one runs
/// against Debian's duplicity only.
#[test]
fn short_and_old_names_written_by_duplicity_0_8_are_read_by_us() {
    with_duplicity(Peer::Debian, |d| names_written_by_duplicity(d, Encryption::None));
}

// ---------------------------------------------------------------------------
// The pipeline, our runs, and the data between runs.

const PIPELINE: &str = r#"
[pipeline]
name = "interop"
cache_dir = "{dir}/{cache}"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/{target}"
volsize_mb = 1
"#;

/// A pipeline backing `data` up to `<target>/docs`, with its own cache dir.
fn pipeline_at(env: &Env, target: &str, cache: &str, enc: Encryption) -> PathBuf {
    let text = PIPELINE.replace("{target}", target).replace("{cache}", cache);
    env.pipeline(&format!("{target}-{cache}.toml"), &format!("{text}{}\n", enc.sink_settings()))
}

fn url(env: &Env, target: &str) -> String {
    format!("file://{}", env.path(target).join("docs").display())
}

/// A run of ours; set times are whole seconds and must increase, so each run
/// but the first waits a little over a second. Returns the job's report.
fn our_backup(env: &Env, pipeline: &Path, enc: Encryption) -> serde_json::Value {
    let run = env.run(&["run", pipeline.to_str().unwrap(), "--json"], enc.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let job = report["jobs"][0].clone();
    assert_eq!(job["ok"], true, "{}", run.all());
    job
}

fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A copy of the tree as it is now (times, modes, links and fifos kept).
fn snapshot(env: &Env, root: &Path, name: &str) -> PathBuf {
    let to = env.path(name);
    assert!(Command::new("cp").arg("-a").arg(root).arg(&to).status().unwrap().success());
    to
}

/// Bytes that do not compress, so sizes on the target are real.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn odd(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

/// Before the first incremental: 200 KB of big.bin (3 MB, three volumes)
/// rewritten across the first volume boundary (a delta of several 64 KiB
/// chunks), appends, a chmod, a retargeted symlink, content changes under
/// odd names, a file and a directory with content deleted, files added
/// (one with a name that is not UTF-8, in a new directory).
fn change_once(root: &Path) {
    let mut big = std::fs::read(root.join("big.bin")).unwrap();
    big[950_000..1_150_000].copy_from_slice(&noise(200_000, 1));
    std::fs::write(root.join("big.bin"), &big).unwrap();
    let mut plain = std::fs::read(root.join("plain.txt")).unwrap();
    plain.extend_from_slice(b"appended\n");
    std::fs::write(root.join("plain.txt"), plain).unwrap();
    std::fs::write(root.join("ünï©ode"), "utf-8, changed").unwrap();
    std::fs::write(root.join(odd(b"latin1-\xe9t\xe9")), "still not utf-8, changed").unwrap();
    std::fs::set_permissions(root.join("with space.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(root.join("link-to-plain")).unwrap();
    symlink("sub", root.join("link-to-plain")).unwrap();
    std::fs::remove_file(root.join("new\nline")).unwrap();
    std::fs::remove_dir_all(root.join("private")).unwrap();
    std::fs::write(root.join("added file.txt"), "added").unwrap();
    std::fs::create_dir(root.join("added dir")).unwrap();
    std::fs::write(root.join("added dir").join(odd(b"odd-\xff\xfe name")), "raw bytes").unwrap();
    std::fs::write(root.join("added dir/tab\there"), "tab").unwrap();
}

/// Before the second incremental: big.bin shrinks and then grows by 1.2 MB
/// of fresh data (a delta larger than a volume), the non-UTF-8 file and the
/// directory with the long names go, a deleted name comes back, a file
/// becomes a directory, an empty file fills, a file added last time goes.
fn change_twice(root: &Path) {
    let mut big = std::fs::read(root.join("big.bin")).unwrap();
    big.truncate(2_600_000);
    big.extend_from_slice(&noise(1_200_000, 2));
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::remove_file(root.join(odd(b"latin1-\xe9t\xe9"))).unwrap();
    let long = "a-name-longer-than-one-hundred-bytes-".repeat(4);
    std::fs::remove_dir_all(root.join(&long)).unwrap();
    std::fs::write(root.join("new\nline"), "back, with other content").unwrap();
    std::fs::remove_file(root.join("sub/deeper")).unwrap();
    std::fs::create_dir(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("sub/deeper/inside"), "now a directory").unwrap();
    std::fs::write(root.join("empty-file"), "not empty any more").unwrap();
    std::fs::remove_file(root.join("added file.txt")).unwrap();
    std::fs::write(root.join("added dir").join(format!("{}-file", "long".repeat(30))), "long name").unwrap();
}

/// Before a third incremental.
fn change_thrice(root: &Path, tag: &str) {
    let mut big = std::fs::read(root.join("big.bin")).unwrap();
    big[10] ^= 0xff;
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("plain.txt"), format!("replaced {tag}\n")).unwrap();
    std::fs::write(root.join(format!("{tag} added.txt")), tag).unwrap();
    let _ = std::fs::remove_file(root.join("setuid"));
    std::fs::write(root.join("ünï©ode"), format!("utf-8, {tag}")).unwrap();
}

/// Our full and two incrementals; the set times and a snapshot of the data
/// at each.
fn our_three_sets(env: &Env, root: &Path, pipeline: &Path, enc: Encryption) -> Vec<(i64, PathBuf, serde_json::Value)> {
    let mut sets = Vec::new();
    for i in 0..3 {
        match i {
            0 => {}
            1 => change_once(root),
            _ => change_twice(root),
        }
        if i > 0 {
            pause();
        }
        let job = our_backup(env, pipeline, enc);
        assert_eq!(job["set"]["kind"], if i == 0 { "full" } else { "incremental" }, "{job}");
        let time = job["set"]["time"].as_i64().unwrap_or_else(|| panic!("no set time: {job}"));
        sets.push((time, snapshot(env, root, &format!("s{i}")), job["set"].clone()));
    }
    assert!(sets[0].2["volumes"].as_u64().unwrap() >= 3, "big.bin spans volumes: {}", sets[0].2);
    assert!(sets[2].2["volumes"].as_u64().unwrap() >= 2, "1.2 MB of new data spans volumes: {}", sets[2].2);
    sets
}

/// The end times of the sets on the target, from long manifest names, sorted.
fn set_times(dir: &Path) -> Vec<i64> {
    let mut times: Vec<i64> = objects(dir)
        .iter()
        .filter_map(|n| {
            let t: Vec<&str> = n.split('.').collect();
            match t.as_slice() {
                ["duplicity-full", time, "manifest", ..] => parse_utc(time),
                ["duplicity-inc", _, "to", time, "manifest", ..] => parse_utc(time),
                _ => None,
            }
        })
        .collect();
    times.sort();
    times
}

/// `collection-status`: one chain, these set kinds, times and volume counts,
/// nothing orphaned or incomplete.
fn assert_one_chain(status: &[u8], expected: &[(&str, i64, Option<u64>)]) {
    let text = String::from_utf8_lossy(status);
    assert!(text.contains("Found 0 secondary backup chain"), "{text}");
    assert!(text.contains("Found primary backup chain with matching signature chain:"), "{text}");
    assert!(text.contains(&format!("Number of contained backup sets: {}\n", expected.len())), "{text}");
    assert!(text.contains("No orphaned or incomplete backup sets found."), "{text}");
    let sets: Vec<(String, i64, u64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 7 && (f[0] == "Full" || f[0] == "Incremental"))
                .then(|| Some((f[0].to_string(), parse_asctime(&f[1..6].join(" "))?, f[6].parse().ok()?)))
                .flatten()
        })
        .collect();
    assert_eq!(sets.len(), expected.len(), "{text}");
    for ((kind, time, volumes), (want_kind, want_time, want_volumes)) in sets.iter().zip(expected) {
        assert_eq!((kind.as_str(), *time), (*want_kind, *want_time), "{text}");
        if let Some(v) = want_volumes {
            assert_eq!(volumes, v, "volumes of the set at {time}: {text}");
        }
    }
}

// ---------------------------------------------------------------------------

fn duplicity_reads_our_chain(dup: &Duplicity, enc: Encryption) {
    let env = Env::new();
    let root = odd_tree(&env);
    let p = pipeline_at(&env, "backup", "our-cache", enc);
    let sets = our_three_sets(&env, &root, &p, enc);
    let url = url(&env, "backup");

    let status = dup.run(&env, enc, &["collection-status", &url]);
    let expected: Vec<(&str, i64, Option<u64>)> = sets
        .iter()
        .enumerate()
        .map(|(i, (t, _, set))| (if i == 0 { "Full" } else { "Incremental" }, *t, set["volumes"].as_u64()))
        .collect();
    assert_one_chain(&status.stdout, &expected);

    for (i, (time, snap, _)) in sets.iter().enumerate() {
        let t = time.to_string();
        let dest = env.path(&format!("restored-{i}"));
        dup.run(&env, enc, &["restore", "-t", &t, &url, dest.to_str().unwrap()]);
        assert_same_tree(snap, &dest);

        // One path: duplicity picks the volumes by our manifests' ranges.
        let one = env.path(&format!("big-{i}"));
        dup.run(&env, enc, &["restore", "-t", &t, "-r", "big.bin", &url, one.to_str().unwrap()]);
        let want = std::fs::read(snap.join("big.bin")).unwrap();
        assert!(std::fs::read(&one).unwrap() == want, "-r big.bin -t {t} (set {i}) differs");
        let one = env.path(&format!("sub-{i}"));
        dup.run(&env, enc, &["restore", "-t", &t, "-r", "sub", &url, one.to_str().unwrap()]);
        assert_same_tree(&snap.join("sub"), &one);

        let listed = dup.run(&env, enc, &["list-current-files", "-t", &t, &url]);
        let theirs = parse_duplicity_list(&listed.stdout);
        assert_eq!(theirs, tree_listing(snap), "list-current-files -t {t} (set {i}) against the data then");
        assert_eq!(our_listing(&env, &p, enc, Some(*time)), lossy(&theirs), "our list --time {t} against theirs");
    }

    let verify = dup.run(&env, enc, &["verify", "--compare-data", &url, root.to_str().unwrap()]);
    let verify = String::from_utf8_lossy(&verify.stdout);
    let entries = walk(&root).len();
    assert!(verify.contains(&format!("Verify complete: {entries} file")), "{entries} entries: {verify}");
    assert!(verify.contains(" 0 difference"), "{verify}");

    // It does compare data: one byte changed, same size and mtime, is found.
    let file = root.join("sub/deeper/inside");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, "now a Directory").unwrap();
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    let out = dup.output(&env, enc, None, &["verify", "--compare-data", &url, root.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains(" 1 difference"), "a changed byte went unnoticed: {text}");
}

fn duplicity_appends_to_our_chain(dup: &Duplicity, enc: Encryption) {
    let env = Env::new();
    let root = odd_tree(&env);
    let p = pipeline_at(&env, "backup", "our-cache", enc);
    let mut sets: Vec<(i64, PathBuf)> =
        our_three_sets(&env, &root, &p, enc).into_iter().map(|(t, s, _)| (t, s)).collect();
    let url = url(&env, "backup");
    let dir = env.path("backup/docs");

    change_thrice(&root, "by duplicity");
    pause();
    dup.run(&env, enc, &["incremental", "--volsize", "1", root.to_str().unwrap(), &url]);
    let times = set_times(&dir);
    assert_eq!(times.len(), 4, "{:?}", objects(&dir));
    let theirs = times[3];
    let from = utc_name(sets[2].0);
    let to = utc_name(theirs);
    let manifest = format!("duplicity-inc.{from}.to.{to}.manifest{}", enc.manifest_suffix());
    assert!(objects(&dir).contains(&manifest), "duplicity's set does not continue ours: {:?}", objects(&dir));
    sets.push((theirs, snapshot(&env, &root, "s3")));

    // We restore every point in time, theirs and ours, and list the newest.
    for (i, (time, snap)) in sets.iter().enumerate() {
        let dest = our_restore(&env, &p, enc, Some(*time), &format!("ours-{i}"));
        assert_same_tree(snap, &dest);
    }
    let newest = our_restore(&env, &p, enc, None, "ours-newest");
    assert_same_tree(&sets[3].1, &newest);
    assert_eq!(our_listing(&env, &p, enc, None), lossy(&tree_listing(&sets[3].1)));

    // And we go on from duplicity's set (its signatures); duplicity restores ours.
    change_thrice(&root, "by us again");
    pause();
    let job = our_backup(&env, &p, enc);
    assert_eq!(job["set"]["kind"], "incremental", "{job}");
    let status = dup.run(&env, enc, &["collection-status", &url]);
    let mut expected: Vec<(&str, i64, Option<u64>)> =
        sets.iter().enumerate().map(|(i, (t, _))| (if i == 0 { "Full" } else { "Incremental" }, *t, None)).collect();
    expected.push(("Incremental", job["set"]["time"].as_i64().unwrap(), job["set"]["volumes"].as_u64()));
    assert_one_chain(&status.stdout, &expected);
    let dest = env.path("theirs-newest");
    dup.run(&env, enc, &["restore", &url, dest.to_str().unwrap()]);
    assert_same_tree(&root, &dest);
    let dest = env.path("theirs-own");
    dup.run(&env, enc, &["restore", "-t", &theirs.to_string(), &url, dest.to_str().unwrap()]);
    assert_same_tree(&sets[3].1, &dest);
}

fn we_read_duplicitys_chain(dup: &Duplicity, enc: Encryption) {
    let env = Env::new();
    let root = odd_tree(&env);
    let url = url(&env, "backup");
    let cache = env.path("their-cache");
    let mut snaps = Vec::new();
    for i in 0..3 {
        match i {
            0 => {}
            1 => change_once(&root),
            _ => change_twice(&root),
        }
        if i > 0 {
            pause();
        }
        let action = if i == 0 { "full" } else { "incremental" };
        let mut args = vec![action, "--volsize", "1", root.to_str().unwrap(), &url];
        // 3.x can add statistics files (`duplicity-full.T.jsonstat.gz`), which readers ignore.
        if dup.peer == Peer::Pypi3 {
            args.push("--jsonstat");
        }
        dup.run_in(&env, enc, &cache, &args, &[]);
        snaps.push(snapshot(&env, &root, &format!("s{i}")));
    }
    let dir = env.path("backup/docs");
    let names = objects(&dir);
    assert!(names.iter().any(|n| n.ends_with(&format!(".difftar{}", enc.suffix()))), "{names:?}");
    if dup.peer == Peer::Pypi3 {
        assert_eq!(names.iter().filter(|n| n.contains(".jsonstat")).count(), 3, "{names:?}");
    }
    let times = set_times(&dir);
    assert_eq!(times.len(), 3, "{names:?}");

    let p = pipeline_at(&env, "backup", "our-cache", enc);
    for (i, (time, snap)) in times.iter().zip(&snaps).enumerate() {
        let dest = our_restore(&env, &p, enc, Some(*time), &format!("ours-{i}"));
        assert_same_tree(snap, &dest);
        assert_eq!(our_listing(&env, &p, enc, Some(*time)), lossy(&tree_listing(snap)), "our list at set {i}");
    }
    let newest = our_restore(&env, &p, enc, None, "ours-newest");
    assert_same_tree(&snaps[2], &newest);

    // We go on from duplicity's signatures; duplicity restores our set.
    change_thrice(&root, "by us");
    pause();
    let job = our_backup(&env, &p, enc);
    assert_eq!(job["set"]["kind"], "incremental", "{job}");
    let status = dup.run(&env, enc, &["collection-status", &url]);
    let mut expected: Vec<(&str, i64, Option<u64>)> =
        times.iter().enumerate().map(|(i, t)| (if i == 0 { "Full" } else { "Incremental" }, *t, None)).collect();
    expected.push(("Incremental", job["set"]["time"].as_i64().unwrap(), job["set"]["volumes"].as_u64()));
    assert_one_chain(&status.stdout, &expected);
    let dest = env.path("theirs-newest");
    dup.run(&env, enc, &["restore", &url, dest.to_str().unwrap()]);
    assert_same_tree(&root, &dest);
}

// ---------------------------------------------------------------------------
// Short and old-style names.

/// `20261122T185125Z`, duplicity's time in names.
pub fn utc_name(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The old W3C form with a local offset, `2026-11-22T11:51:25-07:00`.
fn w3c_name(t: i64) -> String {
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(-7));
    jiff::Timestamp::from_second(t).unwrap().to_zoned(zone).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

/// A long name in the short form 0.8's `--short-filenames` wrote:
/// `df.<t36>.<vol36>.dt.z`, `df.<t36>.m`, `dfs.<t36>.st.z`,
/// `di.<t36>.<t36>.<vol36>.dt.z`, `di.<t36>.<t36>.m`, `dns.<t36>.<t36>.st.z`
/// (`.g` for `.gpg`).
fn short_name(long: &str) -> String {
    let t: Vec<&str> = long.split('.').collect();
    let time = |s: &str| base36(parse_utc(s).unwrap_or_else(|| panic!("time in {long}")) as u64);
    let vol = |s: &str| base36(s.strip_prefix("vol").unwrap().parse().unwrap());
    let (base, rest) = match t.as_slice() {
        ["duplicity-full", a, "manifest", rest @ ..] => (format!("df.{}.m", time(a)), rest),
        ["duplicity-full", a, v, "difftar", rest @ ..] => (format!("df.{}.{}.dt", time(a), vol(v)), rest),
        ["duplicity-full-signatures", a, "sigtar", rest @ ..] => (format!("dfs.{}.st", time(a)), rest),
        ["duplicity-inc", a, "to", b, "manifest", rest @ ..] => (format!("di.{}.{}.m", time(a), time(b)), rest),
        ["duplicity-inc", a, "to", b, v, "difftar", rest @ ..] => {
            (format!("di.{}.{}.{}.dt", time(a), time(b), vol(v)), rest)
        }
        ["duplicity-new-signatures", a, "to", b, "sigtar", rest @ ..] => {
            (format!("dns.{}.{}.st", time(a), time(b)), rest)
        }
        _ => panic!("not a duplicity name: {long}"),
    };
    match rest {
        [] => base,
        ["gz"] => format!("{base}.z"),
        ["gpg"] => format!("{base}.g"),
        _ => panic!("unexpected suffix: {long}"),
    }
}

/// A long name with its times in the old W3C form (`--old-filenames`).
fn old_name(long: &str) -> String {
    long.split('.')
        .map(|tok| parse_utc(tok).filter(|_| tok.len() == 16).map_or(tok.to_string(), w3c_name))
        .collect::<Vec<_>>()
        .join(".")
}

/// Copy `from/docs` to `to/docs`, renaming every file with `rename`.
fn renamed_copy(env: &Env, from: &str, to: &str, rename: fn(&str) -> String) -> Vec<String> {
    let (src, dst) = (env.path(from).join("docs"), env.path(to).join("docs"));
    std::fs::create_dir_all(&dst).unwrap();
    for name in objects(&src) {
        std::fs::copy(src.join(&name), dst.join(rename(&name))).unwrap();
    }
    objects(&dst)
}

fn renamed_chains(dup: &Duplicity, enc: Encryption) {
    let env = Env::new();
    let root = odd_tree(&env);
    let p = pipeline_at(&env, "backup", "our-cache", enc);
    let mut sets = Vec::new();
    for i in 0..2 {
        if i > 0 {
            change_once(&root);
            pause();
        }
        let job = our_backup(&env, &p, enc);
        sets.push((job["set"]["time"].as_i64().unwrap(), snapshot(&env, &root, &format!("s{i}"))));
    }

    // (target, renaming, what a renamed name looks like)
    type Variant = (&'static str, fn(&str) -> String, fn(&str) -> bool);
    let short = |n: &str| ["df.", "di.", "dfs.", "dns."].iter().any(|p| n.starts_with(p));
    let old = |n: &str| n.starts_with("duplicity-") && n.contains("-07:00.");
    let variants: [Variant; 2] = [("backup-short", short_name, short), ("backup-old", old_name, old)];
    for (target, rename, renamed) in variants {
        let names = renamed_copy(&env, "backup", target, rename);
        assert!(names.iter().all(|n| renamed(n)), "not all renamed: {names:?}");
        assert_eq!(names.len(), objects(&env.path("backup/docs")).len());
        // A fresh cache of ours: everything comes from the renamed target.
        let ours = pipeline_at(&env, target, &format!("{target}-cache"), enc);
        let url = url(&env, target);
        let status = dup.run(&env, enc, &["collection-status", &url]);
        assert_one_chain(&status.stdout, &[("Full", sets[0].0, None), ("Incremental", sets[1].0, None)]);
        for (i, (time, snap)) in sets.iter().enumerate() {
            let dest = our_restore(&env, &ours, enc, Some(*time), &format!("{target}-ours-{i}"));
            assert_same_tree(snap, &dest);
            let dest = env.path(&format!("{target}-theirs-{i}"));
            dup.run(&env, enc, &["restore", "-t", &time.to_string(), &url, dest.to_str().unwrap()]);
            assert_same_tree(snap, &dest);
        }
        let listed = dup.run(&env, enc, &["list-current-files", &url]);
        assert_eq!(our_listing(&env, &ours, enc, None), lossy(&parse_duplicity_list(&listed.stdout)), "{target}");
    }
}

fn names_written_by_duplicity(dup: &Duplicity, enc: Encryption) {
    // (option, TZ when writing, what every name starts with or contains)
    let variants = [("--short-filenames", "UTC", "d"), ("--old-filenames", "XXX+7", "-07:00.")];
    for (option, tz, marker) in variants {
        let env = Env::new();
        let root = odd_tree(&env);
        let url = url(&env, "backup");
        let cache = env.path("their-cache");
        let mut sets = Vec::new();
        for i in 0..2 {
            if i > 0 {
                change_once(&root);
                pause();
            }
            let action = if i == 0 { "full" } else { "incremental" };
            let args = [action, option, "--volsize", "1", root.to_str().unwrap(), &url];
            dup.run_in(&env, enc, &cache, &args, &[("TZ", tz)]);
            // The set's time lies before now; the next set's after it.
            sets.push((now(), snapshot(&env, &root, &format!("s{i}"))));
        }
        let names = objects(&env.path("backup/docs"));
        assert!(names.iter().all(|n| n.contains(marker)), "{option}: {names:?}");
        if option == "--short-filenames" {
            assert!(names.iter().all(|n| !n.starts_with("duplicity-")), "{names:?}");
            assert!(names.iter().any(|n| n.starts_with("di.") && n.ends_with(".dt.z")), "{names:?}");
        }

        let p = pipeline_at(&env, "backup", "our-cache", enc);
        for (i, (time, snap)) in sets.iter().enumerate() {
            let dest = our_restore(&env, &p, enc, Some(*time), &format!("ours-{i}"));
            assert_same_tree(snap, &dest);
        }
        let listed = dup.run(&env, enc, &["list-current-files", &url]);
        assert_eq!(our_listing(&env, &p, enc, None), lossy(&parse_duplicity_list(&listed.stdout)), "{option}");
        assert_eq!(lossy(&tree_listing(&sets[1].1)), our_listing(&env, &p, enc, None), "{option}");

        // We append to such a chain (with long names); duplicity sees one chain.
        change_thrice(&root, "by us");
        pause();
        let job = our_backup(&env, &p, enc);
        assert_eq!(job["set"]["kind"], "incremental", "{option}: {job}");
        let status = dup.run(&env, enc, &["collection-status", &url]);
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(status.contains("Number of contained backup sets: 3\n"), "{option}: {status}");
        assert!(status.contains("No orphaned or incomplete backup sets found."), "{option}: {status}");
        let dest = env.path("theirs-newest");
        dup.run(&env, enc, &["restore", &url, dest.to_str().unwrap()]);
        assert_same_tree(&root, &dest);
    }
}
