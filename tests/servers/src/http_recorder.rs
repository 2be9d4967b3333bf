//! An HTTP/1.1 receiver on loopback that records every request, for the
//! tests of notifications (healthchecks.io-style pings, webhooks, ntfy): a
//! real hyper server on a thread and tokio runtime of its own, on a free port
//! of 127.0.0.1.
//!
//! Each request is recorded ([`RecordedRequest`]: method, path with query,
//! headers with lowercased names, the whole body, when it arrived) as soon as
//! its body has been read, before it is answered, so a request that is kept
//! waiting ([`HttpRecorder::stall`]) is already there to see. Answers are
//! `200 OK` with the body `OK` unless a test scripts others by path prefix
//! ([`HttpRecorder::respond_with`]). Stops when dropped, stalled requests
//! and all.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent: path and query (`/ping/abc/fail?rid=1`),
    /// not percent-decoded.
    pub path: String,
    /// In the order sent, names lowercased; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    /// The whole body (chunked bodies reassembled).
    pub body: Vec<u8>,
    /// When the body had been read.
    pub received: Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8; panics (showing it) if it is not.
    pub fn body_text(&self) -> String {
        String::from_utf8(self.body.clone())
            .unwrap_or_else(|e| panic!("the body of {} {} is not UTF-8: {e}", self.method, self.path))
    }

    /// The body parsed as JSON; panics (showing it) if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body of {} {} is not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    /// (path prefix, status, body); the latest matching one answers.
    responses: Vec<(String, u16, String)>,
    /// (path prefix, delay); the latest matching one applies.
    stalls: Vec<(String, Duration)>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running recorder; it stops (dropping open connections) when dropped.
pub struct HttpRecorder {
    port: u16,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for HttpRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRecorder").field("port", &self.port).finish_non_exhaustive()
    }
}

impl HttpRecorder {
    /// Listens on a free port of 127.0.0.1; every path answers `200 OK`.
    pub fn start() -> HttpRecorder {
        let state: Shared = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("http-recorder-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => {
                                let Ok((tcp, _)) = accepted else { continue };
                                let state = served.clone();
                                tokio::spawn(async move {
                                    let service = hyper::service::service_fn(move |request| {
                                        let state = state.clone();
                                        async move { Ok::<_, Infallible>(answer(request, state).await) }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(tcp), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
                // Dropping the runtime here cancels the connections still
                // open, stalled answers included.
            })
            .expect("spawn the HTTP recorder");
        HttpRecorder { port, state, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far, in the order their bodies were read.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The requests once there are at least `count`; panics, listing what
    /// came, if they have not after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            if Instant::now() >= deadline {
                let got: Vec<String> =
                    requests.iter().map(|r| format!("{} {} ({} bytes)", r.method, r.path, r.body.len())).collect();
                panic!("{} of {count} requests to {} came in {timeout:?}: {got:#?}", requests.len(), self.url());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Answer requests whose path (with query) starts with `path_prefix`
    /// with `status` and `body` (`text/plain`). The latest call whose prefix
    /// matches wins; the default is `200` `OK`.
    pub fn respond_with(&self, path_prefix: &str, status: u16, body: &str) {
        assert!(StatusCode::from_u16(status).is_ok(), "{status} is no HTTP status");
        lock(&self.state).responses.push((path_prefix.to_owned(), status, body.to_owned()));
    }

    /// Answer requests whose path starts with `path_prefix` only after
    /// `delay` (recorded at once all the same), as a hung receiver does. The
    /// latest call whose prefix matches wins; `Duration::ZERO` undoes it.
    pub fn stall(&self, path_prefix: &str, delay: Duration) {
        lock(&self.state).stalls.push((path_prefix.to_owned(), delay));
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(request: Request<Incoming>, state: Shared) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    // A client that gives up mid-body leaves no request to record.
    let Ok(body) = body.collect().await.map(|b| b.to_bytes().to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "incomplete body".to_owned());
    };
    let (status, reply, delay) = {
        let mut state = lock(&state);
        let received = Instant::now();
        state.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            headers,
            body,
            received,
        });
        let (status, reply) = state
            .responses
            .iter()
            .rev()
            .find(|(prefix, ..)| path.starts_with(prefix.as_str()))
            .map_or((200, "OK".to_owned()), |(_, status, body)| (*status, body.clone()));
        let delay = state.stalls.iter().rev().find(|(prefix, _)| path.starts_with(prefix.as_str())).map(|(_, d)| *d);
        (status, reply, delay)
    };
    if let Some(delay) = delay.filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    text(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), reply)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// Sends `request` as written and reads the answer until the server closes.
    fn exchange(recorder: &HttpRecorder, request: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", recorder.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn records_a_json_post() {
        let recorder = HttpRecorder::start();
        assert!(recorder.url().starts_with("http://127.0.0.1:") && !recorder.url().ends_with('/'));
        let body = r#"{"status":"ok","files":3}"#;
        let answer = exchange(
            &recorder,
            &format!(
                "POST /hook/run?attempt=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 X-Custom-Token: s3cret\r\nAccept: */*\r\nAccept: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nOK"), "{answer}");
        let requests = recorder.wait_for(1, Duration::from_secs(5));
        let r = &requests[0];
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook/run?attempt=1"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("X-CUSTOM-TOKEN"), Some("s3cret"));
        assert!(r.headers.iter().any(|(n, v)| n == "x-custom-token" && v == "s3cret"), "{:?}", r.headers);
        let accepts: Vec<&str> = r.headers.iter().filter(|(n, _)| n == "accept").map(|(_, v)| v.as_str()).collect();
        assert_eq!(accepts, ["*/*", "text/plain"]);
        assert_eq!(r.body_text(), body);
        assert_eq!(r.json()["files"], 3);
    }

    #[test]
    fn reassembles_a_chunked_body_and_keeps_connections_alive() {
        let recorder = HttpRecorder::start();
        let mut stream = TcpStream::connect(("127.0.0.1", recorder.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"GET /ping/abc HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&buf[..n]));
        stream
            .write_all(
                b"PUT /topic HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                  5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
            )
            .unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).unwrap();
        assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
        let requests = recorder.wait_for(2, Duration::from_secs(5));
        assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/ping/abc"));
        assert!(requests[0].body.is_empty());
        assert_eq!((requests[1].method.as_str(), requests[1].body_text().as_str()), ("PUT", "hello, world"));
        assert!(requests[0].received <= requests[1].received);
    }

    #[test]
    fn scripted_answers_go_by_path_prefix() {
        let recorder = HttpRecorder::start();
        recorder.respond_with("/ping/", 500, "down for maintenance");
        recorder.respond_with("/ping/ok", 201, "created");
        let get =
            |path: &str| exchange(&recorder, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        let failed = get("/ping/abc/fail");
        assert!(failed.starts_with("HTTP/1.1 500 Internal Server Error\r\n"), "{failed}");
        assert!(failed.ends_with("\r\n\r\ndown for maintenance"), "{failed}");
        assert!(get("/ping/ok?x=1").starts_with("HTTP/1.1 201 Created\r\n"));
        assert!(get("/other").ends_with("\r\n\r\nOK"));
        assert_eq!(recorder.requests().len(), 3);
    }

    #[test]
    fn a_stalled_answer_is_recorded_at_once_and_comes_late() {
        // Long enough that a loaded machine still records the request before it ends.
        const STALL: Duration = Duration::from_secs(2);
        let recorder = HttpRecorder::start();
        recorder.stall("/slow", STALL);
        let started = Instant::now();
        let mut stream = TcpStream::connect(("127.0.0.1", recorder.port())).unwrap();
        stream
            .write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            .unwrap();
        let requests = recorder.wait_for(1, Duration::from_secs(5));
        assert_eq!(requests[0].body, b"hi");
        assert!(started.elapsed() < STALL, "recorded only after the stall");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(started.elapsed() >= STALL, "answered before the stall ended");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        recorder.stall("/slow", Duration::ZERO);
        let started = Instant::now();
        assert!(exchange(&recorder, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ends_with("OK"));
        assert!(started.elapsed() < STALL);
    }

    #[test]
    fn dropping_it_ends_stalled_requests() {
        let recorder = HttpRecorder::start();
        recorder.stall("/", Duration::from_secs(3600));
        let mut stream = TcpStream::connect(("127.0.0.1", recorder.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        recorder.wait_for(1, Duration::from_secs(5));
        let started = Instant::now();
        drop(recorder);
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(read.is_err() || answer.is_empty(), "{read:?} {}", String::from_utf8_lossy(&answer));
    }

    #[test]
    #[should_panic(expected = "1 of 2 requests to http://127.0.0.1:")]
    fn wait_for_names_what_came() {
        let recorder = HttpRecorder::start();
        exchange(&recorder, "DELETE /only HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        recorder.wait_for(2, Duration::from_millis(200));
    }
}
