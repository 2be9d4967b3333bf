//! Misbehaving plugins: each harm stays inside its own job, with a message a
//! person can act on, while the other jobs of the same run succeed.

use crate::harness::Env;
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

fn job<'a>(report: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["source"] == source)
        .unwrap_or_else(|| panic!("no job {source}"))
}

#[test]
fn each_misbehaviour_fails_only_its_own_job() {
    let env = Env::new();
    std::fs::create_dir(env.path("data")).unwrap();
    std::fs::write(env.path("data/good.txt"), "good").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let secret = "hunter2-very-secret-value";
    let text = r#"
[pipeline]
name = "sandbox"
concurrency = 4

[sources.good]
plugin = "directory"
path = "{dir}/data"

[sources.memory-bomb]
plugin = { path = "{misbehaving}" }
behaviour = "memory-bomb"
limits = { memory_mb = 64 }

[sources.endless-loop]
plugin = { path = "{misbehaving}" }
behaviour = "endless-loop"
limits = { call_timeout = "2s" }

[sources.trap]
plugin = { path = "{misbehaving}" }
behaviour = "trap"

[sources.read-outside]
plugin = { path = "{misbehaving}" }
behaviour = "read-outside"
path = "{dir}/data"

[sources.network]
plugin = { path = "{misbehaving}" }
behaviour = "network"
address = "ADDRESS"

[sources.reveal-secret]
plugin = { path = "{misbehaving}" }
behaviour = "reveal-secret"
token = { env = "SANDBOX_TOKEN" }

[sources.env]
plugin = { path = "{misbehaving}" }
behaviour = "env"

[sources.stdout-spam]
plugin = { path = "{misbehaving}" }
behaviour = "stdout-spam"

[sources.wants-more]
plugin = { path = "{misbehaving}" }
behaviour = "wants-more"

[sources.unreadable]
plugin = { path = "{misbehaving}" }
behaviour = "unreadable-file"

[sinks.local]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/backup"
"#
    .replace("ADDRESS", &address);
    let p = env.pipeline("p.toml", &text);
    let run =
        env.run(&["run", p.to_str().unwrap(), "--json"], &[("SANDBOX_TOKEN", secret), ("HOST_ONLY_VARIABLE", "x")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));

    for ok in ["good", "env", "stdout-spam", "unreadable"] {
        assert_eq!(job(&report, ok)["ok"], true, "{ok}: {}", run.all());
    }
    let expect = [
        ("memory-bomb", "exceeded its memory limit of 64 MiB"),
        ("endless-loop", "did not return from listing entries within 2s"),
        ("trap", "deliberate panic from the misbehaving plugin"),
        ("read-outside", "/etc/passwd is outside the paths granted to this plugin"),
        ("network", "network:"),
        ("reveal-secret", "does not grant"),
        ("wants-more", "wants more than the pipeline grants"),
    ];
    for (source, needle) in expect {
        let j = job(&report, source);
        assert_eq!(j["ok"], false, "{source}: {}", run.all());
        let error = j["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{source}: expected {needle:?} in {error:?}");
        assert!(!error.contains("SANDBOX ESCAPE"), "{source}: {error}");
    }
    assert!(job(&report, "wants-more")["error"].as_str().unwrap().contains("read /etc"));

    // Nothing reached the listener.
    std::thread::sleep(Duration::from_millis(100));
    match listener.accept() {
        Ok((mut s, _)) => {
            let mut got = String::new();
            let _ = s.read_to_string(&mut got);
            panic!("a plugin connected to the network: {got:?}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
    // The secret never reached any output.
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "secret leaked");
    // Plugin stderr reaches the log, tagged with the plugin.
    assert!(
        run.stderr.lines().any(|l| l.contains("misbehaving plugin line 3")
            && l.contains("stdout-spam")
            && l.contains("stream=\"stderr\"")),
        "{}",
        run.all()
    );
    // An unreadable file is a warning naming it; the files after it are kept.
    assert!(run.stderr.contains("cannot read a-locked.txt"), "{}", run.all());
    assert_eq!(job(&report, "unreadable")["unreadable"], 1);
    let out = env.path("restored");
    let r = env.run(&["restore", p.to_str().unwrap(), "--source", "unreadable", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(std::fs::read_to_string(out.join("z-after.txt")).unwrap(), "hello from a plugin\n");
    // The good job's backup is whole.
    let out = env.path("good");
    let r = env.run(&["restore", p.to_str().unwrap(), "--source", "good", "--to", out.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(std::fs::read_to_string(out.join("good.txt")).unwrap(), "good");
}

#[test]
fn a_missing_secret_fails_its_job_with_the_line() {
    let env = Env::new();
    let p = env.pipeline(
        "p.toml",
        r#"
[pipeline]
name = "secrets"

[sources.needs-secret]
plugin = { path = "{misbehaving}" }
behaviour = "well-behaved"
token = { env = "NOT_SET_ANYWHERE" }

[sinks.local]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/backup"
"#,
    );
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("p.toml:8: sources.needs-secret.token: environment variable NOT_SET_ANYWHERE is not set"),
        "{}",
        run.all()
    );
}

/// A plugin granted a secret may quote it in an error (a server's answer
/// echoed back): the error reaches the report, the output and the log with
/// the value redacted, as the plugin's log lines are.
#[test]
fn a_secret_a_plugin_quotes_in_its_error_is_redacted() {
    let env = Env::new();
    let p = env.pipeline(
        "p.toml",
        r#"
[pipeline]
name = "echo"

[sources.echo]
plugin = { path = "{misbehaving}" }
behaviour = "echo-secret"
token = { env = "ECHO_TOKEN" }
allow = { reveal = ["token"] }

[sinks.local]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/backup"
"#,
    );
    let secret = "tok-3141592653-very-secret";
    let run = env.run(&["run", p.to_str().unwrap(), "--json"], &[("ECHO_TOKEN", secret)]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(!run.all().contains(secret), "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let error = report["jobs"][0]["error"].as_str().unwrap();
    assert!(error.contains("the server refused token [REDACTED]"), "{error}");
}

/// A plugin granted an SFTP connection may log in only with key and
/// known_hosts files its configuration names: else it could use any key the
/// host can read (its own host key, a user's ~/.ssh/id_*).
#[test]
fn an_sftp_key_file_must_be_a_value_of_the_plugins_configuration() {
    let env = Env::new();
    let p = env.pipeline(
        "p.toml",
        r#"
[pipeline]
name = "foreign-key"

[sources.sneaky]
plugin = { path = "{misbehaving}" }
behaviour = "sftp-foreign-key"
address = "127.0.0.1:1"
known_hosts = "/etc/ssh/ssh_known_hosts"

[sinks.local]
plugin = { path = "{fixture_sink}" }
target = "file://{dir}/backup"
"#,
    );
    let run = env.run(&["run", p.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(
            "the plugin named the SFTP key file /etc/ssh/ssh_host_ed25519_key for 127.0.0.1:1, which is not a value \
             of its configuration"
        ),
        "{}",
        run.all()
    );
}
