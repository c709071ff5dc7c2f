//! Credentials where servers keep them: the CVM instance role (from the metadata service) and the default
//! provider chain.
//!
//! Providers are synchronous ([`ProvideCredentials`](cos_core::credentials::ProvideCredentials)), so the
//! metadata request is a small blocking HTTP/1.1 `GET` over `std::net` with short timeouts (1 s to connect,
//! 2 s per read); it runs once per refresh (every few hours), not per request.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use cos_core::credentials::EnvCredentials;
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::instance_role::{ChainCredentials, InstanceRole};
use cos_core::Credentials;

const LIMIT: usize = 64 * 1024;

/// The CVM instance role's temporary credentials, fetched from the metadata service
/// (`http://metadata.tencentyun.com`, never through a proxy) and refreshed five minutes before they expire.
/// See [`InstanceRole`] for the endpoint, role and refresh settings.
///
/// ```no_run
/// use std::sync::Arc;
/// use cos_async::{Client, Config};
/// let config = Config::for_provider("examplebucket-1250000000", "ap-guangzhou")?;
/// let client = Client::builder(config)
///     .credentials_provider(Arc::new(cos_async::instance_role_credentials()))
///     .build();
/// # Ok::<(), cos_async::Error>(())
/// ```
pub fn instance_role_credentials() -> InstanceRole {
    InstanceRole::new(get)
}

/// The default chain: `explicit` credentials if given, else the environment ([`EnvCredentials`]:
/// `COS_*`, else `TENCENTCLOUD_*`), else the instance role ([`instance_role_credentials`]).
pub fn default_credentials_chain(explicit: Option<Credentials>) -> ChainCredentials {
    let mut chain = ChainCredentials::new();
    if let Some(c) = explicit {
        chain = chain.or(c);
    }
    chain
        .or(EnvCredentials::new())
        .or(instance_role_credentials())
}

fn get(request: &http::Request<()>) -> Result<http::Response<Bytes>, TransportError> {
    let uri = request.uri();
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let connect = |e: std::io::Error| {
        TransportError::new(
            TransportErrorKind::Connect,
            format!("instance metadata service: cannot connect to {authority}: {e}"),
        )
        .with_cause(e)
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| connect(std::io::ErrorKind::NotFound.into()))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(connect)?;
    let io = |e: std::io::Error| {
        let kind = match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                TransportErrorKind::Timeout
            }
            _ => TransportErrorKind::Reset,
        };
        TransportError::new(kind, format!("instance metadata service: {e}")).with_cause(e)
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(io)?;
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(LIMIT as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(io)?;
    parse(&raw).ok_or_else(|| {
        TransportError::new(
            TransportErrorKind::Other,
            "instance metadata service: not an HTTP/1.1 answer (or larger than 64 KiB)",
        )
    })
}

/// Reads a `Connection: close` answer: status line, headers, then the body (`Content-Length` bytes if
/// given, else up to the end).
fn parse(raw: &[u8]) -> Option<http::Response<Bytes>> {
    if raw.len() > LIMIT {
        return None;
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut builder = http::Response::builder().status(status);
    let mut len = None;
    for line in lines {
        let (k, v) = line.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse::<usize>().ok();
        }
        if k.eq_ignore_ascii_case("transfer-encoding") {
            return None; // the metadata service sends a length
        }
        builder = builder.header(k.trim(), v.trim());
    }
    let body = &raw[end + 4..];
    let body = match len {
        Some(n) if n <= body.len() => &body[..n],
        Some(_) => return None,
        None => body,
    };
    builder.body(Bytes::copy_from_slice(body)).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_answers() {
        let r = super::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nroleXX").unwrap();
        assert_eq!((r.status().as_u16(), &r.body()[..]), (200, &b"role"[..]));
        assert!(super::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nrole").is_none());
        assert!(super::parse(b"garbage").is_none());
    }
}
