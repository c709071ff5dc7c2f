//! A scriptable raw-TCP server of misbehaviours, for testing that clients survive hostile servers and
//! networks: dripped bytes, frozen connections, resets mid-body, malformed status lines and chunked
//! encodings, endless headers, huge bodies, XML bombs, hostile `Date`s.
//!
//! Every connection reads one request head (at most 64 KiB), asks the script what to do with it, and
//! plays the [`Step`]s it returns, byte for byte: nothing is parsed or fixed up on the way out. After the
//! steps the connection reads the next request, unless a step closed it.
//!
//! ```
//! use std::time::Duration;
//! use cos_testkit::hostile::{HostileServer, Reply, Step};
//! let server = HostileServer::start(|_req| {
//!     Reply::steps([Step::Drip {
//!         bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
//!         every: Duration::from_secs(1),
//!     }])
//! })?;
//! assert!(server.endpoint().starts_with("http://127.0.0.1:"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The head of a request the server received.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `PUT`, `GET`…
    pub method: String,
    /// The request target (`/key?uploads`).
    pub target: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// 1 for the first request the server received.
    pub number: usize,
}

impl Request {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query string (after `?`), or "".
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The declared body length.
    pub fn content_length(&self) -> u64 {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// One thing the server does on a connection.
#[derive(Clone, Debug)]
pub enum Step {
    /// Reads and discards the request body (its `Content-Length`).
    ReadBody,
    /// Reads the request body one byte every `every` (a server that takes an upload very slowly).
    DripRead {
        /// The pause between bytes.
        every: Duration,
    },
    /// Writes these bytes.
    Write(Vec<u8>),
    /// Writes these bytes one at a time, pausing `every` before each.
    Drip {
        /// The bytes.
        bytes: Vec<u8>,
        /// The pause between bytes.
        every: Duration,
    },
    /// Writes `total` bytes of `fill` in 64 KiB writes, as fast as the client takes them (a huge body).
    Flood {
        /// The byte repeated.
        fill: u8,
        /// How many bytes.
        total: u64,
    },
    /// Waits this long.
    Sleep(Duration),
    /// Holds the connection open, doing nothing, until the server is dropped (a frozen peer).
    Freeze,
    /// Closes the connection. With unread request bytes still queued the kernel sends a reset (RST);
    /// otherwise a FIN.
    Close,
}

/// What the server does with one request.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Reply {
    /// These steps.
    pub fn steps(steps: impl IntoIterator<Item = Step>) -> Reply {
        Reply {
            steps: steps.into_iter().collect(),
        }
    }

    /// Reads the body, then writes a complete response with `Content-Length`.
    pub fn respond(status: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Reply {
        Reply::steps([Step::ReadBody, Step::Write(response(status, headers, body))])
    }
}

/// Formats a complete HTTP/1.1 response: `status` is the status line's tail (`"200 OK"`), a
/// `Content-Length` is added.
pub fn response(status: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Vec<u8> {
    let body = body.as_ref();
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A running hostile server; stops (and unfreezes every connection) when dropped.
pub struct HostileServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

type Script = dyn Fn(&Request) -> Reply + Send + Sync;

impl HostileServer {
    /// Starts on an ephemeral loopback port; `script` decides what each request gets.
    pub fn start(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let workers: Arc<Mutex<Vec<JoinHandle<()>>>> = Default::default();
        let script: Arc<Script> = Arc::new(script);
        let accept = {
            let (stop, requests, connections, workers) = (
                stop.clone(),
                requests.clone(),
                connections.clone(),
                workers.clone(),
            );
            std::thread::Builder::new()
                .name("hostile-accept".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        connections.fetch_add(1, Ordering::SeqCst);
                        let (stop, requests, script) =
                            (stop.clone(), requests.clone(), script.clone());
                        let handle = std::thread::spawn(move || {
                            let _ = serve(stream, &*script, &stop, &requests);
                        });
                        workers
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(handle);
                    }
                })?
        };
        Ok(HostileServer {
            addr,
            stop,
            requests,
            connections,
            accept: Some(accept),
            workers,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many request heads were received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for h in workers {
            let _ = h.join();
        }
    }
}

/// Sleeps `d`, waking early when the server stops; false when it stopped.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Reads a request head (at most 64 KiB); `None` at end of stream.
fn read_head(r: &mut BufReader<TcpStream>, stop: &AtomicBool) -> io::Result<Option<Request>> {
    let mut head = Request::default();
    let mut total = 0;
    let mut first = true;
    loop {
        let mut line = String::new();
        let n = loop {
            match r.read_line(&mut line) {
                Ok(n) => break n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if total > 64 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if first {
            let mut parts = line.split(' ');
            head.method = parts.next().unwrap_or("").to_string();
            head.target = parts.next().unwrap_or("").to_string();
            first = false;
        } else if line.is_empty() {
            return Ok(Some(head));
        } else if let Some((n, v)) = line.split_once(':') {
            head.headers
                .push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Writes everything, retrying write timeouts until the server stops (then gives up quietly).
fn write_all(w: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> io::Result<()> {
    while !bytes.is_empty() {
        match w.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve(
    stream: TcpStream,
    script: &Script,
    stop: &AtomicBool,
    requests: &AtomicUsize,
) -> io::Result<()> {
    // Short read timeouts so that a waiting connection notices the server stopping.
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.set_write_timeout(Some(Duration::from_millis(100)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(mut req) = read_head(&mut reader, stop)? else {
            return Ok(());
        };
        req.number = requests.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = script(&req);
        for step in reply.steps {
            match step {
                Step::ReadBody => {
                    let mut left = req.content_length();
                    let mut buf = [0u8; 64 * 1024];
                    while left > 0 {
                        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                        match reader.read(&mut buf[..want]) {
                            Ok(0) => return Ok(()),
                            Ok(n) => left -= n as u64,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                ) =>
                            {
                                if stop.load(Ordering::SeqCst) {
                                    return Ok(());
                                }
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Step::DripRead { every } => {
                    let mut left = req.content_length();
                    let mut one = [0u8; 1];
                    while left > 0 {
                        if !pause(every, stop) {
                            return Ok(());
                        }
                        match reader.read(&mut one) {
                            Ok(0) => return Ok(()),
                            Ok(_) => left -= 1,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                ) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Step::Write(bytes) => write_all(&mut writer, &bytes, stop)?,
                Step::Drip { bytes, every } => {
                    for b in bytes {
                        if !pause(every, stop) {
                            return Ok(());
                        }
                        write_all(&mut writer, &[b], stop)?;
                    }
                }
                Step::Flood { fill, total } => {
                    let chunk = vec![fill; 64 * 1024];
                    let mut left = total;
                    while left > 0 {
                        if stop.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                        write_all(&mut writer, &chunk[..n], stop)?;
                        left -= n as u64;
                    }
                }
                Step::Sleep(d) => {
                    if !pause(d, stop) {
                        return Ok(());
                    }
                }
                Step::Freeze => {
                    while pause(Duration::from_secs(1), stop) {}
                    return Ok(());
                }
                Step::Close => {
                    let _ = writer.flush();
                    drop(writer);
                    drop(reader);
                    return Ok(());
                }
            }
        }
        writer.flush()?;
    }
}
