//! # cos-blocking: a blocking COS client
//!
//! A thin driver over [`cos_core`]: it sends the requests the core builds with [`ureq`] (rustls, pooled
//! keep-alive connections), streams file bodies while computing their digest, and feeds the answers back.
//! Every protocol decision (status codes, XML, retries, clock-skew correction, integrity checks) is made by
//! the core; `cos-async` offers the same API over hyper and tokio.
//!
//! ```no_run
//! use cos_blocking::{Body, Client, Config, Credentials, ops::PutObject};
//!
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
//! let client = Client::new(config);
//! client.put_object(PutObject::new("notes/hello.txt").content_type("text/plain"), "hello")?;
//! client.put_object(PutObject::new("big.bin"), Body::file("big.bin")?)?; // streamed, never read whole
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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

pub use body::{Body, FileSource, NoSource, Source};
pub use client::{Client, ClientBuilder};
pub use download::{DownloadOutcome, DownloadProgress, ObjectReader};
pub use instance_role::{default_credentials_chain, instance_role_credentials};
pub use list::ListObjectsIter;
pub use transfer::{
    BatchOptions, FileDoneFn, FileUpload, Progress, ProgressFn, TaskId, TaskInfo, TaskQueue,
    TaskState, UploadOptions, UploadOutcome, Waited, DEFAULT_FILE_PARALLEL,
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
