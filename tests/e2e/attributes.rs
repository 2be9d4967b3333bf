//! Entry attributes through the duplicity sink: a source whose messages
//! carry `maildir.info` and `imap.flags` (the test plugin's `attributes`
//! behaviour) changes only their flags, and then drops them. The
//! incrementals store that without asking for any content; we restore every
//! time with the flags in the Maildir names (`<name>:<info>`), `list --json`
//! shows them, `verify --compare` compares them; stock duplicity restores,
//! lists and verifies the same chain (it ignores the PAX records and applies
//! the copy-all deltas).

use crate::duplicity::{Duplicity, Encryption, against_both_duplicities, parse_duplicity_list, tree_listing};
use crate::harness::Env;
use crate::roundtrip::walk;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const SMALL: &str = "cur/1700000000.M1P1.host";
const BIG: &str = "cur/1700000001.M2P1.host";
/// What the plugin's messages hold (see `tests/plugins/misbehaving`).
const SMALL_CONTENT: &[u8] = b"hello from a plugin\n";
const BIG_LEN: usize = 150_000;
/// The plugin's error when a message's content is asked for.
const CONTENT_REFUSED: &str = "content asked for although only attributes changed";

fn big_content() -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..BIG_LEN)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// The pipeline with the source's attributes as given (TOML lines).
fn pipeline(env: &Env, source_keys: &str) -> PathBuf {
    let text = format!(
        r#"
[pipeline]
name = "attrs"
cache_dir = "{{dir}}/cache"

[sources.mail]
plugin = {{ path = "{{misbehaving}}" }}
behaviour = "attributes"
{source_keys}

[sinks.dup]
plugin = "duplicity-sink"
target = "file://{{dir}}/backup"
encryption = "none"
volsize_mb = 1
"#
    );
    env.pipeline("p.toml", &text)
}

/// Run a backup; the JSON report of the one job.
fn backup(env: &Env, p: &Path) -> serde_json::Value {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.stderr.contains(CONTENT_REFUSED), "the sink asked for content: {}", run.all());
    serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()["jobs"][0].clone()
}

/// The states of the chain: (set time, the messages' Maildir info then).
struct Chain {
    sets: Vec<(i64, Option<&'static str>)>,
    pipeline: PathBuf,
}

/// A full with flags `2,S`, an incremental where only the flags change
/// (`2,FS`), one where they are dropped, and one where nothing changes. The
/// incrementals refuse to give content: none may be asked for.
fn chain(env: &Env) -> Chain {
    let p = pipeline(env, "maildir_info = \"2,S\"\nimap_flags = '\\Seen'");
    let full = backup(env, &p);
    assert_eq!(full["set"]["kind"], "full", "{full}");
    let p = pipeline(env, "maildir_info = \"2,FS\"\nimap_flags = '\\Flagged \\Seen'\nrefuse_content = true");
    let flagged = backup(env, &p);
    assert_eq!(flagged["set"]["kind"], "incremental", "{flagged}");
    assert_eq!(flagged["files_read"], 0, "{flagged}");
    assert_eq!(flagged["set"]["changed_entries"], 2, "{flagged}");
    let p = pipeline(env, "refuse_content = true");
    let dropped = backup(env, &p);
    assert_eq!(dropped["files_read"], 0, "{dropped}");
    assert_eq!(dropped["set"]["changed_entries"], 2, "a removed attribute is a change: {dropped}");
    let idle = backup(env, &p);
    assert_eq!(idle["set"]["changed_entries"], 0, "{idle}");
    let time = |r: &serde_json::Value| r["set"]["time"].as_i64().unwrap();
    Chain {
        sets: vec![
            (time(&full), Some("2,S")),
            (time(&flagged), Some("2,FS")),
            (time(&dropped), None),
            (time(&idle), None),
        ],
        pipeline: p,
    }
}

/// The names and contents of a restored `cur/`.
fn messages(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(root.join("cur"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn expected(info: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let name = |p: &str| {
        let base = p.strip_prefix("cur/").unwrap();
        info.map_or(base.to_string(), |i| format!("{base}:{i}"))
    };
    vec![(name(SMALL), SMALL_CONTENT.to_vec()), (name(BIG), big_content())]
}

fn restore(env: &Env, p: &Path, time: i64, extra: &[&str], to: &str) -> PathBuf {
    let dest = env.path(to);
    let t = time.to_string();
    let mut args = vec!["restore", p.to_str().unwrap(), "--source", "mail", "--time", &t];
    args.extend(extra);
    args.extend(["--to", dest.to_str().unwrap()]);
    let run = env.run(&args, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    dest
}

#[test]
fn flags_change_without_content_and_restore_into_maildir_names() {
    let env = Env::new();
    let Chain { sets, pipeline: p } = chain(&env);
    for (i, (time, info)) in sets.iter().enumerate() {
        let dest = restore(&env, &p, *time, &[], &format!("r{i}"));
        assert_eq!(messages(&dest), expected(*info), "restore at set {i}");
        let m = std::fs::metadata(dest.join("cur")).unwrap();
        assert_eq!((m.permissions().mode() & 0o7777, m.mtime()), (0o700, 1_700_000_000));
    }
    // One message with --path: the suffixed name, directly in the target.
    let dest = restore(&env, &p, sets[1].0, &["--path", SMALL], "one");
    let names: Vec<_> = std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("1700000000.M1P1.host:2,FS")]);

    // list --json shows the attributes as an object.
    let list = |time: i64| -> serde_json::Value {
        let t = time.to_string();
        let run = env.run(&["list", p.to_str().unwrap(), "--source", "mail", "--time", &t, "--json"], &[]);
        assert_eq!(run.code, 0, "{}", run.all());
        serde_json::from_str(&run.stdout).unwrap()
    };
    let at = |listing: &serde_json::Value, path: &str| {
        listing.as_array().unwrap().iter().find(|e| e["path"] == path).unwrap()["attributes"].clone()
    };
    let flagged = list(sets[1].0);
    assert_eq!(at(&flagged, SMALL), serde_json::json!({"imap.flags": "\\Flagged \\Seen", "maildir.info": "2,FS"}));
    assert_eq!(at(&flagged, BIG), at(&flagged, SMALL));
    assert_eq!(at(&flagged, "cur"), serde_json::json!({}));
    assert_eq!(at(&list(sets[2].0), SMALL), serde_json::json!({}));
    let plain = env.run(&["list", p.to_str().unwrap(), "--source", "mail", "--time", &sets[0].0.to_string()], &[]);
    assert!(plain.stdout.contains(&format!("{SMALL} [imap.flags=\\Seen; maildir.info=2,S]")), "{}", plain.all());

    // Our verify reads every object; --compare sees attributes.
    let readable = pipeline(&env, "");
    let v = env.run(&["verify", readable.to_str().unwrap(), "--compare"], &[]);
    assert_eq!(v.code, 0, "{}", v.all());
    let changed = pipeline(&env, "maildir_info = \"2,S\"");
    let v = env.run(&["verify", changed.to_str().unwrap(), "--compare"], &[]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(
        v.stdout.contains(&format!("{SMALL}: attributes {{maildir.info=\"2,S\"}} in the source, none in the backup")),
        "{}",
        v.all()
    );
}

against_both_duplicities! {
    duplicity_restores_lists_and_verifies_attribute_only_changes => duplicity_reads_the_chain;
}

fn duplicity_reads_the_chain(dup: &Duplicity) {
    let env = Env::new();
    let Chain { sets, .. } = chain(&env);
    let url = format!("file://{}", env.path("backup/mail").display());
    let mut newest = PathBuf::new();
    for (i, (time, _)) in sets.iter().enumerate() {
        let t = time.to_string();
        let dest = env.path(&format!("dup-{i}"));
        dup.run(&env, Encryption::None, &["restore", "-t", &t, &url, dest.to_str().unwrap()]);
        // duplicity knows no attributes: the archived names, the same bytes.
        assert_eq!(messages(&dest), expected(None), "duplicity's restore at set {i}");
        let listed = dup.run(&env, Encryption::None, &["list-current-files", "-t", &t, &url]);
        assert_eq!(parse_duplicity_list(&listed.stdout), tree_listing(&dest), "list-current-files -t {t}");
        let one = env.path(&format!("dup-one-{i}"));
        dup.run(&env, Encryption::None, &["restore", "-t", &t, "-r", BIG, &url, one.to_str().unwrap()]);
        assert!(std::fs::read(&one).unwrap() == big_content(), "-r {BIG} -t {t}");
        newest = dest;
    }
    // verify compares owners too, which only root could restore.
    let owner_restored = std::fs::metadata(newest.join(SMALL)).unwrap().uid() == 1000;
    let verify =
        dup.output(&env, Encryption::None, None, &["verify", "--compare-data", &url, newest.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(stdout.contains(&format!("Verify complete: {} file", walk(&newest).len())), "{stdout}");
    if owner_restored {
        assert!(verify.status.success() && stdout.contains(" 0 difference"), "{stdout}");
    }
}

/// An entry that cannot be restored (here a Maildir info that is not `2,`
/// and letters, refused by the restore directory) is reported with its path
/// and the restore goes on to the next; `--fail-fast` stops at the first.
/// Either way the exit code is 1 and the report says what happened.
#[test]
fn a_failing_entry_is_reported_and_the_restore_goes_on() {
    let env = Env::new();
    let p = pipeline(&env, "maildir_info = \"2,S!\"");
    backup(&env, &p);
    let p = p.to_str().unwrap();

    let all = env.path("all");
    let run = env.run(&["restore", p, "--source", "mail", "--json", "--to", all.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["report_version"], 1, "{report}");
    let failed: Vec<&str> =
        report["failures"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(failed, [SMALL, BIG], "{}", run.all());
    assert!(report["failures"][0]["error"].as_str().unwrap().contains("2,S!"), "{report}");
    assert_eq!(report["stopped_early"], false);
    assert!(run.stderr.contains("2 entries could not be restored:") && run.stderr.contains(BIG), "{}", run.all());
    // What could be restored was: the Maildir's directories.
    assert!(all.join("cur").is_dir(), "{}", run.all());

    let first = env.path("first");
    let run =
        env.run(&["restore", p, "--source", "mail", "--fail-fast", "--json", "--to", first.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["failures"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failures"][0]["path"], SMALL, "{report}");
    assert_eq!(report["stopped_early"], true, "{report}");
    assert!(run.stderr.contains("--fail-fast"), "{}", run.all());
}
