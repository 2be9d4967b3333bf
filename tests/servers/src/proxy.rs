//! A TCP proxy on loopback in front of an HTTP server, for the fault tests
//! of remote storage. [`CuttingProxy::start`]: the first `cuts` connections
//! to carry more than `after` bytes in either direction are closed at that
//! point (both ways, as a dropped NAT mapping or a restarted router does).
//! [`CuttingProxy::throttling`]: the first requests are answered `429 Too
//! Many Requests` with a `Retry-After`, as a rate-limited service does.
//! Later connections pass untouched.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running proxy; it stops taking connections when dropped.
#[derive(Debug)]
pub struct CuttingProxy {
    port: u16,
    cut: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    /// Forward 127.0.0.1:<new port> to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16, after: u64, cuts: usize) -> CuttingProxy {
        CuttingProxy::spawn(upstream, after, cuts, 0, 0)
    }

    /// Answer the first `refusals` connections' first request with 429 and
    /// `Retry-After: <seconds>`, then close them; forward the rest.
    pub fn throttling(upstream: u16, refusals: usize, seconds: u64) -> CuttingProxy {
        CuttingProxy::spawn(upstream, u64::MAX, 0, refusals, seconds)
    }

    fn spawn(upstream: u16, after: u64, cuts: usize, refusals: usize, seconds: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let port = listener.local_addr().expect("bound").port();
        let cut = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut2, stop2) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut refused = 0;
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut client) = client else { continue };
                if refused < refusals {
                    refused += 1;
                    let mut head = [0u8; 4096];
                    let _ = client.read(&mut head);
                    let answer = format!(
                        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {seconds}\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n"
                    );
                    let _ = client.write_all(answer.as_bytes());
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let budget = Arc::new(AtomicUsize::new(0));
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                    let (pair, cut, budget) =
                        ((client.try_clone().ok(), server.try_clone().ok()), cut2.clone(), budget.clone());
                    std::thread::spawn(move || pump(from, to, after, cuts, &cut, &budget, pair));
                }
            }
        });
        CuttingProxy { port, cut, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many connections it has cut.
    pub fn cut(&self) -> usize {
        self.cut.load(Ordering::Relaxed)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

/// Copy `from` to `to`; past `after` bytes on this connection (both
/// directions counted), while fewer than `cuts` were cut, close both ends.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    after: u64,
    cuts: usize,
    cut: &AtomicUsize,
    carried: &AtomicUsize,
    (client, server): (Option<TcpStream>, Option<TcpStream>),
) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let total = carried.fetch_add(n, Ordering::Relaxed) + n;
        if total as u64 > after && cut.load(Ordering::Relaxed) < cuts {
            cut.fetch_add(1, Ordering::Relaxed);
            for s in [&client, &server].into_iter().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
