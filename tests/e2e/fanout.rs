//! One read of a source feeds every sink: a TrueNAS dataset backed up into
//! two targets from one snapshot; a sink that fails or hangs mid-stream is
//! cut off and reported while the other finishes its set.

use crate::harness::Env;
use crate::roundtrip::assert_same_tree;
use crate::truenas::KEY;
use test_servers::truenas::{FakeTrueNas, Generation};

fn job<'a>(report: &'a serde_json::Value, sink: &str) -> &'a serde_json::Value {
    report["jobs"].as_array().unwrap().iter().find(|j| j["sink"] == sink).unwrap()
}

#[test]
fn one_snapshot_feeds_both_sinks() {
    let root = tempfile::Builder::new().prefix("fake-truenas-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = FakeTrueNas::start(Generation::V25_10, KEY, root.path());
    let mountpoint = server.add_dataset("tank/data");
    std::fs::create_dir_all(mountpoint.join("docs")).unwrap();
    std::fs::write(mountpoint.join("docs/a.txt"), "first version\n").unwrap();
    std::fs::write(mountpoint.join("big.bin"), vec![9u8; 3 << 20]).unwrap();
    let env = Env::new();
    let text = format!(
        r#"
[pipeline]
name = "nas"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "truenas-dataset"
api = "{api}"
api_key = {{ env = "TRUENAS_KEY" }}
dataset = "tank/data"
local_path = "{mountpoint}"

[sinks.local]
plugin = "duplicity-sink"
target = "file://{{dir}}/local"
encryption = "none"

[sinks.offsite]
plugin = "duplicity-sink"
target = "file://{{dir}}/offsite"
encryption = "symmetric"
passphrase = {{ env = "PASSPHRASE" }}
"#,
        api = server.url(),
        mountpoint = mountpoint.display(),
    );
    let p = env.pipeline("p.toml", &text);
    let ps = p.to_str().unwrap();
    let envs = [("TRUENAS_KEY", KEY), ("PASSPHRASE", "off site")];
    // What both backups must hold: the snapshot, as taken.
    let expected = env.path("expected");
    let copy = expected.clone();
    server.after_snapshot(move |_, mountpoint| {
        let taken = std::fs::read_dir(mountpoint.join(".zfs/snapshot")).unwrap().next().unwrap().unwrap().path();
        assert!(std::process::Command::new("cp").arg("-a").arg(&taken).arg(&copy).status().unwrap().success());
    });
    let run = env.run(&["run", ps, "--json"], &envs);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for sink in ["local", "offsite"] {
        let job = job(&report, sink);
        assert_eq!(job["outcome"], "ok", "{report}");
        assert_eq!(job["files_read"], 2, "{report}");
    }
    // One snapshot for both, released.
    assert_eq!(server.created().len(), 1, "{:?}", server.created());
    assert!(server.snapshot_ids().is_empty(), "{:?}", server.snapshot_ids());
    for sink in ["local", "offsite"] {
        let dest = env.path(&format!("restored-{sink}"));
        let r = env.run(&["restore", ps, "--source", "docs", "--sink", sink, "--to", dest.to_str().unwrap()], &envs);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_same_tree(&expected, &dest);
    }
}

/// A directory source into a sink that breaks mid-stream (`fault`) and the
/// duplicity sink.
fn broken_sink_pipeline(env: &Env, fault: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(env.path("tree/sub")).unwrap();
    for i in 0..20 {
        std::fs::write(env.path(&format!("tree/sub/f{i:02}.bin")), vec![i as u8; 200_000]).unwrap();
    }
    env.pipeline(
        "p.toml",
        &format!(
            r#"
[pipeline]
name = "fanout"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "directory"
path = "{{dir}}/tree"

[sinks.broken]
plugin = {{ path = "{{fixture_sink}}" }}
target = "file://{{dir}}/broken"
fault_after_bytes = 1000000
fault = "{fault}"
limits = {{ call_timeout = "2s" }}

[sinks.good]
plugin = "duplicity-sink"
target = "file://{{dir}}/good"
encryption = "none"
"#
        ),
    )
}

#[test]
fn a_sink_that_fails_or_hangs_is_cut_off_and_the_other_finishes() {
    for (fault, says) in [("fail", "deliberate fault after 1000000 bytes"), ("stall", "call_timeout")] {
        let env = Env::new();
        let p = broken_sink_pipeline(&env, fault);
        let ps = p.to_str().unwrap();
        let run = env.run(&["run", ps, "--json"], &[]);
        assert_eq!(run.code, 1, "{fault}: {}", run.all());
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let broken = job(&report, "broken");
        assert_eq!(broken["outcome"], "failed", "{fault}: {report}");
        assert!(broken["error"].as_str().unwrap().contains(says), "{fault}: {report}");
        let good = job(&report, "good");
        assert_eq!(good["outcome"], "ok", "{fault}: {report}");
        assert_eq!(good["files_read"], 20, "{fault}: {report}");
        // Nothing of the broken set is visible; the good one restores whole.
        let broken_objects: Vec<_> = std::fs::read_dir(env.path("broken/docs"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(broken_objects.is_empty(), "{fault}: {broken_objects:?}");
        let dest = env.path("restored");
        let r = env.run(&["restore", ps, "--source", "docs", "--sink", "good", "--to", dest.to_str().unwrap()], &[]);
        assert_eq!(r.code, 0, "{fault}: {}", r.all());
        assert_same_tree(&env.path("tree"), &dest);
    }
}
