//! The `imap` source against a real Dovecot (Debian's dovecot-imapd, started
//! per test by `test-servers` on loopback; under `CI=true` a missing server
//! fails the test): folders as Maildirs restored byte-exact, incrementals that
//! fetch only new bodies, flag-only changes that fetch none, an account that a
//! backup never changes, failures that fail only their job, and stock
//! duplicity restoring the chain.

use crate::duplicity::{Encryption, Peer, with_duplicity};
use crate::harness::Env;
use crate::roundtrip::walk;
use orchestrator_imap::{Client, Password, Security, ServerConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use test_servers::dovecot::Dovecot;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

/// Folders by UTF-8 name, nested and non-ASCII.
const FOLDERS: &[&str] = &["INBOX", "Archiv", "Archiv/2024", "Entwürfe", "日本語"];

/// How many messages INBOX holds: enough that bodies come in many batches.
const MANY: usize = 2500;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn plain(server: &Dovecot) -> ServerConfig {
    plain_as(server, USER)
}

fn plain_as(server: &Dovecot, user: &str) -> ServerConfig {
    let mut c = ServerConfig::new("127.0.0.1", Security::Plain, user, Password::new(PASSWORD));
    c.port = server.imap_port();
    c
}

/// A message with 8-bit UTF-8 headers and body.
fn message(i: usize, extra: &str) -> Vec<u8> {
    format!(
        "From: Jörg Müller <joerg@example.org>\r\nTo: Alice <alice@example.org>\r\n\
         Subject: Grüße Nummer {i} — 日本語のテスト\r\nMessage-ID: <{i}.e2e@example.org>\r\n\
         Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Hallo {i}, schöne Grüße aus Köln.\r\n{extra}"
    )
    .into_bytes()
}

/// A message with a base64 attachment of about 10 MiB.
fn big_message() -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: Anhang\r\nMessage-ID: <big@e2e>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\nsiehe Anhang\r\n--b\r\nContent-Type: application/octet-stream\r\n\
        Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\n"
        .to_vec();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < 10 << 20 {
        for _ in 0..76 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(ALPHABET[(state % 64) as usize]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--b--\r\n");
    out
}

fn flags_for(i: usize) -> Vec<String> {
    let mut f = Vec::new();
    if i.is_multiple_of(3) {
        f.push("\\Seen".to_string());
    }
    if i.is_multiple_of(7) {
        f.push("\\Flagged".to_string());
    }
    if i.is_multiple_of(11) {
        f.push("$Forwarded".to_string());
    }
    f
}

/// Fill the account over one APPEND session (fast: no process per message).
fn fill(server: &Dovecot) {
    fill_with(server, MANY)
}

fn fill_with(server: &Dovecot, many: usize) {
    runtime().block_on(async {
        let mut c = Client::connect(&plain(server)).await.unwrap();
        for folder in FOLDERS.iter().filter(|f| **f != "INBOX") {
            c.create_folder(&orchestrator_imap::utf7::encode(folder)).await.unwrap();
        }
        for i in 0..many {
            c.append("INBOX", &flags_for(i), 1_700_000_000 + i as i64 * 60, &message(i, "")).await.unwrap();
        }
        c.append("Archiv/2024", &[], 1_704_000_000, &big_message()).await.unwrap();
        for (n, folder) in ["Archiv", "Archiv/2024", "Entwürfe", "日本語"].iter().enumerate() {
            for i in 0..3 {
                let raw = orchestrator_imap::utf7::encode(folder);
                let body = message(10_000 + n * 10 + i, &format!("in {folder}\r\n"));
                c.append(&raw, &["\\Seen".to_string()], 1_705_000_000 + i as i64, &body).await.unwrap();
            }
        }
        c.logout().await.unwrap();
    });
}

/// What Python's `mailbox.Maildir` (a Maildir reader that is not ours) sees in
/// each folder of a restored tree: (folder, uid from the name, flag letters).
fn maildir_flags_read_by_python(root: &Path) -> Vec<(String, u32, String)> {
    const SCRIPT: &str = r#"
import mailbox, os, sys
root = sys.argv[1]
for folder in sys.argv[2:]:
    box = mailbox.Maildir(os.path.join(root, folder), create=False)
    for key in box.keys():
        msg = box.get_message(key)
        print(folder, key.split(".")[0], msg.get_flags() or "-", sep="\t")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(root)
        .args(FOLDERS)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut seen: Vec<(String, u32, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let (folder, uid, flags) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (folder.to_string(), uid.parse().unwrap(), if flags == "-" { String::new() } else { flags.to_string() })
        })
        .collect();
    seen.sort();
    seen
}

/// The server's flags as Maildir letters (D, F, R, S, T in ASCII order).
fn imap_flags_as_maildir(flags: &[(String, Vec<(u32, String)>)]) -> Vec<(String, u32, String)> {
    let mut out = Vec::new();
    for (folder, messages) in flags {
        for (uid, imap) in messages {
            let mut letters: Vec<char> = imap
                .split_whitespace()
                .filter_map(|f| match f {
                    "\\Draft" => Some('D'),
                    "\\Flagged" => Some('F'),
                    "\\Answered" => Some('R'),
                    "\\Seen" => Some('S'),
                    "\\Deleted" => Some('T'),
                    _ => None,
                })
                .collect();
            letters.sort();
            out.push((folder.clone(), *uid, letters.into_iter().collect()));
        }
    }
    out.sort();
    out
}

/// Message bytes by (folder, uid).
type Bodies = BTreeMap<(String, u32), Vec<u8>>;

/// Every message's `BODY[]` by (folder, uid), and each folder's UIDVALIDITY, read over IMAP.
fn server_bodies(server: &Dovecot) -> (Bodies, BTreeMap<String, u32>) {
    runtime().block_on(async {
        let mut c = Client::connect(&plain(server)).await.unwrap();
        let (mut bodies, mut validity) = (BTreeMap::new(), BTreeMap::new());
        for folder in FOLDERS {
            let status = c.examine(&orchestrator_imap::utf7::encode(folder)).await.unwrap();
            validity.insert(folder.to_string(), status.uid_validity);
            let metas = c.fetch_meta(1..=status.uid_next.max(2) - 1).await.unwrap();
            let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
            for chunk in uids.chunks(200) {
                for (uid, body) in c.fetch_bodies(chunk).await.unwrap() {
                    bodies.insert((folder.to_string(), uid), body);
                }
            }
        }
        c.logout().await.unwrap();
        (bodies, validity)
    })
}

/// Every message file of a restored tree by (folder, uid), the name's
/// `:2,…` info (if the sink names files with it) ignored.
fn restored_messages(root: &Path, validity: &BTreeMap<String, u32>) -> Bodies {
    let mut out = BTreeMap::new();
    for path in walk(root) {
        let rel = path.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        let Some((folder, name)) = rel.rsplit_once("/cur/") else { continue };
        let name = name.split(':').next().unwrap();
        let (uid, rest) = name.split_once('.').unwrap();
        assert_eq!(rest, format!("{}.imap", validity[folder]), "{rel}");
        assert_eq!(uid.len(), 10, "{rel}");
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{rel}");
        out.insert((folder.to_string(), uid.parse().unwrap()), std::fs::read(&path).unwrap());
    }
    out
}

fn all_flags(server: &Dovecot) -> Vec<(String, Vec<(u32, String)>)> {
    FOLDERS.iter().map(|f| (f.to_string(), server.flags(USER, f))).collect()
}

/// Bodies fetched by the sessions that ended after the first `skip`.
fn bodies_fetched(server: &Dovecot, skip: usize, sessions: usize) -> u64 {
    let all = server.wait_for_sessions(skip + sessions);
    all[skip..].iter().map(|s| s.fetch_body_count).sum()
}

fn pipeline(env: &Env, server: &Dovecot) -> PathBuf {
    pipeline_into(env, server, "plugin = \"duplicity-sink\"\nencryption = \"none\"")
}

/// The pipeline with a given sink (`plugin = …` and its settings).
fn pipeline_into(env: &Env, server: &Dovecot, sink: &str) -> PathBuf {
    env.pipeline(
        "p.toml",
        &format!(
            r#"
[pipeline]
name = "mail"
cache_dir = "{{dir}}/cache"

[sources.mail]
plugin = "imap"
host = "127.0.0.1"
port = {port}
ca_file = "{ca}"
user = "{USER}"
password = {{ env = "IMAP_PASSWORD" }}
batch_messages = 300
batch_mib = 4

[sinks.local]
target = "file://{{dir}}/backup"
{sink}
"#,
            port = server.imaps_port(),
            ca = server.ca_file().display(),
        ),
    )
}

fn run(env: &Env, p: &Path) -> serde_json::Value {
    // Each set needs a later second than the one before.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], &[("IMAP_PASSWORD", PASSWORD)]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.all().contains(PASSWORD), "the password is in the output:\n{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["jobs"][0]["ok"], true, "{}", run.all());
    report
}

fn restore(env: &Env, p: &Path, name: &str) -> PathBuf {
    let out = env.path(name);
    let r = env.run(&["restore", p.to_str().unwrap(), "--source", "mail", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    out
}

#[test]
fn imap_backup_restores_every_message_and_fetches_only_new_bodies() {
    let Some(server) = Dovecot::start() else { return };
    server.add_user(USER, PASSWORD);
    fill(&server);
    let mut sessions = 1;
    let flags_before = all_flags(&server);
    let env = Env::new();
    let p = pipeline(&env, &server);

    // A full backup reads every body once, and changes nothing on the server.
    run(&env, &p);
    let total = MANY + 1 + 12;
    assert_eq!(bodies_fetched(&server, sessions, 1), total as u64, "a full backup fetches each body once");
    sessions += 1;
    assert_eq!(all_flags(&server), flags_before, "a backup never changes a flag or sets \\Seen");

    // Restored into a directory: every message file is the server's BODY[].
    let (bodies, validity) = server_bodies(&server);
    sessions += 1;
    assert_eq!(bodies.len(), total);
    let restored = restore(&env, &p, "restored-full");
    assert_eq!(restored_messages(&restored, &validity), bodies);
    for folder in FOLDERS {
        for sub in ["cur", "new", "tmp"] {
            assert!(restored.join(folder).join(sub).is_dir(), "{folder}/{sub}");
        }
    }
    let big = bodies.get(&("Archiv/2024".to_string(), 1)).unwrap();
    assert!(big.len() >= 10 << 20);

    // New mail: the incremental fetches only the new bodies.
    for i in 0..4 {
        server.deliver(USER, "INBOX", &message(20_000 + i, "neu\r\n"));
    }
    server.deliver(USER, "日本語", &message(30_000, "neu\r\n"));
    run(&env, &p);
    assert_eq!(bodies_fetched(&server, sessions, 1), 5, "only the new messages' bodies are fetched");
    sessions += 1;

    // Only flags changed: no body is fetched, no path changes.
    server.doveadm(&["flags", "add", "-u", USER, "\\Flagged", "mailbox", "INBOX", "uid", "1:20"], None);
    server.doveadm(&["flags", "remove", "-u", USER, "\\Seen", "mailbox", "Entwürfe", "all"], None);
    let flags_now = all_flags(&server);
    let before_flags = restore(&env, &p, "restored-before-flags");
    run(&env, &p);
    assert_eq!(bodies_fetched(&server, sessions, 1), 0, "a flag change fetches no body");
    assert_eq!(all_flags(&server), flags_now, "a backup never changes a flag");

    // Our restore of the newest state holds every message, old and new.
    let (bodies, validity) = server_bodies(&server);
    let latest = restore(&env, &p, "restored-latest");
    assert_eq!(restored_messages(&latest, &validity), bodies);
    assert_eq!(maildir_flags_read_by_python(&latest), imap_flags_as_maildir(&flags_now), "flags in the names");
    assert_eq!(walk(&before_flags).len(), walk(&latest).len(), "a flag change adds or removes no path");

    // Stock duplicity restores the chain (three sets) to the same messages,
    // under the archived names: ours end in the flags' `:2,…` (Maildir info).
    with_duplicity(Peer::Debian, |dup| {
        let url = format!("file://{}", env.path("backup/mail").display());
        let theirs = env.path("restored-by-duplicity");
        dup.run(&env, Encryption::None, &["restore", &url, theirs.to_str().unwrap()]);
        assert_eq!(restored_messages(&theirs, &validity), bodies);
        let names = |root: &Path, strip: bool| -> Vec<String> {
            let mut names: Vec<String> = walk(root)
                .iter()
                .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_string())
                .map(|n| if strip { n.split(':').next().unwrap().to_string() } else { n })
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&latest, true), names(&theirs, false));
        assert!(names(&latest, false).iter().any(|n| n.ends_with(":2,S")), "our names carry no flags");
    });
}

#[test]
fn imap_failures_fail_only_their_job_naming_source_and_server() {
    let Some(server) = Dovecot::start() else { return };
    server.add_user(USER, PASSWORD);
    server.deliver(USER, "INBOX", &message(1, ""));
    let env = Env::new();
    std::fs::create_dir_all(env.path("data")).unwrap();
    std::fs::write(env.path("data/file.txt"), "hello").unwrap();
    let closed = test_servers::free_port();
    let source = |name: &str, port: u16, ca: bool, secret: &str| {
        let ca = if ca { format!("ca_file = \"{}\"\n", server.ca_file().display()) } else { String::new() };
        format!(
            "[sources.{name}]\nplugin = \"imap\"\nhost = \"127.0.0.1\"\nport = {port}\n{ca}user = \"{USER}\"\n\
             password = {{ env = \"{secret}\" }}\n\n"
        )
    };
    let text = format!(
        "[pipeline]\nname = \"fail\"\ncache_dir = \"{{dir}}/cache\"\n\n{}{}{}\
         [sources.docs]\nplugin = \"directory\"\npath = \"{{dir}}/data\"\n\n\
         [sinks.local]\nplugin = \"duplicity-sink\"\ntarget = \"file://{{dir}}/backup\"\nencryption = \"none\"\n",
        source("wrong_password", server.imaps_port(), true, "WRONG"),
        source("unreachable", closed, true, "GOOD"),
        source("untrusted", server.imaps_port(), false, "GOOD"),
    );
    let p = env.pipeline("p.toml", &text);
    let run = env.run(&["run", p.to_str().unwrap()], &[("GOOD", PASSWORD), ("WRONG", "not the password")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let out = run.all();
    assert!(!out.contains(PASSWORD) && !out.contains("not the password"), "a password is in the output:\n{out}");
    let line = |source: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{source} → local: FAILED")))
            .unwrap_or_else(|| panic!("no failure line for {source}:\n{out}"))
            .to_string()
    };
    let wrong = line("wrong_password");
    assert!(wrong.contains(&format!("127.0.0.1:{}", server.imaps_port())) && wrong.contains("login"), "{wrong}");
    let down = line("unreachable");
    assert!(down.contains(&format!("127.0.0.1:{closed}")), "{down}");
    let untrusted = line("untrusted");
    assert!(
        untrusted.contains(&format!("127.0.0.1:{}", server.imaps_port())) && untrusted.contains("not trusted"),
        "{untrusted}"
    );
    assert!(out.lines().any(|l| l.starts_with("docs → local: ok")), "the directory source still ran:\n{out}");
}

/// A message for comparisons: (length, FNV-1a hash of the bytes, sorted flags, INTERNALDATE).
type Summary = (usize, u64, Vec<String>, i64);

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Per folder, each message's summary, sorted, read over IMAP.
fn account(server: &Dovecot, user: &str) -> BTreeMap<String, Vec<Summary>> {
    folders_of(server, user, FOLDERS)
}

fn folders_of(server: &Dovecot, user: &str, folders: &[&str]) -> BTreeMap<String, Vec<Summary>> {
    runtime().block_on(async {
        let mut c = Client::connect(&plain_as(server, user)).await.unwrap();
        let mut out = BTreeMap::new();
        for folder in folders {
            let status = c.examine(&orchestrator_imap::utf7::encode(folder)).await.unwrap();
            let metas = c.fetch_meta(1..=status.uid_next.max(2) - 1).await.unwrap();
            let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
            let mut bodies = BTreeMap::new();
            for chunk in uids.chunks(200) {
                bodies.extend(c.fetch_bodies(chunk).await.unwrap());
            }
            let mut messages: Vec<Summary> = metas
                .into_iter()
                .map(|m| {
                    let mut flags = m.flags;
                    flags.sort();
                    let body = bodies.remove(&m.uid).unwrap();
                    (body.len(), fnv(&body), flags, m.internal_date)
                })
                .collect();
            messages.sort();
            out.insert(folder.to_string(), messages);
        }
        c.logout().await.unwrap();
        out
    })
}

#[test]
fn imap_restore_into_an_account_twice_without_duplicates() {
    let Some(server) = Dovecot::start() else { return };
    server.add_user(USER, PASSWORD);
    // The target's password is the pipeline source's `password`.
    server.add_user("bob", PASSWORD);
    server.add_user("carol", PASSWORD);
    fill_with(&server, 40);
    let env = Env::new();
    // The duplicity sink keeps the flags in entry attributes; a flag change
    // after the full backup reaches the account through an incremental.
    let p = pipeline(&env, &server);
    run(&env, &p);
    server.doveadm(&["flags", "add", "-u", USER, "\\Flagged", "mailbox", "INBOX", "uid", "1:3"], None);
    run(&env, &p);
    let flags_before = all_flags(&server);
    eprintln!("DEBUG bob before: {:?}", folders_of(&server, "bob", &["INBOX"])["INBOX"].len());

    let url = format!("imap://bob@127.0.0.1:{}", server.imaps_port());
    let restore = |expect: &str| {
        let r = env
            .run(&["restore", p.to_str().unwrap(), "--source", "mail", "--to", &url], &[("IMAP_PASSWORD", PASSWORD)]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(r.stdout.contains(expect), "{}", r.all());
        assert!(!r.all().contains(PASSWORD), "{}", r.all());
    };
    let total = 40 + 1 + 12;
    let target = format!("imap://bob@127.0.0.1:{}", server.imaps_port());
    restore(&format!("{total} messages appended to {} folders of {target}, 0 already there", FOLDERS.len()));
    let original = account(&server, USER);
    assert_eq!(account(&server, "bob"), original, "bodies, flags and dates arrive as they were");

    // Again: every message is already there, nothing is appended twice.
    restore(&format!("0 messages appended to {} folders of {target}, {total} already there", FOLDERS.len()));
    assert_eq!(account(&server, "bob"), original);
    assert_eq!(all_flags(&server), flags_before, "the source account is untouched");

    // `--path Archiv`: that subtree only, under its own folder names.
    let carol = format!("imap://carol@127.0.0.1:{}", server.imaps_port());
    let r = env.run(
        &["restore", p.to_str().unwrap(), "--source", "mail", "--path", "Archiv", "--to", &carol],
        &[("IMAP_PASSWORD", PASSWORD)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("7 messages appended to 2 folders"), "{}", r.all());
    let archiv = ["Archiv", "Archiv/2024"];
    assert_eq!(folders_of(&server, "carol", &archiv), folders_of(&server, USER, &archiv));
    assert!(folders_of(&server, "carol", &["INBOX"])["INBOX"].is_empty());
}

/// The benchmark `scripts/bench-imap.sh` runs (not a timed test: ignored by
/// default): messages per second of a first backup of `BENCH_MESSAGES`
/// (10,000) messages and of an incremental with `BENCH_NEW` (100) new ones,
/// into the duplicity sink, against Dovecot on loopback over TLS; and mbsync
/// (isync) pulling the same account into a Maildir, as the reference (by the
/// name `localhost`: mbsync 1.4 checks a certificate against DNS names only;
/// `FSync no`, since our sink does not sync each message either).
#[test]
#[ignore = "a benchmark; run by scripts/bench-imap.sh"]
fn imap_bench() {
    let count = |var: &str, default: usize| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (messages, new) = (count("BENCH_MESSAGES", 10_000), count("BENCH_NEW", 100));
    let Some(server) = Dovecot::start() else { return };
    server.add_user(USER, PASSWORD);
    let append = |from: usize, n: usize| {
        runtime().block_on(async {
            let mut c = Client::connect(&plain(&server)).await.unwrap();
            for i in from..from + n {
                let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(40);
                let folder = if i % 10 == 0 { "Archiv" } else { "INBOX" };
                if i == 0 {
                    c.create_folder("Archiv").await.unwrap();
                }
                c.append(folder, &flags_for(i), 1_700_000_000 + i as i64, &message(i, &text)).await.unwrap();
            }
            c.logout().await.unwrap();
        })
    };
    append(0, messages);
    let env = Env::new();
    let p = pipeline(&env, &server);
    let timed = |what: &str, n: usize, f: &dyn Fn()| {
        let start = std::time::Instant::now();
        f();
        let s = start.elapsed().as_secs_f64();
        println!("BENCH {what}: {n} messages in {s:.2} s = {:.0} messages/s", n as f64 / s);
    };
    let run_once = || {
        let r = env.run(&["run", p.to_str().unwrap()], &[("IMAP_PASSWORD", PASSWORD)]);
        assert_eq!(r.code, 0, "{}", r.all());
        println!("BENCH   {}", r.stdout.trim());
    };
    let mbsync = test_servers::require_program(&["/usr/bin/mbsync"], "isync");
    let rc = env.path("mbsyncrc");
    std::fs::create_dir_all(env.path("mbsync")).unwrap();
    std::fs::write(
        &rc,
        format!(
            "FSync no\n\nIMAPAccount bench\nHost localhost\nPort {}\nUser {USER}\nPass \"{PASSWORD}\"\nSSLType IMAPS\n\
             CertificateFile {}\n\nIMAPStore remote\nAccount bench\n\nMaildirStore local\nPath {}/\n\
             Inbox {}/INBOX\nSubFolders Verbatim\n\nChannel bench\nFar :remote:\nNear :local:\nPatterns *\n\
             Create Near\nSync Pull\nSyncState *\n",
            server.imaps_port(),
            server.ca_file().display(),
            env.path("mbsync").display(),
            env.path("mbsync").display()
        ),
    )
    .unwrap();
    let sync = || {
        let Some(mbsync) = &mbsync else { return };
        let out = std::process::Command::new(mbsync).arg("-c").arg(&rc).arg("-q").arg("-a").output().unwrap();
        assert!(out.status.success(), "mbsync failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    timed("orchestrator full backup", messages, &run_once);
    if mbsync.is_some() {
        timed("mbsync first sync", messages, &sync);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    append(messages, new);
    timed(&format!("orchestrator incremental ({new} new)"), new, &run_once);
    if mbsync.is_some() {
        timed(&format!("mbsync incremental ({new} new)"), new, &sync);
    }
}
