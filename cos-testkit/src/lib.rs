//! # cos-testkit: a local COS-compatible server, fault injection and replay for cos-rs
//!
//! [`Server`] is a stateful HTTP/1.1 server that speaks the upload subset of the Tencent Cloud COS XML API:
//! PUT / Append / POST (form) / HEAD / GET / DELETE Object, the multipart calls (Initiate, Upload Part,
//! List Parts, Complete, Abort, List Multipart Uploads), Object Tagging and Object ACL (PUT / GET, tagging
//! also DELETE), Delete Multiple Objects, GET Bucket (List Objects) and PUT / HEAD / DELETE Bucket. Every other
//! COS request (any other sub-resource such as `?cors`, `?restore`, `?select`, bucket `?acl`; a copy with
//! `x-cos-copy-source`) answers `501 NotImplemented`, never another operation. Every request's signature is
//! verified with `cos_core::auth` over exactly the headers and parameters the client listed, so signing bugs
//! fail here as they would against COS, with `StringToSign` and `FormatString` in the `SignatureDoesNotMatch` body.
//! The official Python and Node.js SDKs pass against it (`/work/shared/oracles/run-official.sh`).
//!
//! - Storage in memory, or on disk with [`ServerBuilder::data_dir`] (survives restarts); or [`ServerBuilder::sink`]
//!   to check and discard bodies (benchmarks).
//! - [`FaultPlan`]: seeded random faults (`"500:0.05,503:0.02,reset:0.02,stall=2s:0.01"`) and
//!   "fail the n-th `UploadPart`" rules, changeable at runtime through [`Server::faults`].
//! - [`Server::counters`]: requests per operation; [`Server::object`], [`Server::multipart_uploads`]: state.
//! - [`replay`]: recorded-exchange replay of `cos-core` tasks.
//! - [`MemoryServer`]: the same request handling as a function over the store, without sockets, and [`sim`],
//!   the deterministic transfer simulation built on it (`cargo test -p cos-testkit --test sim`;
//!   `COS_SIM_SEED=N` or `cos-testkit sim --seed N` replays one seed). The driver conformance suite, run
//!   against both clients, is `cargo test -p cos-testkit --test drivers`.
//! - [`hostile`]: a scriptable raw-TCP server of misbehaviours (drips, freezes, resets, malformed answers).
//!
//! Addressing: the bucket comes from a `Host` of the form `<bucket>.cos.<region>.myqcloud.com` (also
//! `.tencentcos.cn`, `cos.accelerate`, or any host whose first label is `<name>-<appid>`); a bucket other than
//! the configured one must have been created with PUT Bucket (else 404 `NoSuchBucket`). Any other host (an IP,
//! `localhost`, a custom domain) serves the configured bucket.
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
//! ## Behaviour where COS documents little (decisions)
//!
//! - Signatures: no signature → 403 `AccessDenied`; unknown `q-ak` → 403 `InvalidAccessKeyId`; key time
//!   over → 403 `AccessDenied` "Request has expired" (what COS answers); key time starting after the server's
//!   clock → 403 `RequestTimeTooSkewed` (clients correct by the `Date` header); with
//!   [`ServerBuilder::security_token`], a missing or wrong `x-cos-security-token` → 403 `InvalidAccessKeyId`.
//!   Only the listed headers and parameters are verified, as COS does: unsigned extras are accepted.
//! - `Content-Length` is required on bodies (411 `MissingContentLength`) unless the body is chunked.
//! - `x-cos-meta-*` over 2 KB in total, a bad storage class, ACL or SSE value, `x-cos-traffic-limit` outside
//!   819200..=838860800: 400 `InvalidArgument`.
//! - Complete checks the part list in this order: ascending (`InvalidPartOrder`), every part known with its
//!   ETag (`InvalidPart`), every part but the last ≥ 1 MiB (`EntityTooSmall`). `x-cos-forbid-overwrite` is
//!   honoured from the Initiate request (at Initiate time) and from the Complete request (at Complete time).
//! - Appends keep the existing object's attributes; a PUT over an appendable object makes it normal again.
//! - POST Object's policy must have conditions on `q-sign-algorithm`, `q-ak`, `q-sign-time`, the bucket and
//!   the key, else 403 `AccessDenied`. The form body is read into memory.
//! - Faults are decided before the signature is checked, for every operation (`HEAD` included).
//! - Response header names are written as COS writes them (`ETag`, `Content-Length`, lower-case
//!   `x-cos-*`): some clients read them case-sensitively.
//! - The signed path is the whole request path as sent (a key starting with `/` keeps every slash), as the
//!   official SDKs sign it. `sign=<URL-encoded Authorization>` in the query is accepted like a header.
//! - Empty header values are ignored (neither stored nor echoed); without a `Content-Type` an object gets one
//!   from its key's extension (`1.zip` → `application/zip`), else `application/octet-stream`.
//! - `x-cos-tagging` (and PUT Object Tagging) is stored and counted in `x-cos-tagging-count`;
//!   `x-cos-server-side-encryption` is echoed on writes and reads; SSE-C headers are checked (key length,
//!   key MD5), echoed, and the key is required on HEAD/GET (missing: 400 `InvalidRequest`, another key:
//!   403 `AccessDenied`); the key itself is never stored.
//! - `x-cos-traffic-limit` (header or query) paces that request's body, upload or download, to the limit.
//! - In sink mode `GET Object` answers 501 `NotImplemented` (the bytes are gone); `HEAD` works.
//!
//! ## Browsers: CORS
//!
//! The bucket has a CORS configuration as on COS (`PUT` / `GET` / `DELETE /?cors`, signed; kept with
//! `data_dir`). A preflight `OPTIONS` is answered from its rules without a signature (403 `AccessForbidden`
//! when none matches, or there are none: a new server has none, like a new bucket), and every answer to a
//! request whose `Origin` a rule allows carries `Access-Control-Allow-Origin`, `-Expose-Headers`… errors
//! included. [`ServerBuilder::cors_dev`] (`serve --cors dev`) starts with [`dev_cors_rule`], any origin.
//! [`ServerBuilder::request_log`] (`serve --log FILE|-`) writes one JSON line per request.
//!
//! The command-line form is `cos-testkit serve --addr 127.0.0.1:9000 --bucket examplebucket-1250000000
//! --secret-id ID --secret-key KEY [--data DIR] [--faults SPEC --seed N] [--sink] [--cors dev|FILE.xml]
//! [--log FILE|-]`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod faults;
pub mod hostile;
pub mod replay;
mod server;
pub mod sim;
/// POST Object form verification, as the local server does it (moved out of cos-core: only a server needs it).
pub use server::policy;

pub use faults::{Fault, FaultHandle, FaultPlan, FaultSpecError, InjectedFault};
pub use server::{
    dev_cors_rule, Counters, MemoryServer, ObjectType, RequestLog, Server, ServerBuilder,
    StoredObject, DEFAULT_BUCKET, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, DEV_EXPOSE_HEADERS,
};
