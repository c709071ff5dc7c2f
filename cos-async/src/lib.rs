//! # cos-async: an async COS client
//!
//! A thin driver over [`cos_core`]: it sends the requests the core builds with hyper (hyper-util's pooled
//! keep-alive client, rustls with webpki roots) on tokio, streams file bodies in 256 KiB chunks while
//! computing their digest, and feeds the answers back. Every protocol decision (status codes, XML, retries,
//! clock-skew correction, integrity checks) is made by the core; `cos-blocking` offers the same API over
//! ureq.
//!
//! ```no_run
//! use cos_async::{Body, Client, Config, Credentials, ops::PutObject};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
//! let client = Client::new(config);
//! client.put_object(PutObject::new("notes/hello.txt").content_type("text/plain"), "hello").await?;
//! client.put_object(PutObject::new("big.bin"), Body::file("big.bin")?).await?; // streamed
//! # Ok(()) }
//! ```
//!
//! Transfers ([`transfer`]): [`Client::upload_file`] (a single PUT, or a resumable multipart upload with
//! parts sent in parallel and an atomic JSON checkpoint), [`Client::upload_stream`] and
//! [`Client::upload_byte_stream`] for data of unknown length, [`Client::upload_files`] for batches, and a
//! background [`TaskQueue`] with pause, resume and cancel. `cos-blocking` has the same API.
//!
//! Each request runs in a `cos_request` tracing span with the operation, method, path, attempt, status
//! and COS request id; the `Authorization` header and secrets are never logged.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod client;
mod download;
mod instance_role;
mod list;
mod network;
mod post;
mod presign;
mod queue;
pub use queue::{DownloadInfo, DownloadQueue};
pub mod transfer;
mod transport;

pub use body::{AsyncSource, Body, FileSource, NoSource, OpenFuture, SourceReader};
pub use client::{Client, ClientBuilder};
pub use download::{DownloadOutcome, DownloadProgress, ObjectStream};
pub use instance_role::{default_credentials_chain, instance_role_credentials};
pub use list::ListObjectsStream;
pub use transfer::{
    BatchOptions, FileDoneFn, FileUpload, Progress, ProgressFn, TaskId, TaskInfo, TaskQueue,
    TaskState, UploadOptions, UploadOutcome, Waited,
};

pub use cos_core::checksum::{BodyDigest, SentDigest};
pub use cos_core::config::Timeouts;
pub use cos_core::copy::{CopyOptions, CopyOutcome};
pub use cos_core::credentials::{
    EnvCredentials, ProvideCredentials, RefreshingCredentials, StaticCredentials,
};
pub use cos_core::download::{DownloadOptions, FileDownload};
pub use cos_core::error::{
    IntegrityError, ServiceError, TransportError, TransportErrorKind, UnexpectedResponse,
};
pub use cos_core::fixture::{ExchangeRecorder, ExchangeResponder};
pub use cos_core::instance_role::{ChainCredentials, InstanceRole};
pub use cos_core::ops;
pub use cos_core::post_policy::{PostForm, PostObjectOutput, PostPolicy};
pub use cos_core::retry::RetryPolicy;
pub use cos_core::task::{Event, Task};
pub use cos_core::{Bucket, Config, Credentials, Endpoint, Error, InvalidInput, Region};
