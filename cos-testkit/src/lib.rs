//! # cos-testkit: a local COS-compatible server, fault injection and replay for cos-rs
//!
//! [`Server`] is a stateful HTTP/1.1 server that speaks the upload subset of the Tencent Cloud COS XML API:
//! PUT / Append / POST (form) / HEAD / GET / DELETE Object and the multipart calls (Initiate, Upload Part,
//! List Parts, Complete, Abort, List Multipart Uploads). Every request's signature is verified with
//! `cos_core::auth` over exactly the headers and parameters the client listed, so signing bugs fail here as
//! they would against COS, with `StringToSign` and `FormatString` in the `SignatureDoesNotMatch` body.
//! The official Python and Node.js SDKs pass against it (`/work/shared/oracles/run-official.sh`).
//!
//! - Storage in memory, or on disk with [`ServerBuilder::data_dir`] (survives restarts); or [`ServerBuilder::sink`]
//!   to check and discard bodies (benchmarks).
//! - [`FaultPlan`]: seeded random faults (`"500:0.05,503:0.02,reset:0.02,stall=2s:0.01"`) and
//!   "fail the n-th `UploadPart`" rules, changeable at runtime through [`Server::faults`].
//! - [`Server::counters`]: requests per operation; [`Server::object`], [`Server::multipart_uploads`]: state.
//!
//! Addressing: the bucket comes from a `Host` of the form `<bucket>.cos.<region>.myqcloud.com` (also
//! `.tencentcos.cn` and `cos.accelerate`), which must name the server's bucket (else 404 `NoSuchBucket`); any
//! other host (an IP, `localhost`, a custom domain) serves the server's bucket.
//!
//! ```
//! use cos_testkit::{Fault, Server};
//! let server = Server::builder().credentials("AKIDTEST", "secret").start_blocking()?;
//! server.faults().fail_nth("UploadPart", 2, Fault::Status(503));
//! // point an SDK at server.endpoint() with server.secret_id() / server.secret_key() ...
//! assert_eq!(server.counters().total, 0);
//! assert!(server.object("missing").is_none());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The command-line form is `cos-testkit serve --addr 127.0.0.1:9000 --bucket examplebucket-1250000000
//! --secret-id ID --secret-key KEY [--data DIR] [--faults SPEC --seed N] [--sink]`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod faults;
pub mod replay;
mod server;

pub use faults::{Fault, FaultHandle, FaultPlan, FaultSpecError, InjectedFault};
pub use server::{
    Counters, ObjectType, Server, ServerBuilder, StoredObject, DEFAULT_BUCKET, DEFAULT_SECRET_ID,
    DEFAULT_SECRET_KEY,
};
