//! The driver conformance suite: every transfer scenario, written once against [`Driver`], run against both
//! clients (see `tests/drivers.rs`) over loopback TCP to the testkit server.

#![allow(dead_code)]

pub mod download;
pub mod fixtures;
pub mod get_object;
pub mod objects;
pub mod post;
pub mod queue;
pub mod replay;
pub mod requests;
pub mod tagging_acl;
pub mod transfers;
pub mod wire;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::Ops;
use bytes::Bytes;
use cos_core::checksum::{md5_hex, Crc64};
use cos_core::credentials::ProvideCredentials;
use cos_core::download::{DownloadOptions, FileDownload};
use cos_core::ops::{GetObject, ListObjects, ListObjectsOutput, ObjectInfo, ObjectOptions};
use cos_core::post_policy::{PostForm, PostPolicy};
use cos_core::task::{Event, Task};
use cos_core::upload::{
    BatchOptions, Checkpoint, FileUpload, Progress, TaskId, TaskState, UploadOptions,
    UploadOutcome, Waited,
};
use cos_core::{Config, Credentials, Endpoint, Error, InvalidInput};
use cos_testkit::{Fault, FaultPlan, Server};

/// A request body, made into each client's `Body` by its adapter.
#[derive(Debug)]
pub enum Payload {
    /// `Body::from(Bytes)`.
    Bytes(Bytes),
    /// `Body::file(path)`.
    File(PathBuf),
    /// `Body::file_range(path, offset, len)`.
    FileRange(PathBuf, u64, u64),
    /// `Body::reader(reader, len)`: a reader that hands out `data`, then fails with "disk on fire" if
    /// `fail` (a body that cannot be replayed).
    Reader {
        /// What it reads.
        data: Vec<u8>,
        /// The length declared.
        len: u64,
        /// Whether it fails after `data`.
        fail: bool,
    },
}

impl Payload {
    /// `Body::file(path)`.
    pub fn file(path: impl Into<PathBuf>) -> Payload {
        Payload::File(path.into())
    }
    /// `Body::file_range(path, offset, len)`.
    pub fn file_range(path: impl Into<PathBuf>, offset: u64, len: u64) -> Payload {
        Payload::FileRange(path.into(), offset, len)
    }
    /// `Body::reader` over these bytes, with this declared length.
    pub fn reader(data: impl Into<Vec<u8>>, len: u64) -> Payload {
        Payload::Reader {
            data: data.into(),
            len,
            fail: false,
        }
    }
    /// `Body::reader` that fails at once, with this declared length.
    pub fn failing_reader(len: u64) -> Payload {
        Payload::Reader {
            data: Vec::new(),
            len,
            fail: true,
        }
    }
}

macro_rules! payload_from {
    ($($t:ty),*) => {
        $(impl From<$t> for Payload {
            fn from(b: $t) -> Payload {
                Payload::Bytes(b.into())
            }
        })*
    };
}
payload_from!(Bytes, Vec<u8>, &'static str, &'static [u8]);

/// The reader behind [`Payload::Reader`].
pub struct PayloadReader {
    data: io::Cursor<Vec<u8>>,
    fail: bool,
}

impl PayloadReader {
    /// Reads `data`, then fails if `fail`.
    pub fn new(data: Vec<u8>, fail: bool) -> PayloadReader {
        PayloadReader {
            data: io::Cursor::new(data),
            fail,
        }
    }
}

impl Read for PayloadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 if self.fail => Err(io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

/// A task as a queue lists it (the fields both clients' `TaskInfo` share).
#[derive(Clone, Debug)]
pub struct Info {
    /// Its id.
    pub id: TaskId,
    /// Where it stands.
    pub state: TaskState,
    /// The last progress report.
    pub progress: Option<Progress>,
    /// The error that ended it.
    pub error: Option<Error>,
}

/// An event callback.
pub type OnEvent = Arc<dyn Fn(&Event) + Send + Sync>;

/// What a client is built with beyond its config (each client's `ClientBuilder`).
#[derive(Default)]
pub struct Options {
    /// `on_event`.
    pub on_event: Option<OnEvent>,
    /// `read_timeout`.
    pub read_timeout: Option<Duration>,
    /// `credentials_provider`.
    pub credentials: Option<Arc<dyn ProvideCredentials>>,
    /// `responder` (answers from recorded exchanges, no network).
    pub responder: Option<Arc<dyn cos_core::fixture::ExchangeResponder>>,
    /// `recorder` (records every exchange).
    pub recorder: Option<Arc<dyn cos_core::fixture::ExchangeRecorder>>,
}

/// The body of a streamed GET (`get_object_reader` for blocking, `get_object_stream` for async).
pub trait ObjectBody: Read + std::fmt::Debug {
    /// The object's headers.
    fn info(&self) -> &ObjectInfo;
    /// `(first, last, total)` of a ranged GET.
    fn range(&self) -> Option<(u64, u64, u64)>;
    /// Bytes received so far.
    fn received(&self) -> u64;
}

/// What a client offers, called synchronously: its one-request calls ([`Ops`]) and its transfers.
pub trait Driver: Ops + Sized {
    /// Its queue.
    type Queue: Queue;
    /// `blocking` or `async`.
    const NAME: &'static str;
    /// A client for `config` built with `options`.
    fn build_with(config: Config, options: Options) -> Self;
    /// A client for `config`, reporting events to `on_event`.
    fn build(config: Config, on_event: Option<OnEvent>) -> Self {
        Self::build_with(
            config,
            Options {
                on_event,
                ..Options::default()
            },
        )
    }
    /// `Client::config` (with the clock offset learned so far).
    fn config(&self) -> Config;
    /// `Client::run` with a task reading `data` from memory (each client's own `Source` trait).
    fn run_in_memory<T: Task + Send>(&self, task: T, data: Vec<u8>) -> Result<T::Output, Error>
    where
        T::Output: Send;
    /// `Client::presigned_url`.
    fn presigned_url(
        &self,
        method: http::Method,
        key: &str,
        expires_in: Duration,
    ) -> Result<http::Uri, Error>;
    /// `Client::sign_post_policy`.
    fn sign_post_policy(&self, policy: &PostPolicy) -> Result<PostForm, Error>;
    /// `Client::upload_file`.
    fn upload_file(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error>;
    /// `Client::upload_stream` (the async client reads it through an `AsyncRead`).
    fn upload_stream(
        &self,
        reader: Box<dyn Read + Send + '_>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error>;
    /// A stream of byte chunks of any size (`upload_byte_stream` for async; a reader handing out the chunks
    /// for blocking).
    fn upload_chunks(
        &self,
        chunks: Vec<Bytes>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error>;
    /// `Client::upload_files`.
    fn upload_files(
        &self,
        files: Vec<FileUpload>,
        options: &BatchOptions,
    ) -> Vec<Result<UploadOutcome, Error>>;
    /// `Client::task_queue`.
    fn task_queue(&self, file_parallel: usize) -> Self::Queue;
    /// `Client::list_objects_pages`, as an iterator of pages.
    fn list_objects_pages(
        &self,
        op: ListObjects,
    ) -> Box<dyn Iterator<Item = Result<ListObjectsOutput, Error>> + '_>;
    /// A streamed GET Object.
    fn get_object_stream(&self, op: GetObject) -> Result<Box<dyn ObjectBody + '_>, Error>;
    /// `Client::download_file_with_progress` (see `download.rs`).
    fn download_file(
        &self,
        key: &str,
        path: &Path,
        options: &DownloadOptions,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Downloaded, Error>;
    /// `Client::download_files`.
    fn download_files(
        &self,
        files: &[FileDownload],
        options: &DownloadOptions,
        file_parallel: usize,
    ) -> Vec<Result<Downloaded, Error>>;
    /// `Client::download_queue`.
    fn download_queue(&self, file_parallel: usize) -> Box<dyn DownloadList>;
}

/// A download queue (`DownloadQueue`), called synchronously.
pub trait DownloadList {
    /// `DownloadQueue::add`.
    fn add(&self, key: &str, path: &Path, options: DownloadOptions) -> TaskId;
    /// `DownloadQueue::pause`.
    fn pause(&self, id: TaskId);
    /// `DownloadQueue::resume`.
    fn resume(&self, id: TaskId);
    /// `DownloadQueue::cancel`.
    fn cancel(&self, id: TaskId);
    /// `DownloadQueue::wait`.
    fn wait(&self, id: TaskId) -> Result<Downloaded, Error>;
    /// `DownloadQueue::wait_all`.
    fn wait_all(&self);
    /// `DownloadQueue::list`: state and bytes loaded of each task.
    fn list(&self) -> Vec<(TaskState, u64)>;
    /// `DownloadQueue::wait_timeout`.
    fn wait_timeout(&self, id: TaskId, timeout: Duration) -> Waited<Result<Downloaded, Error>>;
    /// `DownloadQueue::wait_all_timeout`.
    fn wait_all_timeout(&self, timeout: Duration) -> Waited<()>;
    /// `DownloadQueue::on_change` (the list itself is not passed on).
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>);
}

/// What a download did (the fields both clients' `DownloadOutcome` share).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes written.
    pub size: u64,
    /// GET requests sent.
    pub requests: usize,
    /// Bytes kept from a checkpoint.
    pub resumed: u64,
}

/// A task queue, called synchronously.
pub trait Queue {
    /// `TaskQueue::add`.
    fn add(&self, path: &Path, key: &str, options: UploadOptions) -> TaskId;
    /// `TaskQueue::pause`.
    fn pause(&self, id: TaskId);
    /// `TaskQueue::resume`.
    fn resume(&self, id: TaskId);
    /// `TaskQueue::cancel`.
    fn cancel(&self, id: TaskId);
    /// `TaskQueue::wait`.
    fn wait(&self, id: TaskId) -> Result<UploadOutcome, Error>;
    /// `TaskQueue::wait_all`.
    fn wait_all(&self);
    /// `TaskQueue::wait_timeout`.
    fn wait_timeout(&self, id: TaskId, timeout: Duration) -> Waited<Result<UploadOutcome, Error>>;
    /// `TaskQueue::wait_all_timeout`.
    fn wait_all_timeout(&self, timeout: Duration) -> Waited<()>;
    /// `TaskQueue::list`.
    fn list(&self) -> Vec<Info>;
    /// `TaskQueue::on_change` (the list itself is not passed on).
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>);
}

/// A reader handing out `chunks` one read at a time (at most one chunk per read).
pub struct ChunkReader(pub Vec<Bytes>);

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.0.first().is_some_and(|c| c.is_empty()) {
            self.0.remove(0);
        }
        let Some(first) = self.0.first_mut() else {
            return Ok(0);
        };
        let n = buf.len().min(first.len());
        buf[..n].copy_from_slice(&first.split_to(n));
        Ok(n)
    }
}

const MIB: usize = 1 << 20;

fn config(server: &Server, max_attempts: u32) -> Config {
    let mut c = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    c.retry.initial_backoff = Duration::from_millis(5);
    c.retry.max_backoff = Duration::from_millis(40);
    c.retry.max_attempts = max_attempts;
    c
}

fn client<D: Driver>(server: &Server, max_attempts: u32) -> D {
    D::build(config(server, max_attempts), None)
}

fn start<D: Driver>() -> (Server, D) {
    let server = Server::builder().start_blocking().unwrap();
    let client = client::<D>(&server, 4);
    (server, client)
}

fn slow_server(stall_ms: u64) -> Server {
    let plan = FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(stall_ms)), 1.0)
        .unwrap();
    Server::builder().faults(plan).start_blocking().unwrap()
}

/// A fresh directory for one test of one driver (removed when dropped).
pub struct TempDir(PathBuf);

impl TempDir {
    fn new<D: Driver>(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "cos-drivers-{}-{name}-{}",
            D::NAME,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes that differ from part to part (so that a misplaced part cannot go unnoticed).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            let x = i
                .wrapping_add(seed.wrapping_mul(0x2545_f491))
                .wrapping_mul(0x9e37_79b1);
            ((x ^ (x >> 15)).wrapping_mul(0x85eb_ca77) >> 24) as u8
        })
        .collect()
}

fn stored(server: &Server, key: &str) -> Vec<u8> {
    server
        .object(key)
        .unwrap_or_else(|| panic!("no object {key}"))
        .data
        .unwrap()
}

fn mib_parts() -> UploadOptions {
    UploadOptions::default().part_size(MIB as u64)
}

/// Waits until `f` holds (up to 20 s).
fn until(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lets requests dropped by a failed client reach the server before counting.
fn settle(server: &Server) {
    let mut last = server.counters();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = server.counters();
        if now == last {
            break;
        }
        last = now;
    }
}

/// Uploads `path` with every UploadPart from the 5th on reset (2 attempts per request, one part at a
/// time), so the upload fails after 4 parts. Returns the error.
fn crash_after_four_parts<D: Driver>(
    server: &Server,
    path: &Path,
    key: &str,
    options: &UploadOptions,
) -> Error {
    let client = client::<D>(server, 2);
    for n in 5..=40 {
        server.faults().fail_nth("UploadPart", n, Fault::Reset);
    }
    let e = client
        .upload_file(path, key, &options.clone().concurrency(1))
        .unwrap_err();
    server.faults().clear();
    settle(server);
    e
}
