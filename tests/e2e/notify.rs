//! `[notify.NAME]` against real receivers on loopback: an HTTP server that
//! records requests (healthchecks pings, webhooks, ntfy), aiosmtpd for mail
//! (STARTTLS, implicit TLS, AUTH), a program for `command`. A receiver that
//! is down, slow or refuses never fails the backup, and secrets never reach
//! the output. Metrics are checked by Prometheus' own promtool.

use crate::harness::{Env, Run};
use std::time::{Duration, Instant};
use test_servers::http_recorder::HttpRecorder;
use test_servers::smtp::{SmtpOptions, SmtpServer, SmtpTls};

/// A directory source `docs` (and `other`) into a plain local archive, then
/// `notify` (tables with `{dir}` standing for the test's directory).
fn pipeline(env: &Env, notify: &str, broken_sink: bool) -> String {
    std::fs::create_dir_all(env.path("data")).unwrap();
    std::fs::create_dir_all(env.path("other")).unwrap();
    std::fs::write(env.path("data/a.txt"), "a file\n").unwrap();
    std::fs::write(env.path("data/big.bin"), vec![3u8; 2 << 20]).unwrap();
    let sink = if broken_sink {
        "plugin = { path = \"{fixture_sink}\" }\nfault_after_bytes = 1000\nfault = \"fail\""
    } else {
        "plugin = \"duplicity-sink\"\nencryption = \"none\""
    };
    let text = format!(
        r#"
[pipeline]
name = "home"
cache_dir = "{{dir}}/cache"

[sources.docs]
plugin = "directory"
path = "{{dir}}/data"

[sources.other]
plugin = "directory"
path = "{{dir}}/other"

[sinks.local]
target = "file://{{dir}}/target"
{sink}

{notify}
"#
    );
    env.pipeline("p.toml", &text).display().to_string()
}

fn report(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()))
}

fn notifications(run: &Run) -> Vec<serde_json::Value> {
    report(run)["notifications"].as_array().unwrap().clone()
}

#[test]
fn healthchecks_hear_start_and_end_of_one_run_and_the_failure_body() {
    let receiver = HttpRecorder::start();
    let env = Env::new();
    let notify = format!("[notify.hc]\nkind = \"healthchecks\"\nurl = \"{}/ping/5f1c0d1e-check\"", receiver.url());
    let p = pipeline(&env, &notify, false);
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let pings = receiver.wait_for(2, Duration::from_secs(10));
    let (start, end) = (&pings[0], &pings[1]);
    assert_eq!(start.method, "POST");
    let rid = start.path.strip_prefix("/ping/5f1c0d1e-check/start?rid=").expect(&start.path).to_string();
    assert_eq!(rid.len(), 36, "a UUID: {rid}");
    assert_eq!(end.path, format!("/ping/5f1c0d1e-check?rid={rid}"));
    assert!(end.body_text().contains("home: backup ok (1 job)"), "{}", end.body_text());
    assert!(end.body_text().contains("docs -> local: ok, full set"), "{}", end.body_text());
    let delivered = notifications(&run);
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(delivered.iter().all(|n| n["error"].is_null()), "{delivered:?}");

    // A failed job: /fail, with the job's error in the body.
    let env = Env::new();
    let p = pipeline(&env, &notify, true);
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let pings = receiver.wait_for(4, Duration::from_secs(10));
    assert!(pings[3].path.starts_with("/ping/5f1c0d1e-check/fail?rid="), "{}", pings[3].path);
    let body = pings[3].body_text();
    assert!(body.contains("home: backup failed (1 of 1 job)"), "{body}");
    assert!(body.contains("deliberate fault after 1000 bytes"), "{body}");
}

#[test]
fn a_webhook_gets_the_report_of_the_sources_it_watches_with_its_token() {
    let receiver = HttpRecorder::start();
    let env = Env::new();
    let notify = format!(
        r#"
[notify.hook]
kind = "webhook"
url = "{url}/hooks/backup"
token = {{ env = "HOOK_TOKEN" }}
on = ["success", "failure"]
sources = ["docs"]

[notify.elsewhere]
kind = "webhook"
url = "{url}/hooks/other"
on = ["success"]
sources = ["other"]
"#,
        url = receiver.url()
    );
    let p = pipeline(&env, &notify, false);
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[("HOOK_TOKEN", "t0ken-xyz")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let posts = receiver.wait_for(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    // Only the notifier watching `docs`: the run did not touch `other`.
    assert_eq!(receiver.requests().len(), 1, "{:?}", receiver.requests().iter().map(|r| &r.path).collect::<Vec<_>>());
    let post = &posts[0];
    assert_eq!(post.path, "/hooks/backup");
    assert_eq!(post.header("authorization"), Some("Bearer t0ken-xyz"));
    let body = post.json();
    assert_eq!(body["event"], "success", "{body}");
    assert_eq!(body["pipeline"], "home", "{body}");
    assert_eq!(body["jobs"][0]["source"], "docs", "{body}");
    assert_eq!(body["jobs"][0]["outcome"], "ok", "{body}");
    assert!(!run.stdout.contains("t0ken-xyz") && !run.stderr.contains("t0ken-xyz"), "{}", run.all());

    // Both sources: each notifier hears only its own source's jobs (a
    // second set of `docs` needs a second of its own).
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", &p, "--json"], &[("HOOK_TOKEN", "t0ken-xyz")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let posts = receiver.wait_for(3, Duration::from_secs(10));
    for post in &posts[1..] {
        let jobs = post.json()["jobs"].as_array().unwrap().clone();
        let want = if post.path == "/hooks/backup" { "docs" } else { "other" };
        assert_eq!(jobs.len(), 1, "{}: {jobs:?}", post.path);
        assert_eq!(jobs[0]["source"], want, "{}", post.path);
    }
}

#[test]
fn ntfy_gets_a_high_priority_message_on_failure() {
    let receiver = HttpRecorder::start();
    let env = Env::new();
    let notify = format!("[notify.phone]\nkind = \"ntfy\"\nurl = \"{}/my-backups\"", receiver.url());
    let p = pipeline(&env, &notify, true);
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let posts = receiver.wait_for(1, Duration::from_secs(10));
    assert_eq!(posts[0].path, "/", "JSON goes to the server's root");
    let message = posts[0].json();
    assert_eq!(message["topic"], "my-backups", "{message}");
    assert_eq!(message["priority"], 4, "{message}");
    assert_eq!(message["title"], "home: backup failed (1 of 1 job)", "{message}");
    assert!(message["message"].as_str().unwrap().contains("deliberate fault"), "{message}");
}

/// The pipeline's email table for `server`, the password from `SMTP_PASSWORD`.
fn email_table(server: &SmtpServer, tls: &str) -> String {
    let ca = server.ca_pem_path().map(|p| format!("ca_file = \"{}\"", p.display())).unwrap_or_default();
    format!(
        r#"
[notify.mail]
kind = "email"
host = "localhost"
port = {port}
tls = "{tls}"
{ca}
user = "{user}"
password = {{ env = "SMTP_PASSWORD" }}
from = "backups@example.org"
to = ["admin@example.org", "second@example.org"]
on = ["success", "failure"]
"#,
        port = server.port(),
        user = server.user(),
    )
}

#[test]
fn one_mail_per_run_over_starttls_and_implicit_tls_with_a_login() {
    for (mode, word) in [(SmtpTls::StartTls, "starttls"), (SmtpTls::Implicit, "tls")] {
        let Some(server) = SmtpServer::start_with(SmtpOptions { tls: mode, ..SmtpOptions::default() }) else { return };
        let env = Env::new();
        let p = pipeline(&env, &email_table(&server, word), false);
        let run = env.run(&["run", &p, "--json"], &[("SMTP_PASSWORD", server.password())]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(notifications(&run).iter().all(|n| n["error"].is_null()), "{word}: {}", run.all());
        let mails = server.wait_for(1, Duration::from_secs(10));
        assert_eq!(mails.len(), 1, "one mail for the whole run");
        let mail = &mails[0];
        assert!(mail.tls, "{word}: sent in clear");
        assert_eq!(mail.auth_user.as_deref(), Some(server.user()));
        assert_eq!(mail.mail_from, "backups@example.org");
        assert_eq!(mail.rcpt_to, ["admin@example.org", "second@example.org"]);
        assert_eq!(mail.header("subject").as_deref(), Some("home: backup ok (2 jobs)"), "{}", mail.data);
        assert!(mail.body().contains("docs -> local: ok"), "{}", mail.data);
        assert!(mail.body().contains("other -> local: ok"), "{}", mail.data);
    }
}

#[test]
fn a_wrong_mail_password_is_reported_and_never_shown() {
    let Some(server) = SmtpServer::start_tls() else { return };
    let env = Env::new();
    let p = pipeline(&env, &email_table(&server, "starttls"), false);
    let run = env.run(&["run", &p, "--json"], &[("SMTP_PASSWORD", "n0t-the-Password")]);
    assert_eq!(run.code, 0, "a notification never fails the backup: {}", run.all());
    let n = notifications(&run);
    let error = n[0]["error"].as_str().unwrap_or_else(|| panic!("{n:?}"));
    assert!(error.starts_with("mail (email): localhost:"), "{error}");
    assert!(error.contains("535") || error.to_lowercase().contains("auth"), "{error}");
    assert!(!run.stdout.contains("n0t-the-Password") && !run.stderr.contains("n0t-the-Password"), "{}", run.all());
    assert!(run.stderr.contains("notification not delivered"), "{}", run.all());
    assert!(server.messages().is_empty());
}

#[test]
fn a_receiver_that_hangs_refuses_or_is_gone_never_fails_the_backup() {
    let receiver = HttpRecorder::start();
    receiver.stall("/slow", Duration::from_secs(60));
    receiver.respond_with("/refuses", 500, "database is down");
    let gone_port = test_servers::free_port();
    let env = Env::new();
    let notify = format!(
        r#"
[notify.slow]
kind = "webhook"
url = "{url}/slow"
on = ["success"]
timeout = "2s"

[notify.refuses]
kind = "webhook"
url = "{url}/refuses"
on = ["success"]

[notify.gone]
kind = "webhook"
url = "http://127.0.0.1:{gone_port}/x"
on = ["success"]

[notify.unset]
kind = "healthchecks"
url = {{ env = "NOT_SET_ANYWHERE" }}
"#,
        url = receiver.url()
    );
    let p = pipeline(&env, &notify, false);
    let started = Instant::now();
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[]);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(report(&run)["ok"], true);
    let n = notifications(&run);
    let error = |name: &str, event: &str| -> String {
        n.iter()
            .find(|x| x["notifier"] == name && x["event"] == event)
            .and_then(|x| x["error"].as_str())
            .unwrap_or_else(|| panic!("{name} {event}: {n:?}"))
            .to_string()
    };
    assert_eq!(error("slow", "success"), "slow (webhook): no answer within 2s");
    let refused = error("refuses", "success");
    assert!(refused.contains("answered HTTP 500: database is down"), "{refused}");
    assert!(!refused.contains("/refuses"), "the URL's path is not shown: {refused}");
    let gone = error("gone", "success");
    assert!(gone.contains(&format!("http://127.0.0.1:{gone_port}/…")) && gone.contains("refused"), "{gone}");
    // A notifier that could not be made ready is reported on each event.
    for event in ["start", "success"] {
        let unset = error("unset", event);
        assert!(unset.contains("notify.unset: environment variable NOT_SET_ANYWHERE is not set"), "{unset}");
    }
}

#[test]
fn a_secret_ping_url_never_reaches_the_output() {
    let receiver = HttpRecorder::start();
    receiver.respond_with("/", 503, "down for maintenance");
    let env = Env::new();
    let notify = "[notify.hc]\nkind = \"healthchecks\"\nurl = { env = \"HC_URL\" }".to_string();
    let p = pipeline(&env, &notify, false);
    let secret = "b1e8a7d2-77c4-4a5e-9d0f-1c2b3a4d5e6f";
    let url = format!("{}/ping/{secret}", receiver.url());
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[("HC_URL", url.as_str())]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(receiver.wait_for(2, Duration::from_secs(10)).len(), 2);
    let n = notifications(&run);
    assert!(n[0]["error"].as_str().unwrap().contains("answered HTTP 503"), "{n:?}");
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{}", run.all());
}

#[test]
fn a_command_gets_the_report_on_stdin_and_only_its_own_environment() {
    let env = Env::new();
    let script = env.path("hook.sh");
    let out = env.path("hook.out");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ echo \"$ORCHESTRATOR_EVENT $ORCHESTRATOR_PIPELINE run=$ORCHESTRATOR_RUN_ID \
             secret=${{PASSPHRASE:-unset}}\"; cat; echo; }} >> {}\n[ \"$1\" = fail ] && {{ echo 'disk quota \
             exceeded' >&2; exit 3; }}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let table = |args: &str| {
        format!(
            "[notify.script]\nkind = \"command\"\nprogram = \"{}\"\nargs = [{args}]\non = [\"start\", \"success\"]",
            script.display()
        )
    };
    let p = pipeline(&env, &table(""), false);
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[("PASSPHRASE", "do-not-pass")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let run_id = report(&run)["run_id"].as_str().unwrap().to_string();
    assert_eq!(lines[0], format!("start home run={run_id} secret=unset"), "{text}");
    let start: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(start["event"], "start");
    assert_eq!(lines[2], format!("success home run={run_id} secret=unset"), "{text}");
    let end: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(end["jobs"][0]["outcome"], "ok", "{end}");

    let p = pipeline(&env, &table("\"fail\""), false);
    // A second set needs a time of its own.
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", &p, "--json", "--source", "docs"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let n = notifications(&run);
    let error = n[0]["error"].as_str().unwrap();
    assert!(error.ends_with("exited with status 3: disk quota exceeded"), "{error}");
}

#[test]
fn metrics_as_a_file_and_served_pass_promtool() {
    let env = Env::new();
    let p = pipeline(&env, "", false);
    let metrics = env.path("textfile/orchestrator.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let run = env.run(&["run", &p, "--metrics-file", metrics.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let text = std::fs::read_to_string(&metrics).unwrap();
    if let Some(checked) = test_servers::promtool::check_metrics(&text) {
        checked.unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
    for line in [
        "orchestrator_last_run_success{pipeline=\"home\",source=\"docs\",sink=\"local\"} 1",
        "orchestrator_chain_length{pipeline=\"home\",source=\"other\",sink=\"local\"} 1",
        "orchestrator_last_run_read_bytes{pipeline=\"home\",source=\"docs\",sink=\"local\"} 2097159",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // A run of one source keeps the other's numbers.
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.run(&["run", &p, "--source", "docs", "--metrics-file", metrics.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.contains("orchestrator_chain_length{pipeline=\"home\",source=\"docs\",sink=\"local\"} 2"), "{text}");
    assert!(
        text.contains("orchestrator_last_run_success{pipeline=\"home\",source=\"other\",sink=\"local\"} 1"),
        "{text}"
    );

    // The daemon serves the same at /metrics.
    let port = test_servers::free_port();
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "cache_dir = ",
        &format!("schedule = \"0 0 1 1 *\"\nmetrics_listen = \"127.0.0.1:{port}\"\ncache_dir = "),
    );
    std::fs::write(&p, text).unwrap();
    let daemon = env.spawn(&["daemon", &p], &[]);
    let started = Instant::now();
    let served = loop {
        match get(port, "/metrics") {
            Some(answer) if answer.contains("orchestrator_chain_length") => break answer,
            _ if started.elapsed() > Duration::from_secs(20) => panic!("no metrics served"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert!(get(port, "/other").unwrap().starts_with("HTTP/1.1 404"));
    crate::daemon::kill(daemon.id(), "TERM");
    let run = Run::wait(daemon);
    assert_eq!(run.code, 143, "{}", run.all());
    let (head, body) = served.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("orchestrator_newest_backup_age_seconds{pipeline=\"home\",source=\"docs\""), "{body}");
    if let Some(checked) = test_servers::promtool::check_metrics(body) {
        checked.unwrap_or_else(|e| panic!("{e}\n{body}"));
    }
}

/// A GET over a plain socket: the whole answer, head and body.
fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}
