//! # cos-core: the sans-IO core of cos-rs
//!
//! `cos-core` builds signed [`http::Request`]s for every Tencent Cloud COS upload operation and interprets
//! the [`http::Response`]s. It opens no sockets, reads no files, reads no clock, starts no threads and needs
//! no async runtime: time ([`task::Now`]) and bytes are passed in. The drivers `cos-blocking` (ureq) and
//! `cos-async` (hyper + tokio) do the I/O; every decision (what to send next, whether to retry, when a part
//! is done) is made here, once.
//!
//! ## The loop contract
//!
//! Every operation and transfer is a [`task::Task`]. A driver runs it like this:
//!
//! 1. Call [`task::Task::poll_output`] with the current [`task::Now`] until it returns
//!    [`task::Output::Wait`] or [`task::Output::Done`]:
//!    - [`task::Output::Transmit`]: send the signed request exactly as given. A
//!      [`task::RequestBody::Source`] body is a range of the task's source: stream it, computing a
//!      [`checksum::BodyDigest`] on the way.
//!    - [`task::Output::Io`]: perform the local I/O it names (read, store or remove the checkpoint, hash a
//!      range of the source, read the stream) and answer with [`task::Input::Io`].
//!    - [`task::Output::Event`]: report it (progress, retries, clock skew…).
//! 2. On `Wait { until }`, block until a response arrives or `until` passes.
//! 3. Feed each response (body read whole) or transport failure with [`task::Task::handle_input`], then go
//!    back to 1.
//! 4. `Done(result)` ends the task.
//!
//! The full contract (every output, its only legal answer, commands) is in the [`task`] module docs.
//!
//! Requests are signed when they are emitted, so a retried request carries a fresh signature.
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use cos_core::{ops::PutObject, task::{Input, Now, OneShot, Output, Task}, Config, Credentials};
//!
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
//! let mut task = OneShot::new(PutObject::new("hello.txt").with_bytes("hello"), config)?;
//! let now = Now { instant: Instant::now(), system: SystemTime::now() };
//! let result = loop {
//!     match task.poll_output(now) {
//!         Output::Transmit(t) => {
//!             // A real driver sends `t.request`; here the answer is made up.
//!             let response = http::Response::builder()
//!                 .status(200)
//!                 .header("etag", "\"5d41402abc4b2a76b9719d911017c592\"")
//!                 .header("x-cos-hash-crc64ecma", "11177612005948864433") // checked by default
//!                 .body(bytes::Bytes::new())?;
//!             task.handle_input(now, Input::Response { id: t.id, response, sent: None });
//!         }
//!         Output::Event(_) => {}
//!         Output::Io(_) => unreachable!("a single PUT of bytes needs no local I/O"),
//!         Output::Wait { .. } => unreachable!("an answer was fed for every request"),
//!         Output::Done(result) => break result,
//!     }
//! };
//! assert_eq!(result?.etag, "\"5d41402abc4b2a76b9719d911017c592\"");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod body;
pub mod checksum;
pub mod client;
pub mod config;
pub mod copy;
pub mod credentials;
pub mod date;
pub mod download;
pub mod error;
pub mod exchange;
pub mod fixture;
pub mod instance_role;
pub mod network;
pub mod ops;
pub mod post_policy;
pub mod presign;
pub mod queue;
pub mod retry;
pub mod task;
pub mod upload;

pub use config::{Bucket, Config, Endpoint, Region};
pub use credentials::Credentials;
pub use error::{Error, InvalidInput};
