//! Chains: a full set and incrementals that record only changes (rsync
//! deltas, deletions), restored byte-exact at every point in time; new chains
//! on `--full` and `full_if_older_than`; retention by whole chains; the local
//! cache is disposable.

use crate::harness::{Env, Run};
use crate::roundtrip::{assert_same_tree, odd_tree};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

const PIPELINE: &str = r#"
[pipeline]
name = "chains"
cache_dir = "{dir}/cache"

[sources.docs]
plugin = "directory"
path = "{dir}/data"

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{dir}/backup"
encryption = "none"
volsize_mb = 1
"#;

/// A copy of the tree as it is now, to compare a restore with later.
pub fn snapshot(env: &Env, root: &Path, name: &str) -> PathBuf {
    let to = env.path(name);
    assert!(Command::new("cp").arg("-a").arg(root).arg(&to).status().unwrap().success());
    to
}

/// Run a backup; returns the JSON report of the one job.
pub fn backup(env: &Env, pipeline: &Path, extra: &[&str]) -> serde_json::Value {
    // Set times are whole seconds and must increase.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut args = vec!["run", pipeline.to_str().unwrap(), "--json"];
    args.extend(extra);
    let run = env.run(&args, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    report["jobs"][0].clone()
}

fn restore(env: &Env, pipeline: &Path, time: Option<i64>, to: &str) -> (Run, PathBuf) {
    let dest = env.path(to);
    let time = time.map(|t| t.to_string());
    let mut args = vec!["restore", pipeline.to_str().unwrap(), "--source", "docs", "--to", dest.to_str().unwrap()];
    if let Some(t) = &time {
        args.extend(["--time", t.as_str()]);
    }
    (env.run(&args, &[]), dest)
}

fn restored_equals(env: &Env, pipeline: &Path, time: Option<i64>, to: &str, expected: &Path) {
    let (run, dest) = restore(env, pipeline, time, to);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_same_tree(expected, &dest);
}

fn objects(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// First round of changes: one byte of a file larger than a volume, an
/// append, a chmod, a new file, a deleted directory with content, a symlink
/// retargeted, a file that becomes a directory.
pub fn change_once(root: &Path) {
    let big = root.join("big.bin");
    let mut data = std::fs::read(&big).unwrap();
    data[1_500_000] ^= 0xff;
    std::fs::write(&big, &data).unwrap();
    let mut plain = std::fs::read(root.join("plain.txt")).unwrap();
    plain.extend_from_slice(b"appended\n");
    std::fs::write(root.join("plain.txt"), plain).unwrap();
    std::fs::set_permissions(root.join("with space.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(root.join("added file.txt"), "added").unwrap();
    std::fs::remove_dir_all(root.join("private")).unwrap();
    std::fs::remove_file(root.join("link-to-plain")).unwrap();
    symlink("sub", root.join("link-to-plain")).unwrap();
    std::fs::remove_file(root.join("sub/deeper")).unwrap();
    std::fs::create_dir(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("sub/deeper/inside"), "now a directory").unwrap();
}

/// Second round: the directory becomes a file again, a file is deleted,
/// the big file grows.
pub fn change_twice(root: &Path) {
    std::fs::remove_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("sub/deeper"), "a file again").unwrap();
    std::fs::remove_file(root.join("empty-file")).unwrap();
    let mut big = std::fs::OpenOptions::new().append(true).open(root.join("big.bin")).unwrap();
    std::io::Write::write_all(&mut big, &vec![7u8; 200_000]).unwrap();
}

#[test]
fn incrementals_store_only_changes_and_restore_every_point_in_time() {
    let env = Env::new();
    let root = odd_tree(&env);
    let pipeline = env.pipeline("p.toml", PIPELINE);

    let full = backup(&env, &pipeline, &[]);
    assert_eq!(full["set"]["kind"], "full", "{full}");
    let s0 = snapshot(&env, &root, "s0");

    // Nothing changed: nothing is read, and the set records no change.
    let idle = backup(&env, &pipeline, &[]);
    assert_eq!(idle["set"]["kind"], "incremental", "{idle}");
    assert_eq!(idle["files_read"], 0, "an unchanged file was read: {idle}");
    assert_eq!(idle["set"]["changed_entries"], 0, "{idle}");

    change_once(&root);
    let inc1 = backup(&env, &pipeline, &[]);
    assert_eq!(inc1["set"]["kind"], "incremental", "{inc1}");
    // big.bin (3 MB) changed by one byte: a delta, not a copy.
    assert!(inc1["set"]["size"].as_u64().unwrap() < 200_000, "incremental is not small: {inc1}");
    let s1 = snapshot(&env, &root, "s1");

    change_twice(&root);
    let inc2 = backup(&env, &pipeline, &[]);
    let s2 = snapshot(&env, &root, "s2");

    restored_equals(&env, &pipeline, Some(full["set"]["time"].as_i64().unwrap()), "r0", &s0);
    restored_equals(&env, &pipeline, Some(idle["set"]["time"].as_i64().unwrap()), "r0b", &s0);
    restored_equals(&env, &pipeline, Some(inc1["set"]["time"].as_i64().unwrap()), "r1", &s1);
    restored_equals(&env, &pipeline, Some(inc2["set"]["time"].as_i64().unwrap()), "r2", &s2);
    restored_equals(&env, &pipeline, None, "r-now", &s2);

    // One path at a point in time.
    let t1 = inc1["set"]["time"].as_i64().unwrap().to_string();
    let dest = env.path("one");
    let run = env.run(
        &["restore", pipeline.to_str().unwrap(), "--source", "docs", "--time", &t1, "--path", "sub", "--to"]
            .into_iter()
            .chain([dest.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_same_tree(&s1.join("sub"), &dest);

    let status = env.run(&["status", pipeline.to_str().unwrap(), "--json"], &[]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status[0]["chains"][0]["sets"].as_array().unwrap().len(), 4, "{status}");

    let verify = env.run(&["verify", pipeline.to_str().unwrap()], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());
}

#[test]
fn new_chains_on_request_and_by_age_and_retention_keeps_whole_chains() {
    let env = Env::new();
    let root = odd_tree(&env);
    let text = PIPELINE.replace("volsize_mb = 1", "volsize_mb = 1\nkeep_full = 2\nfull_if_older_than = \"3s\"");
    let pipeline = env.pipeline("p.toml", &text);
    assert_eq!(backup(&env, &pipeline, &[])["set"]["kind"], "full");
    change_once(&root);
    assert_eq!(backup(&env, &pipeline, &[])["set"]["kind"], "incremental");
    assert_eq!(backup(&env, &pipeline, &["--full"])["set"]["kind"], "full");
    let s = snapshot(&env, &root, "s");
    // The chain started by --full is now more than 3 s old.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let by_age = backup(&env, &pipeline, &[]);
    assert_eq!(by_age["set"]["kind"], "full", "{by_age}");
    // keep_full = 2: the first chain (full + incremental) went as a whole.
    let pruned = by_age["pruned"].as_array().unwrap();
    assert!(pruned.iter().any(|p| p.as_str().unwrap().contains("duplicity-inc.")), "{by_age}");
    let left = objects(&env.path("backup/docs"));
    assert_eq!(left.iter().filter(|n| n.contains(".manifest")).count(), 2, "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with("duplicity-inc.")), "{left:?}");
    restored_equals(&env, &pipeline, None, "r", &s);
}

#[test]
fn keep_within_removes_old_chains_never_the_newest_and_prune_dry_run_lists_them() {
    let env = Env::new();
    let root = odd_tree(&env);
    let pipeline = env.pipeline("p.toml", &PIPELINE.replace("volsize_mb = 1", "volsize_mb = 1\nkeep_within = \"4s\""));
    let ps = pipeline.to_str().unwrap();
    backup(&env, &pipeline, &[]);
    change_once(&root);
    backup(&env, &pipeline, &[]);
    let first_chain = objects(&env.path("backup/docs"));
    std::thread::sleep(std::time::Duration::from_millis(4500));
    // The chain's newest set is older than 4 s, but it is the only chain: it stays.
    let only = env.run(&["prune", ps, "--json"], &[]);
    assert_eq!(only.code, 0, "{}", only.all());
    assert!(only.stdout.contains("\"removed\": []"), "{}", only.all());
    assert_eq!(objects(&env.path("backup/docs")), first_chain);
    // A new chain: the run's own retention removes the old one whole.
    let newest = backup(&env, &pipeline, &["--full"]);
    let pruned: Vec<&str> = newest["pruned"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(
        pruned.iter().any(|p| p.starts_with("duplicity-inc."))
            && pruned.iter().any(|p| p.starts_with("duplicity-full.")),
        "{newest}"
    );
    let left = objects(&env.path("backup/docs"));
    assert!(first_chain.iter().filter(|n| n.starts_with("duplicity-")).all(|n| !left.contains(n)), "{left:?}");

    // `prune --dry-run` lists exactly what `prune` then removes.
    std::thread::sleep(std::time::Duration::from_secs(1));
    backup(&env, &pipeline, &["--full"]);
    let text = std::fs::read_to_string(&pipeline).unwrap().replace("keep_within = \"4s\"", "keep_within = \"1s\"");
    std::fs::write(&pipeline, text).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let before = objects(&env.path("backup/docs"));
    let dry = env.run(&["prune", ps, "--dry-run", "--json"], &[]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert_eq!(objects(&env.path("backup/docs")), before, "a dry run removes nothing");
    let would: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    let would = would[0]["removed"].as_array().unwrap().clone();
    assert!(!would.is_empty(), "{dry:?}", dry = dry.all());
    let real = env.run(&["prune", ps, "--json"], &[]);
    assert_eq!(real.code, 0, "{}", real.all());
    let removed: serde_json::Value = serde_json::from_str(&real.stdout).unwrap();
    assert_eq!(removed[0]["removed"].as_array().unwrap(), &would, "{}", real.all());
    let after = objects(&env.path("backup/docs"));
    for name in &would {
        assert!(!after.contains(&name.as_str().unwrap().to_string()), "{name} is still there");
    }
    assert!(after.iter().any(|n| n.starts_with("duplicity-full.")), "the newest chain stays: {after:?}");
    restored_equals(&env, &pipeline, None, "r", &root);
    // Stock duplicity still reads the target.
    if let Some(dup) = crate::duplicity::Duplicity::find(crate::duplicity::Peer::Debian) {
        let url = format!("file://{}", env.path("backup/docs").display());
        let out = dup.run(&env, crate::duplicity::Encryption::None, &["collection-status", &url]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("Found 0 secondary backup chains") && said.contains("Found primary backup chain"),
            "{said}"
        );
    }
}

#[test]
fn the_cache_is_disposable_and_the_target_is_the_truth() {
    let env = Env::new();
    let root = odd_tree(&env);
    let pipeline = env.pipeline("p.toml", PIPELINE);
    backup(&env, &pipeline, &[]);
    let cache = std::fs::read_dir(env.path("cache")).unwrap().next().unwrap().unwrap().path().join("docs");
    let cached = objects(&cache);
    assert!(cached.iter().any(|n| n.ends_with(".manifest")), "{cached:?}");
    assert!(cached.iter().any(|n| n.ends_with(".sigtar.gz")), "{cached:?}");
    // Plaintext manifests and signatures (every path, owner and size of the
    // archive): the user's alone.
    let private = |dir: &Path| {
        for path in crate::roundtrip::walk(dir) {
            let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if path.is_dir() { 0o700 } else { 0o600 }, "{}", path.display());
        }
    };
    private(&env.path("cache"));
    private(&env.path("backup/docs"));

    // Without the cache the next incremental reads the signatures from the
    // target and still reads only what changed.
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    change_once(&root);
    let inc = backup(&env, &pipeline, &[]);
    assert_eq!(inc["set"]["kind"], "incremental", "{inc}");
    assert!(inc["files_read"].as_u64().unwrap() <= 5, "{inc}");
    let s1 = snapshot(&env, &root, "s1");

    // Cached metadata of a set the target no longer has is dropped.
    let stale = cache.join("duplicity-full.20200101T000000Z.manifest");
    std::fs::write(&stale, "Volume 1:\n").unwrap();
    // A cache an older version left world-readable is closed.
    let sink_cache = cache.parent().unwrap();
    std::fs::set_permissions(sink_cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    backup(&env, &pipeline, &[]);
    assert!(!stale.exists(), "stale cache entry survived: {:?}", objects(&cache));
    assert_eq!(std::fs::metadata(sink_cache).unwrap().permissions().mode() & 0o777, 0o700);
    restored_equals(&env, &pipeline, None, "r", &s1);
}

#[test]
fn verify_compare_finds_every_difference_with_the_live_source() {
    let env = Env::new();
    let root = odd_tree(&env);
    let pipeline = env.pipeline("p.toml", PIPELINE);
    backup(&env, &pipeline, &[]);
    change_once(&root);
    backup(&env, &pipeline, &[]);
    let same = env.run(&["verify", pipeline.to_str().unwrap(), "--compare"], &[]);
    assert_eq!(same.code, 0, "{}", same.all());
    assert!(same.stdout.contains("equals the live source"), "{}", same.all());

    // One byte changed with size and mtime kept: only the content can tell.
    let big = root.join("big.bin");
    let mtime = std::fs::metadata(&big).unwrap().modified().unwrap();
    let mut data = std::fs::read(&big).unwrap();
    data[2_999_000] ^= 1;
    std::fs::write(&big, &data).unwrap();
    std::fs::File::options().write(true).open(&big).unwrap().set_modified(mtime).unwrap();
    std::fs::set_permissions(root.join("plain.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(root.join("added file.txt")).unwrap();
    std::fs::write(root.join("newer.txt"), "new").unwrap();
    let diff = env.run(&["verify", pipeline.to_str().unwrap(), "--compare"], &[]);
    assert_eq!(diff.code, 1, "{}", diff.all());
    for expected in [
        "big.bin: the content differs",
        "plain.txt: mode 600 in the source, 644 in the backup",
        "added file.txt: in the backup, no longer in the source",
        "newer.txt: new in the source, not in the backup",
        "4 difference(s)",
    ] {
        assert!(diff.stdout.contains(expected), "missing {expected:?} in {}", diff.all());
    }
}

#[test]
fn a_file_larger_than_the_plugins_memory_backs_up_and_restores_incrementally() {
    // 48 MiB of plugin memory, a 160 MB file: nothing may hold a whole file.
    let env = Env::new();
    let root = env.path("data");
    std::fs::create_dir(&root).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..160_000_000u64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    std::fs::write(root.join("huge.img"), &big).unwrap();
    let text = PIPELINE
        .replace("path = \"{dir}/data\"", "path = \"{dir}/data\"\nlimits = { memory_mb = 48 }")
        .replace("volsize_mb = 1", "volsize_mb = 50\nlimits = { memory_mb = 48 }");
    let pipeline = env.pipeline("p.toml", &text);
    let full = backup(&env, &pipeline, &[]);
    assert_eq!(full["set"]["kind"], "full", "{full}");
    let s0 = snapshot(&env, &root, "s0");

    // A change in the middle: the incremental is a delta against the
    // signature, and the restore patches the file through a scratch file.
    let mut changed = big;
    changed[80_000_000..80_001_000].fill(0);
    std::fs::write(root.join("huge.img"), &changed).unwrap();
    drop(changed);
    let inc = backup(&env, &pipeline, &[]);
    assert_eq!(inc["set"]["kind"], "incremental", "{inc}");
    assert!(inc["set"]["size"].as_u64().unwrap() < 2_000_000, "not a delta: {inc}");
    let s1 = snapshot(&env, &root, "s1");

    restored_equals(&env, &pipeline, Some(full["set"]["time"].as_i64().unwrap()), "r0", &s0);
    restored_equals(&env, &pipeline, None, "r1", &s1);
}

/// An hourly chain of a month: 700 sets. Each run merges every set's
/// signatures and a restore, list or verify reads every set at once, so
/// memory grew by a buffer per set until a chain of about 500 sets ran out
/// of the plugin's default 512 MiB. The chain is made from real sets: a
/// full and an incremental that adds a file, the incremental copied under
/// the names of 699 more (adding the same file again restores the same
/// tree), all dated in the past. Then, within the default limits, the next
/// run appends set 702, and restore, list, status and verify read all.
#[test]
fn a_chain_of_700_sets_backs_up_restores_lists_and_verifies() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "the first file\n").unwrap();
    std::fs::write(env.path("pass"), "chain passphrase").unwrap();
    let p = env.pipeline(
        "p.toml",
        &PIPELINE
            .replace("encryption = \"none\"", "encryption = \"symmetric\"\npassphrase = { file = \"{dir}/pass\" }"),
    );
    backup(&env, &p, &[]);
    std::fs::write(data.join("new.txt"), "added by every incremental\n").unwrap();
    backup(&env, &p, &[]);

    let place = env.path("backup/docs");
    let names = objects(&place);
    let stamp = |t: i64| jiff::Timestamp::from_second(t).unwrap().strftime("%Y%m%dT%H%M%SZ").to_string();
    let full_time = names.iter().find_map(|n| n.strip_prefix("duplicity-full.")).unwrap()[..16].to_string();
    let inc: Vec<&String> = names.iter().filter(|n| n.contains(".to.")).collect();
    assert_eq!(inc.len(), 3, "{names:?}");
    let inc_end = inc[0].split(".to.").nth(1).unwrap()[..16].to_string();
    const SETS: i64 = 700;
    let start = jiff::Timestamp::now().as_second() - SETS - 100;
    let rename = |from: &str, to: &str| std::fs::rename(place.join(from), place.join(to)).unwrap();
    for n in names.iter().filter(|n| n.starts_with("duplicity-full")) {
        rename(n, &n.replace(&full_time, &stamp(start)));
    }
    for n in &inc {
        let first = n.replace(&full_time, &stamp(start)).replace(&inc_end, &stamp(start + 1));
        rename(n, &first);
        for k in 1..SETS {
            let copy =
                first.replace(&stamp(start + 1), &stamp(start + k + 1)).replace(&stamp(start), &stamp(start + k));
            std::fs::copy(place.join(&first), place.join(copy)).unwrap();
        }
    }
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    let expected = snapshot(&env, &data, "expected");

    std::fs::write(data.join("b.txt"), "after a month of hourly sets\n").unwrap();
    let next = backup(&env, &p, &[]);
    assert_eq!(next["set"]["kind"], "incremental", "{next}");
    assert_eq!(next["files_read"], 1, "only the new file is read: {next}");

    let status = env.run(&["status", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(status.code, 0, "{}", status.all());
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status[0]["chains"][0]["sets"].as_array().unwrap().len(), SETS as usize + 2, "{status}");

    restored_equals(&env, &p, Some(start + SETS), "at-700", &expected);
    let (run, dest) = restore(&env, &p, None, "latest");
    assert_eq!(run.code, 0, "{}", run.all());
    assert_same_tree(&data, &dest);
    let list = env.run(&["list", p.to_str().unwrap(), "--source", "docs"], &[]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains(" new.txt") && list.stdout.contains(" b.txt"), "{}", list.all());
    let verify = env.run(&["verify", p.to_str().unwrap()], &[]);
    assert_eq!(verify.code, 0, "{}", verify.all());
}
