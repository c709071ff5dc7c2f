//! The request log: one JSON line per request, to see why a browser or SDK call failed.
//!
//! ```text
//! {"time":"2026-11-30T11:20:00.000Z","method":"PUT","operation":"PutObject","key":"a.txt","status":200,
//!  "bytes_in":5,"bytes_out":0,"duration_ms":0.84,"request_id":"…","error":null,"origin":null}
//! ```
//! (one line each). `bytes_in` is the request's `Content-Length` (`null` for a chunked body), `bytes_out` the
//! answer's body length (`null` when streamed without a length), `duration_ms` the time to the answer's head
//! (the request body read), `error` COS's error code (`null` on success). A connection the server resets (an
//! injected fault) has `status` `null` and `error` `"connection reset"`.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::Response;

use super::util::{iso8601, unix_secs};
use super::{Body, Ctx};

/// Where the request log goes: a shared writer, each line written and flushed under a lock.
#[derive(Clone)]
pub struct RequestLog(Arc<Mutex<Box<dyn Write + Send>>>);

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLog")
    }
}

impl RequestLog {
    /// Logs to this writer.
    pub fn new(w: impl Write + Send + 'static) -> RequestLog {
        RequestLog(Arc::new(Mutex::new(Box::new(w))))
    }

    /// Logs to standard output.
    pub fn stdout() -> RequestLog {
        RequestLog::new(io::stdout())
    }

    /// Appends to a file (created if missing).
    pub fn file(path: impl AsRef<std::path::Path>) -> io::Result<RequestLog> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(RequestLog::new(f))
    }

    fn write_line(&self, line: &str) {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = w.write_all(line.as_bytes());
        let _ = w.write_all(b"\n");
        let _ = w.flush();
    }
}

/// What is known of a request before it is served.
pub(crate) struct Seen {
    method: String,
    operation: &'static str,
    key: Option<String>,
    request_id: String,
    origin: Option<String>,
    bytes_in: Option<u64>,
    time: SystemTime,
}

/// The COS error code of an error answer (set by `Ctx::error_response`).
#[derive(Clone, Debug)]
pub(crate) struct ErrorCode(pub String);

impl Seen {
    pub(crate) fn of(ctx: &Ctx, operation: &'static str) -> Seen {
        Seen {
            method: ctx.method.to_string(),
            operation,
            key: ctx.key.clone().ok(),
            request_id: ctx.request_id.clone(),
            origin: ctx.header("origin"),
            bytes_in: ctx
                .header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .or_else(|| (!ctx.headers.contains_key("transfer-encoding")).then_some(0)),
            time: SystemTime::now(),
        }
    }

    /// Writes the line for this request's outcome.
    pub(crate) fn record(
        &self,
        log: &RequestLog,
        result: &Result<Response<Body>, io::Error>,
        took: Duration,
    ) {
        let (status, bytes_out, error) = match result {
            Ok(r) => {
                let out = http_body::Body::size_hint(r.body()).exact().or_else(|| {
                    r.headers()
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                });
                let code = r.extensions().get::<ErrorCode>().map(|c| c.0.clone());
                let code = code.or_else(|| {
                    (r.status().as_u16() >= 400)
                        .then(|| r.status().canonical_reason().unwrap_or("").to_string())
                });
                (Some(r.status().as_u16()), out, code)
            }
            Err(_) => (None, None, Some("connection reset".to_string())),
        };
        let secs = unix_secs(self.time);
        let millis = self
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_millis())
            .unwrap_or(0);
        let time = iso8601(secs).replace(".000Z", &format!(".{millis:03}Z"));
        let line = serde_json::json!({
            "time": time,
            "method": self.method,
            "operation": self.operation,
            "key": self.key,
            "status": status,
            "bytes_in": self.bytes_in,
            "bytes_out": bytes_out,
            "duration_ms": (took.as_secs_f64() * 1e5).round() / 100.0,
            "request_id": self.request_id,
            "error": error,
            "origin": self.origin,
        });
        log.write_line(&line.to_string());
    }
}
