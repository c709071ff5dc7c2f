//! The local COS-compatible server: [`Server`], [`ServerBuilder`], request counters and stored-object views.
//!
//! It speaks the upload subset of the COS XML API described in the crate docs, verifies every request's
//! signature with `cos_core::auth`, and can inject faults ([`crate::FaultPlan`]).

mod buckets;
mod caseio;
mod cors;
mod form;
mod list;
mod log;
mod mime;
mod objects;
mod ops;
pub mod policy;
mod route;
mod sigv;
mod store;
mod subres;
mod throttle;
mod tls;
mod util;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cos_core::ops::CorsConfiguration;
use cos_core::Credentials;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::faults::{Fault, FaultHandle, FaultPlan, FaultState};
pub use cors::{dev_rule as dev_cors_rule, DEV_EXPOSE_HEADERS};
pub use log::RequestLog;
use store::Store;
pub(crate) use util::Body;
use util::{el, http_date, random_hex, unix_secs};

/// A request body as the handlers read it: hyper's, or whole bytes from [`MemoryServer::handle`].
pub(crate) type ReqBody =
    http_body_util::combinators::BoxBody<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// The default bucket.
pub const DEFAULT_BUCKET: &str = "examplebucket-1250000000";
/// The default SecretId.
pub const DEFAULT_SECRET_ID: &str = "AKIDEXAMPLE";
/// The default SecretKey.
pub const DEFAULT_SECRET_KEY: &str = "testkit-secret";

/// Configures and starts a [`Server`].
///
/// ```
/// use cos_testkit::Server;
/// let server = Server::builder()
///     .bucket("mybucket-1250000000")
///     .credentials("AKIDTEST", "secret")
///     .start_blocking()?;
/// assert!(server.endpoint().starts_with("http://127.0.0.1:"));
/// assert_eq!(server.bucket(), "mybucket-1250000000");
/// server.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    bucket: String,
    secret_id: String,
    secret_key: String,
    security_token: Option<String>,
    data_dir: Option<PathBuf>,
    faults: FaultPlan,
    sink: bool,
    addr: SocketAddr,
    cors: Option<CorsConfiguration>,
    log: Option<RequestLog>,
    tls: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            bucket: DEFAULT_BUCKET.into(),
            secret_id: DEFAULT_SECRET_ID.into(),
            secret_key: DEFAULT_SECRET_KEY.into(),
            security_token: None,
            data_dir: None,
            faults: FaultPlan::new(),
            sink: false,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cors: None,
            log: None,
            tls: false,
        }
    }
}

impl ServerBuilder {
    /// The bucket served (default `examplebucket-1250000000`).
    pub fn bucket(mut self, b: &str) -> Self {
        self.bucket = b.to_string();
        self
    }

    /// The only accepted key pair (default `("AKIDEXAMPLE", "testkit-secret")`).
    pub fn credentials(mut self, id: &str, key: &str) -> Self {
        self.secret_id = id.to_string();
        self.secret_key = key.to_string();
        self
    }

    /// Requires every request to carry this `x-cos-security-token` (header, or query parameter of a presigned
    /// URL), as temporary credentials do. Without it the header is ignored.
    pub fn security_token(mut self, token: &str) -> Self {
        self.security_token = Some(token.to_string());
        self
    }

    /// Keeps objects and uploads on disk in `dir` (bodies streamed to temp files then renamed; metadata written
    /// atomically), so that they survive a restart. Without it everything is in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The faults to inject (none by default).
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = plan;
        self
    }

    /// Sink mode: bodies are checked (length, `Content-MD5`) and hashed, then discarded. Objects keep their
    /// size, ETag and CRC64; `GET` answers 501.
    pub fn sink(mut self, on: bool) -> Self {
        self.sink = on;
        self
    }

    /// Serves HTTPS with a certificate for `localhost` and `127.0.0.1` signed by a test CA generated at
    /// start; clients trust it through [`Server::ca_pem`] (`Config::with_ca_pem`). Off by default.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Starts with this bucket CORS configuration (replacing one kept in the data directory). Without it the
    /// bucket has the rules last set with `PUT /?cors` (kept with [`ServerBuilder::data_dir`]), or none, so
    /// browsers on other origins are refused as an unconfigured COS bucket refuses them.
    pub fn cors(mut self, config: CorsConfiguration) -> Self {
        self.cors = Some(config);
        self
    }

    /// Starts with the permissive development rule [`dev_cors_rule`]: any origin, the upload methods, any
    /// header, and `ETag`, `x-cos-request-id`, … exposed (`cos-testkit serve --cors dev`).
    pub fn cors_dev(self) -> Self {
        self.cors(CorsConfiguration::new(vec![dev_cors_rule()]))
    }

    /// Writes one JSON line per request to `log` (`cos-testkit serve --log FILE|-`): time, method, operation,
    /// key, status, bytes in and out, duration, request id, error code, origin.
    pub fn request_log(mut self, log: RequestLog) -> Self {
        self.log = Some(log);
        self
    }

    fn into_inner(self) -> io::Result<Arc<Inner>> {
        let buckets = buckets::load(self.data_dir.as_ref(), self.sink)?;
        let tls = if self.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        Ok(Arc::new(Inner {
            tls,
            cors: cors::CorsState::open(self.data_dir.as_deref(), self.cors)?,
            log: self.log,
            store: Arc::new(Store::open(self.data_dir.clone(), self.sink)?),
            buckets: Mutex::new(buckets),
            data_dir: self.data_dir,
            creds: Credentials::new(self.secret_id, self.secret_key),
            bucket: self.bucket,
            token: std::sync::RwLock::new(self.security_token),
            counters: Mutex::new(Counters::default()),
            faults: Arc::new(Mutex::new(FaultState::new(self.faults))),
            seq: AtomicU64::new(0),
        }))
    }

    /// The server's request handling without sockets, called as a function (see [`MemoryServer`]). Request
    /// and upload ids come from `id_seed`, so that a run can be replayed exactly.
    pub fn in_memory(self, id_seed: u64) -> io::Result<MemoryServer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        Ok(MemoryServer {
            inner: self.into_inner()?,
            rt,
            ids: std::cell::Cell::new(id_seed),
        })
    }

    /// Starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<Server> {
        let addr = self.addr;
        let inner = self.into_inner()?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, inner.clone(), rx));
        Ok(Server {
            inner,
            addr,
            shutdown: tx,
            thread: None,
        })
    }

    /// Starts serving on a runtime of its own, in a background thread (usable from any context).
    pub fn start_blocking(self) -> io::Result<Server> {
        let addr = self.addr;
        let inner = self.into_inner()?;
        let (tx, rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let inner2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("cos-testkit-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match TcpListener::bind(addr)
                        .await
                        .and_then(|l| Ok((l.local_addr()?, l)))
                    {
                        Ok((a, l)) => {
                            let _ = ready_tx.send(Ok(a));
                            accept_loop(l, inner2, rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| io::Error::other("server thread ended"))??;
        Ok(Server {
            inner,
            addr,
            shutdown: tx,
            thread: Some(thread),
        })
    }
}

/// The server's request handling as a function `http::Request<Bytes> -> http::Response<Bytes>` over its
/// store, with no sockets: for deterministic simulations that supply their own clock.
///
/// ```
/// use std::time::SystemTime;
/// use cos_testkit::Server;
/// let server = Server::builder().in_memory(7)?;
/// let req = http::Request::get("http://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/nothing")
///     .body(bytes::Bytes::new())
///     .unwrap();
/// let resp = server.handle(req, SystemTime::now())?;
/// assert_eq!(resp.status(), 403); // unsigned
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MemoryServer {
    inner: Arc<Inner>,
    rt: tokio::runtime::Runtime,
    ids: std::cell::Cell<u64>,
}

impl std::fmt::Debug for MemoryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryServer")
            .field("bucket", &self.inner.bucket)
            .finish_non_exhaustive()
    }
}

impl MemoryServer {
    /// Serves one request as if the server's clock read `now`; the body is read whole. `Err` is a connection
    /// failure (an injected reset); faults of the builder's [`FaultPlan`] apply as over TCP (a stall really
    /// sleeps).
    pub fn handle(
        &self,
        req: http::Request<bytes::Bytes>,
        now: SystemTime,
    ) -> io::Result<http::Response<bytes::Bytes>> {
        let req = req.map(|b| {
            http_body_util::Full::new(b)
                .map_err(|never| match never {})
                .boxed()
        });
        let _ids = util::SeededIds::enter(&self.ids);
        self.rt.block_on(async {
            let r = handle_at(self.inner.clone(), req, now).await?;
            let (parts, body) = r.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(http::Response::from_parts(parts, body))
        })
    }

    /// The bucket served.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// Credentials that this server accepts.
    pub fn credentials(&self) -> Credentials {
        self.inner.credentials()
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> Counters {
        self.inner.counters()
    }

    /// The stored object at `key`, content included.
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.inner.object(key)
    }

    /// Keys of all stored objects, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.inner.keys()
    }

    /// Unfinished multipart uploads as `(key, upload id)`, sorted by key then id.
    pub fn multipart_uploads(&self) -> Vec<(String, String)> {
        self.inner.multipart_uploads()
    }
}

/// Request counts per operation name (`"PutObject"`, `"UploadPart"`, …), faulted requests included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// All requests.
    pub total: u64,
    /// Requests per operation name.
    pub by_operation: BTreeMap<String, u64>,
}

impl Counters {
    /// The count for one operation (0 when never seen).
    pub fn get(&self, op: &str) -> u64 {
        self.by_operation.get(op).copied().unwrap_or(0)
    }
}

/// Whether an object was written whole or by appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectType {
    /// PUT, POST form or multipart upload.
    Normal,
    /// Created by Append Object.
    Appendable,
}

/// A stored object, as [`Server::object`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredObject {
    /// The key.
    pub key: String,
    /// Length in bytes.
    pub size: u64,
    /// Quoted ETag (MD5, or `"<md5>-<parts>"` for multipart).
    pub etag: String,
    /// CRC-64/XZ of the content.
    pub crc64: u64,
    /// The content (read whole into memory); `None` in sink mode.
    pub data: Option<Vec<u8>>,
    /// `Content-Type`.
    pub content_type: String,
    /// `x-cos-meta-*` values by name without the prefix, lower-case.
    pub metadata: BTreeMap<String, String>,
    /// All stored headers (content headers, `x-cos-meta-*`, SSE), names lower-case.
    pub headers: Vec<(String, String)>,
    /// Storage class, upper-case (`STANDARD` by default).
    pub storage_class: String,
    /// Normal or appendable.
    pub object_type: ObjectType,
    /// Last write.
    pub last_modified: SystemTime,
}

pub(crate) struct Inner {
    /// The configured bucket (always exists; served for hosts that name no bucket).
    bucket: String,
    creds: Credentials,
    token: std::sync::RwLock<Option<String>>,
    /// The configured bucket's objects.
    store: Arc<Store>,
    /// Buckets created with PUT Bucket.
    buckets: buckets::Buckets,
    data_dir: Option<PathBuf>,
    /// The test CA and acceptor, when serving HTTPS.
    tls: Option<tls::TestTls>,
    counters: Mutex<Counters>,
    faults: Arc<Mutex<FaultState>>,
    seq: AtomicU64,
    cors: cors::CorsState,
    log: Option<RequestLog>,
}

impl Inner {
    /// The security token required now, if any.
    pub(crate) fn token(&self) -> Option<String> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The accepted credentials, with the security token required now (if any).
    pub(crate) fn credentials(&self) -> Credentials {
        match self.token() {
            Some(t) => self.creds.clone().with_security_token(t),
            None => self.creds.clone(),
        }
    }

    fn counters(&self) -> Counters {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The stored object at `key`, content included (read whole: meant for tests).
    pub(crate) fn object(&self, key: &str) -> Option<StoredObject> {
        let obj = self.store.lock().objects.get(key).cloned()?;
        let m = obj.meta;
        let data = self.store.read_all(&obj.data, m.size);
        let metadata = m
            .attrs
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("x-cos-meta-")?.to_string(), v.clone())))
            .collect();
        Some(StoredObject {
            key: m.key,
            size: m.size,
            etag: m.etag,
            crc64: m.crc64,
            data,
            content_type: m.attrs.content_type,
            metadata,
            headers: m.attrs.headers,
            storage_class: m.attrs.storage_class,
            object_type: if m.appendable {
                ObjectType::Appendable
            } else {
                ObjectType::Normal
            },
            last_modified: UNIX_EPOCH + Duration::from_secs(m.last_modified),
        })
    }

    /// Keys of all stored objects, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.store.lock().objects.keys().cloned().collect()
    }

    /// Unfinished multipart uploads as `(key, upload id)`, sorted by key then id.
    pub(crate) fn multipart_uploads(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .store
            .lock()
            .uploads
            .values()
            .map(|u| (u.meta.key.clone(), u.meta.upload_id.clone()))
            .collect();
        v.sort();
        v
    }
}

/// A running local COS server. Stops when dropped.
pub struct Server {
    inner: Arc<Inner>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("bucket", &self.inner.bucket)
            .field("secret_id", &self.inner.creds.secret_id())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` when serving TLS.
    pub fn endpoint(&self) -> String {
        match &self.inner.tls {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The test CA certificate (PEM) a client must trust to reach this server over TLS; `None` for plain
    /// HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.inner.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bucket served.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The accepted SecretId.
    pub fn secret_id(&self) -> &str {
        self.inner.creds.secret_id()
    }

    /// The accepted SecretKey.
    pub fn secret_key(&self) -> &str {
        self.inner.creds.secret_key()
    }

    /// Credentials that this server accepts.
    pub fn credentials(&self) -> Credentials {
        self.inner.credentials()
    }

    /// Replaces the security token every request must carry from now on (`None`: no token needed), as when
    /// temporary credentials are rotated: requests with the old token are refused with 403
    /// `InvalidAccessKeyId`.
    pub fn set_security_token(&self, token: Option<&str>) {
        *self.inner.token.write().unwrap_or_else(|e| e.into_inner()) = token.map(str::to_string);
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> Counters {
        self.inner.counters()
    }

    /// Changes the fault plan while the server runs.
    pub fn faults(&self) -> FaultHandle {
        FaultHandle(self.inner.faults.clone())
    }

    /// The stored object at `key`, content included (read whole: meant for tests).
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.inner.object(key)
    }

    /// The bucket's CORS configuration now (`None`: browsers on other origins are refused).
    pub fn cors(&self) -> Option<CorsConfiguration> {
        self.inner.cors.get()
    }

    /// Keys of all stored objects, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.inner.keys()
    }

    /// Unfinished multipart uploads as `(key, upload id)`, sorted by key then id.
    pub fn multipart_uploads(&self) -> Vec<(String, String)> {
        self.inner.multipart_uploads()
    }

    /// Names of the buckets created with PUT Bucket (the configured bucket not included), sorted.
    pub fn created_buckets(&self) -> Vec<String> {
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Stops the server (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    inner: Arc<Inner>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            match inner.tls.as_ref().map(|t| t.acceptor.clone()) {
                None => serve_connection(stream, inner, &mut shutdown).await,
                Some(acceptor) => {
                    let accepted = tokio::select! {
                        _ = shutdown.changed() => return,
                        r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => r,
                    };
                    // A client that does not trust the test CA fails the handshake: nothing to serve.
                    if let Ok(Ok(stream)) = accepted {
                        serve_connection(stream, inner, &mut shutdown).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection (plain TCP or TLS) until it closes or the server stops.
async fn serve_connection<S>(stream: S, inner: Arc<Inner>, shutdown: &mut watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    {
        {
            let heads = caseio::HeadQueue::default();
            let io = TokioIo::new(caseio::CaseIo::new(stream, heads.clone()));
            let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                heads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back(req.method() == Method::HEAD);
                handle(inner.clone(), req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .serve_connection(io, svc);
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = conn => {}
            }
        }
    }
}

/// A COS error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Extra elements (`StringToSign`, `FormatString`).
    pub extra: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            extra: Vec::new(),
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, "InternalError", format!("cos-testkit: {e}"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidArgument", message)
    }

    /// The error a [`Fault::Status`] injects.
    fn for_status(status: u16) -> ApiError {
        let code = match status {
            400 => "InvalidArgument",
            403 => "AccessDenied",
            404 => "NoSuchKey",
            408 => "RequestTimeout",
            409 => "OperationConflict",
            429 => "TooManyRequests",
            501 => "NotImplemented",
            502 => "BadGateway",
            503 => "SlowDown",
            504 => "GatewayTimeout",
            s if s >= 500 => "InternalError",
            _ => "InvalidRequest",
        };
        ApiError::new(
            status,
            code,
            format!("cos-testkit injected fault: status {status}"),
        )
    }
}

impl From<io::Error> for ApiError {
    fn from(e: io::Error) -> Self {
        ApiError::internal(e)
    }
}

/// One request being served.
pub(crate) struct Ctx {
    pub inner: Arc<Inner>,
    /// The bucket the request names (from its host; the configured one by default).
    pub bucket: String,
    /// Whether that bucket exists; when not, `store` is the configured bucket's and must not be used.
    pub bucket_exists: bool,
    /// The bucket's objects.
    pub store: Arc<Store>,
    pub method: Method,
    pub headers: http::HeaderMap,
    pub body: Option<ReqBody>,
    /// The decoded key (`Err` when the path does not decode).
    pub key: Result<String, ()>,
    pub query: Vec<(String, String)>,
    /// The query string does not decode (`uploadId=%zz`): answered 400 `InvalidURI`, as COS does.
    pub bad_query: bool,
    pub raw_path: String,
    pub host: String,
    pub request_id: String,
    pub now: u64,
}

impl Ctx {
    fn new(inner: Arc<Inner>, req: http::Request<ReqBody>, now: SystemTime) -> Ctx {
        let (parts, body) = req.into_parts();
        let raw_path = parts.uri.path().to_string();
        let key = cos_core::auth::decode(raw_path.strip_prefix('/').unwrap_or(&raw_path)).ok_or(());
        let parsed = cos_core::auth::parse_query(parts.uri.query().unwrap_or(""));
        let bad_query = parsed.is_none();
        let query = parsed.unwrap_or_default();
        let host = parts
            .headers
            .get(http::header::HOST)
            .map(sigv::header_str)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let bucket = buckets::bucket_of_host(&host).unwrap_or_else(|| inner.bucket.clone());
        let found = buckets::find(&inner, &bucket);
        Ctx {
            bucket,
            bucket_exists: found.is_some(),
            store: found.unwrap_or_else(|| inner.store.clone()),
            inner,
            method: parts.method,
            headers: parts.headers,
            body: Some(body),
            key,
            query,
            bad_query,
            raw_path,
            host,
            request_id: random_hex(2),
            now: unix_secs(now),
        }
    }

    /// A query parameter's value.
    pub(crate) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header's value (lossy UTF-8).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(sigv::header_str)
    }

    fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// What routing sees of this request.
    pub(crate) fn route_input(&self) -> route::RouteInput<'_> {
        route::RouteInput {
            method: &self.method,
            bucket_level: self.key.as_ref().map(|k| k.is_empty()).unwrap_or(false),
            query: &self.query,
            headers: &self.headers,
        }
    }

    /// The operation name, as counted.
    fn operation(&self) -> &'static str {
        route::operation(&self.route_input())
    }

    /// The error XML response.
    pub(crate) fn error_response(&self, e: ApiError) -> Response<Body> {
        let trace = random_hex(3);
        let mut xml = String::from("<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n");
        for (n, v) in [
            ("Code", e.code.as_str()),
            ("Message", e.message.as_str()),
            ("Resource", &format!("{}{}", self.host, self.raw_path)),
            ("RequestId", &self.request_id),
            ("TraceId", &trace),
        ] {
            xml.push('\t');
            xml.push_str(&el(n, v));
            xml.push('\n');
        }
        for (n, v) in &e.extra {
            xml.push('\t');
            xml.push_str(&el(n, v));
            xml.push('\n');
        }
        xml.push_str("</Error>");
        let body = if self.method == Method::HEAD {
            Body::empty()
        } else {
            Body::bytes(xml)
        };
        let mut r = Response::new(body);
        *r.status_mut() =
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        if let Ok(v) = HeaderValue::from_str(&trace) {
            h.insert("x-cos-trace-id", v);
        }
        r.extensions_mut().insert(log::ErrorCode(e.code));
        r
    }

    /// Reads and drops what is left of the request body, so that the client sees our answer rather than a
    /// reset (unless it waits for `100 Continue`, in which case hyper closes the connection).
    async fn drain(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        if self.expects_continue() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
    }

    fn finish(&self, mut r: Response<Body>) -> Response<Body> {
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            h.insert("x-cos-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&http_date(self.now)) {
            h.insert("date", v);
        }
        h.insert("server", HeaderValue::from_static("tencent-cos"));
        r
    }
}

async fn handle(
    inner: Arc<Inner>,
    req: http::Request<Incoming>,
) -> Result<Response<Body>, io::Error> {
    let req = req.map(|b| b.map_err(Into::into).boxed());
    handle_at(inner, req, SystemTime::now()).await
}

/// Serves one request as if the server's clock read `now`.
async fn handle_at(
    inner: Arc<Inner>,
    req: http::Request<ReqBody>,
    now: SystemTime,
) -> Result<Response<Body>, io::Error> {
    let started = Instant::now();
    let mut ctx = Ctx::new(inner.clone(), req, now);
    // CORS (issue 12): cors.rs names OPTIONS and `?cors` requests, answers them (see `serve`), and adds
    // `Access-Control-*` headers to every answer; log.rs writes the request log.
    let op = cors::operation(&ctx).unwrap_or_else(|| ctx.operation());
    let seen = inner.log.as_ref().map(|_| log::Seen::of(&ctx, op));
    let mut result = serve(&inner, &mut ctx, op).await;
    if let Ok(r) = &mut result {
        cors::decorate(&ctx, r);
    }
    if let (Some(seen), Some(log)) = (seen, &inner.log) {
        seen.record(log, &result, started.elapsed());
    }
    result
}

async fn serve(
    inner: &Arc<Inner>,
    ctx: &mut Ctx,
    op: &'static str,
) -> Result<Response<Body>, io::Error> {
    let seq = inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut c = inner.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.total += 1;
        *c.by_operation.entry(op.to_string()).or_default() += 1;
    }
    let fault = inner
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .decide(seq, op);
    tracing::debug!(op, seq, ?fault, method = %ctx.method, path = %ctx.raw_path, "request");
    let mut truncate = false;
    match fault {
        None => {}
        Some(Fault::Reset) => {
            if let Some(mut b) = ctx.body.take() {
                if !ctx.expects_continue() {
                    let _ = tokio::time::timeout(Duration::from_millis(500), b.frame()).await;
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "cos-testkit injected reset",
            ));
        }
        Some(Fault::Stall(d)) => tokio::time::sleep(d).await,
        Some(Fault::Status(s)) => {
            ctx.drain().await;
            let r = ctx.error_response(ApiError::for_status(s));
            return Ok(ctx.finish(r));
        }
        Some(Fault::SlowDown) => {
            ctx.drain().await;
            let r = ctx.error_response(ApiError::new(
                503,
                "SlowDown",
                "Please reduce your request rate.",
            ));
            return Ok(ctx.finish(r));
        }
        Some(Fault::Html502) => {
            ctx.drain().await;
            let page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
            let mut r = Response::new(if ctx.method == Method::HEAD {
                Body::empty()
            } else {
                Body::bytes(page)
            });
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/html"));
            r.headers_mut()
                .insert("server", HeaderValue::from_static("nginx"));
            return Ok(r);
        }
        Some(Fault::TruncatedBody) => truncate = true,
    }
    // CORS (issue 12): cors.rs answers OPTIONS and `?cors`; every other operation is in ops.rs.
    let answer = if ctx.bad_query {
        Err(ApiError::new(
            400,
            "InvalidURI",
            "Couldn't parse the specified URI: the query string does not decode.",
        ))
    } else {
        match cors::dispatch(ctx, op).await {
            Some(a) => a,
            None => ops::dispatch(ctx, op).await,
        }
    };
    let r = match answer {
        Ok(r) => r,
        Err(e) => ctx.error_response(e),
    };
    ctx.drain().await;
    let r = ctx.finish(r);
    if truncate {
        if ctx.method == Method::HEAD {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "cos-testkit injected truncation",
            ));
        }
        return Ok(truncated(r));
    }
    Ok(r)
}

/// Sends the head with the full length and only half of the body, then fails the connection.
fn truncated(r: Response<Body>) -> Response<Body> {
    let (mut parts, body) = r.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| http_body::Body::size_hint(&body).exact())
        .unwrap_or(0);
    let send = declared / 2;
    let declared = declared.max(1);
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(declared));
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut body = body;
        let mut left = send;
        while left > 0 {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(mut d) = f.into_data() {
                        d.truncate(left.min(d.len() as u64) as usize);
                        left -= d.len() as u64;
                        if tx.send(Ok(d)).await.is_err() {
                            return;
                        }
                    }
                }
                _ => break,
            }
        }
        // Let hyper flush what was sent before the failure closes the connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx
            .send(Err(io::Error::other("cos-testkit injected truncation")))
            .await;
    });
    Response::from_parts(parts, Body::Chan(rx))
}

/// A 200/204 response with headers.
pub(crate) fn respond(status: u16, body: Body, headers: &[(&str, String)]) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (k, v) in headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            r.headers_mut().append(n, v);
        }
    }
    r
}

/// An XML response.
pub(crate) fn xml_response(xml: String) -> Response<Body> {
    let mut body = String::from("<?xml version='1.0' encoding='utf-8' ?>\n");
    body.push_str(&xml);
    respond(
        200,
        Body::bytes(body),
        &[("content-type", "application/xml".into())],
    )
}
