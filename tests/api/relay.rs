//! A TCP relay between Sluice and a database server, for injecting link faults: pass bytes
//! through, black-hole every link (open, nothing passes), or cut one link right after the
//! server has received a given statement (its answer never reaches Sluice).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Shared {
    /// Nothing passes, on existing links or new ones.
    blackhole: AtomicBool,
    /// Cut the next link whose client sends these bytes, after forwarding them.
    cut_after: Mutex<Option<Vec<u8>>>,
    /// Links cut so far.
    cuts: AtomicUsize,
}

pub struct Relay {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listen on a free local port, relaying to `upstream` (host:port).
    pub async fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_string();
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(link(client, upstream.clone(), shared.clone()));
                }
            }
        });
        Relay { addr, shared, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// From now on nothing passes: links stay open, every byte is held back.
    pub fn blackhole(&self) {
        self.shared.blackhole.store(true, Ordering::SeqCst);
    }

    /// Cut the next link on which the client sends `pattern`: the bytes are forwarded to
    /// the server, then the link to the client is closed before any answer reaches it (the
    /// server's side is held open a moment so that it runs what it received).
    pub fn cut_after(&self, pattern: &[u8]) {
        *self.shared.cut_after.lock().unwrap() = Some(pattern.to_vec());
    }

    /// How many links were cut so far.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn link(client: TcpStream, upstream: String, shared: Arc<Shared>) {
    if shared.blackhole.load(Ordering::SeqCst) {
        // Accepted, and never answered.
        hold(client).await;
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cut = Arc::new(AtomicBool::new(false));
    let upward = {
        let shared = shared.clone();
        let cut = cut.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            // The tail of the previous read, so a pattern split across reads is seen.
            let mut tail: Vec<u8> = Vec::new();
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                while shared.blackhole.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let pattern = shared.cut_after.lock().unwrap().clone();
                let mut cutting = false;
                if let Some(pattern) = pattern {
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&buf[..n]);
                    if window
                        .windows(pattern.len())
                        .any(|w| w == pattern.as_slice())
                    {
                        let mut armed = shared.cut_after.lock().unwrap();
                        if armed.take().is_some() {
                            // Before the server can answer: nothing more goes down.
                            cut.store(true, Ordering::SeqCst);
                            shared.cuts.fetch_add(1, Ordering::SeqCst);
                            cutting = true;
                        }
                    }
                    let keep = window.len().saturating_sub(pattern.len());
                    tail = window.split_off(keep);
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                if cutting {
                    // Let the server run what it received before it sees the end.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
            let _ = server_write.shutdown().await;
        }
    };
    let downward = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut client_open = true;
        loop {
            // Read on after a cut, so the server's side ends with a FIN, never a reset
            // that could drop what it has not read yet.
            let n = tokio::select! {
                read = server_read.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
                _ = tokio::time::sleep(Duration::from_millis(5)), if client_open => 0,
            };
            if cut.load(Ordering::SeqCst) {
                if client_open {
                    client_open = false;
                    let _ = client_write.shutdown().await;
                }
                continue;
            }
            if n == 0 {
                continue;
            }
            while shared.blackhole.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upward, downward);
}

async fn hold(stream: TcpStream) {
    let _keep = stream;
    std::future::pending::<()>().await;
}
