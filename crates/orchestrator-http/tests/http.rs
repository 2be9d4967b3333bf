//! orchestrator-http against real sockets on loopback: the fake TrueNAS of
//! `test-servers` (plain and HTTPS) and silent listeners.

use std::time::{Duration, Instant};

use orchestrator_http::{ErrorKind, HttpClient, HttpError, JsonRpc, Method, Secret, Timeouts, TlsConfig, WsClient};
use serde_json::json;
use test_servers::truenas::{FakeTrueNas, Generation};

const KEY: &str = "1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn fake(generation: Generation, tls: bool) -> (FakeTrueNas, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let server = if tls {
        FakeTrueNas::start_tls(generation, KEY, root.path())
    } else {
        FakeTrueNas::start(generation, KEY, root.path())
    };
    server.add_dataset("tank/data");
    (server, root)
}

fn client(server: &FakeTrueNas, tls: TlsConfig) -> HttpClient {
    HttpClient::new(&server.url(), tls).unwrap().with_bearer(Secret::new(KEY))
}

#[tokio::test]
async fn get_and_post_json_over_plain_http_to_loopback() {
    let (server, _root) = fake(Generation::V24_10, false);
    let http = client(&server, TlsConfig::default());
    let (status, version) = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap();
    assert_eq!((status, version.as_str()), (200, Some("TrueNAS-SCALE-24.10.2.1")));
    let body = json!({"dataset": "tank/data", "name": "t1"});
    let (status, created) = http.request(Method::POST, "/api/v2.0/zfs/snapshot", Some(&body)).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(created["id"], "tank/data@t1");
    // A refusal other than 401/403/404 comes back for the caller to judge.
    let (status, refused) = http.request(Method::POST, "/api/v2.0/zfs/snapshot", Some(&body)).await.unwrap();
    assert_eq!(status, 422);
    assert!(refused["message"].as_str().unwrap().contains("already exists"), "{refused}");
}

#[tokio::test]
async fn wrong_key_is_an_auth_error_and_404_is_not_found() {
    let (server, _root) = fake(Generation::V24_10, false);
    let http = HttpClient::new(&server.url(), TlsConfig::default()).unwrap().with_bearer(Secret::new("1-wrong"));
    let err = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let text = err.to_string();
    assert!(text.contains(&server.url()) && text.contains("API key") && !text.contains("1-wrong"), "{text}");

    let http = client(&server, TlsConfig::default());
    let err = http.request(Method::GET, "/api/v2.0/pool/dataset/id/tank%2Fnope", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("tank%2Fnope"), "{err}");
}

#[tokio::test]
async fn requests_outside_the_base_url_are_refused_before_connecting() {
    // Nothing listens on this port: a refusal that connected would say "unreachable".
    let port = test_servers::free_port();
    let http = HttpClient::new(&format!("http://127.0.0.1:{port}/api/"), TlsConfig::default()).unwrap();
    for path in ["/other", "//evil.example/api/x", "/api/../admin", "/api/%2e%2e/admin", "http://evil.example/api/"] {
        let err = http.request(Method::GET, path, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{path}: {err}");
        assert!(err.to_string().contains(&format!("http://127.0.0.1:{port}/api/")), "{err}");
        let err = WsClient::connect(&http, path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{path}: {err}");
    }
    let err = http.request(Method::GET, "/api/x", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "inside the base it does connect: {err}");
}

#[tokio::test]
async fn plain_http_to_a_network_address_is_refused_without_connecting() {
    // TEST-NET-1 (RFC 5737): never routed, so a connection attempt would hang, not fail fast.
    let started = Instant::now();
    let err = HttpClient::new("http://192.0.2.1:8080/", TlsConfig::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("loopback"), "{err}");
    let err = HttpClient::new("http://[2001:db8::1]/", TlsConfig::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(started.elapsed() < Duration::from_secs(1));
    // https to the same address is allowed (and would then connect).
    assert!(HttpClient::new("https://192.0.2.1:8443/", TlsConfig::default()).is_ok());
}

#[tokio::test]
async fn tls_with_the_ca_file() {
    let (server, _root) = fake(Generation::V25_10, true);
    let tls = TlsConfig { ca_file: Some(server.ca_file().unwrap().to_owned()), tls_fingerprint: None };
    let http = client(&server, tls);
    let (status, _) = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap();
    assert_eq!(status, 200);
    // WebSocket over the same TLS set-up.
    let mut rpc = JsonRpc::new(WsClient::connect(&http, "/api/current").await.unwrap());
    assert!(rpc.url().starts_with("wss://127.0.0.1:"));
    assert_eq!(rpc.call("core.ping", json!([])).await.unwrap(), "pong");
}

#[tokio::test]
async fn tls_with_a_pinned_certificate_in_either_form() {
    let (server, _root) = fake(Generation::V25_04, true);
    let pin = server.cert_fingerprint().unwrap().to_owned();
    for form in [pin.clone(), pin.replace(':', "").to_lowercase(), format!("sha256 Fingerprint={pin}")] {
        let http = client(&server, TlsConfig { ca_file: None, tls_fingerprint: Some(form) });
        let (status, _) = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap();
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn a_pin_that_does_not_match_is_refused() {
    let (server, _root) = fake(Generation::V25_04, true);
    let wrong = vec!["AB"; 32].join(":");
    let http = client(&server, TlsConfig { ca_file: None, tls_fingerprint: Some(wrong.clone()) });
    let err = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap_err();
    assert!(matches!(err, HttpError::PinMismatch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Tls);
    let text = err.to_string();
    assert!(text.contains(&wrong) && text.contains(server.cert_fingerprint().unwrap()), "{text}");
    assert!(text.contains("openssl s_client -connect 127.0.0.1:"), "{text}");
    let err = WsClient::connect(&http, "/api/current").await.unwrap_err();
    assert!(matches!(err, HttpError::PinMismatch { .. }), "{err}");
}

#[tokio::test]
async fn an_untrusted_certificate_says_how_to_trust_it() {
    let (server, _root) = fake(Generation::V25_10, true);
    let http = match HttpClient::new(&server.url(), TlsConfig::default()) {
        Ok(http) => http,
        Err(err) => {
            // A machine without any system CA: that is said instead, up front.
            assert_eq!(err.kind(), ErrorKind::Config, "{err}");
            assert!(err.to_string().contains("ca_file"), "{err}");
            return;
        }
    };
    let err = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap_err();
    assert!(matches!(err, HttpError::Untrusted { .. }), "{err}");
    let text = err.to_string();
    for needle in
        ["ca_file", "tls_fingerprint", "openssl x509 -noout -fingerprint -sha256", server.cert_fingerprint().unwrap()]
    {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
    // A CA file that did not sign it is no better.
    let other = tempfile::tempdir().unwrap();
    let unrelated = FakeTrueNas::start_tls(Generation::V25_10, KEY, other.path());
    let tls = TlsConfig { ca_file: Some(unrelated.ca_file().unwrap().to_owned()), tls_fingerprint: None };
    let err = client(&server, tls).request(Method::GET, "/api/v2.0/system/version", None).await.unwrap_err();
    assert!(matches!(err, HttpError::Untrusted { .. }), "{err}");
}

#[tokio::test]
async fn a_bad_ca_file_or_pin_fails_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err = HttpClient::new("https://127.0.0.1:1/", TlsConfig { ca_file: Some(missing), tls_fingerprint: None })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("nope.pem"), "{err}");
    let err = HttpClient::new("https://127.0.0.1:1/", TlsConfig { ca_file: None, tls_fingerprint: Some("abc".into()) })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let timeouts = Timeouts { connect: Duration::from_millis(500), request: Duration::from_millis(500) };
    // Plain: connected (the kernel accepts), then silence.
    let http =
        HttpClient::new(&format!("http://127.0.0.1:{port}/"), TlsConfig::default()).unwrap().with_timeouts(timeouts);
    let started = Instant::now();
    let err = http.request(Method::GET, "/api/v2.0/system/version", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    let err = WsClient::connect(&http, "/api/current").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // TLS: the handshake never completes.
    let https =
        HttpClient::new(&format!("https://127.0.0.1:{port}/"), TlsConfig::default()).unwrap().with_timeouts(timeouts);
    let err = https.request(Method::GET, "/", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = test_servers::free_port();
    let http = HttpClient::new(&format!("http://localhost:{port}/"), TlsConfig::default()).unwrap();
    let err = http.request(Method::GET, "/", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn json_rpc_matches_ids_skips_notifications_and_types_errors() {
    let (server, _root) = fake(Generation::V25_04, false);
    let http = client(&server, TlsConfig::default());
    let mut rpc = JsonRpc::new(WsClient::connect(&http, "/api/current").await.unwrap());
    // Not logged in yet: middleware's call error.
    let err = rpc.call("system.version", json!([])).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32001), "{err}");
    assert_eq!(err.rpc_data().unwrap()["errname"], "EACCES");
    assert!(err.to_string().contains("Not authenticated"), "{err}");
    assert_eq!(rpc.call("auth.login_with_api_key", json!([KEY])).await.unwrap(), true);
    // The create is preceded by a collection_update notification, which is skipped.
    let created = rpc.call("zfs.snapshot.create", json!([{"dataset": "tank/data", "name": "a"}])).await.unwrap();
    assert_eq!(created["id"], "tank/data@a");
    assert_eq!(rpc.call("system.version", json!([])).await.unwrap(), "TrueNAS-25.04.2");
    let err = rpc.call("pool.snapshot.create", json!([{"dataset": "tank/data", "name": "b"}])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rpc);
    assert_eq!(err.rpc_code(), Some(-32601), "{err}");
    rpc.close().await;
}

#[tokio::test]
async fn a_missing_websocket_route_is_not_found() {
    let (server, _root) = fake(Generation::V24_10, false);
    let err = WsClient::connect(&client(&server, TlsConfig::default()), "/api/current").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().starts_with(&format!("ws://127.0.0.1:{}/api/current", server.port())), "{err}");
}

#[test]
fn the_client_never_prints_its_token() {
    let http = HttpClient::new("https://nas.example/", TlsConfig::default()).unwrap().with_bearer(Secret::new(KEY));
    assert!(!format!("{http:?}").contains(KEY));
}

#[tokio::test]
async fn a_call_answered_only_by_notifications_times_out() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _request = ws.next().await;
        // Notifications keep coming; the answer never does.
        for _ in 0..40 {
            let note = json!({"jsonrpc": "2.0", "method": "collection_update", "params": {"msg": "changed"}});
            if ws.send(Message::text(note.to_string())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let timeouts = Timeouts { connect: Duration::from_secs(2), request: Duration::from_millis(400) };
    let http =
        HttpClient::new(&format!("http://127.0.0.1:{port}/"), TlsConfig::default()).unwrap().with_timeouts(timeouts);
    let mut rpc = JsonRpc::new(WsClient::connect(&http, "/api/current").await.unwrap());
    let started = Instant::now();
    let err = rpc.call("core.ping", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.abort();
}
