//! Where requests go and with what identity: bucket, region, endpoint, credentials, retry policy.

use std::time::{Duration, Instant};

use crate::credentials::Credentials;
use crate::error::{Error, InvalidInput};
use crate::retry::RetryPolicy;

/// A validated bucket name, `<name>-<appid>` (e.g. `examplebucket-1250000000`).
///
/// ```
/// assert!(cos_core::Bucket::new("examplebucket-1250000000").is_ok());
/// assert!(cos_core::Bucket::new("Example-1250000000").is_err());
/// assert!(cos_core::Bucket::new("examplebucket").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bucket(String);

impl Bucket {
    /// Validates a full bucket name: lower-case letters, digits and `-`, not starting or ending with `-`,
    /// followed by `-<appid>` (digits).
    pub fn new(bucket: impl Into<String>) -> Result<Bucket, InvalidInput> {
        let bucket = bucket.into();
        let bad = |reason| InvalidInput::Bucket {
            bucket: bucket.clone(),
            reason,
        };
        let Some((name, appid)) = bucket.rsplit_once('-') else {
            return Err(bad(
                "expected <name>-<appid>, e.g. examplebucket-1250000000",
            ));
        };
        if appid.is_empty() || !appid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the appid after the last '-' must be digits"));
        }
        if name.is_empty() {
            return Err(bad("the name before -<appid> is empty"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(
                "the name may hold only lower-case letters, digits and '-'",
            ));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(bad("the name may not start or end with '-'"));
        }
        // `<bucket>.cos.<region>.myqcloud.com` must stay within 60 characters; the longest common region is
        // about 16 characters, so the bucket itself is bounded here and the host again in `Config::new`.
        if bucket.len() > 50 {
            return Err(bad(
                "too long: the host name must stay within 60 characters",
            ));
        }
        Ok(Bucket(bucket))
    }

    /// The full name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The appid suffix.
    pub fn appid(&self) -> &str {
        self.0.rsplit_once('-').map(|(_, a)| a).unwrap_or("")
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated region such as `ap-guangzhou`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    /// Validates a region: non-empty, lower-case letters, digits and `-`.
    pub fn new(region: impl Into<String>) -> Result<Region, InvalidInput> {
        let region = region.into();
        let ok = !region.is_empty()
            && region.len() <= 40
            && !region.starts_with('-')
            && !region.ends_with('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Region(region))
        } else {
            Err(InvalidInput::Region(region))
        }
    }

    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where requests are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `https://<bucket>.cos.<region>.myqcloud.com` (the default).
    Default,
    /// `https://<bucket>.cos.<region>.tencentcos.cn`.
    TencentCos,
    /// Global acceleration: `https://<bucket>.cos.accelerate.myqcloud.com`.
    Accelerate,
    /// A custom domain or a local server, e.g. `http://127.0.0.1:9000`: requests go there as they are, with
    /// no bucket in host or path.
    Custom {
        /// `http` or `https`.
        scheme: String,
        /// `host[:port]`, sent as `Host`.
        authority: String,
    },
}

impl Endpoint {
    /// Parses a custom endpoint URL (`http(s)://host[:port]`, an optional trailing `/`).
    pub fn custom(url: &str) -> Result<Endpoint, InvalidInput> {
        let bad = || InvalidInput::Endpoint(url.to_string());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(bad());
        }
        authority
            .parse::<http::uri::Authority>()
            .map_err(|_| bad())?;
        // `Authority` takes any text after the last ':' (`host:port`, `host:99999`); a port must be a number
        // in 1..=65535. An IPv6 host is bracketed, so look for the port after the ']'.
        let host_end = authority.rfind(']').map_or(0, |i| i + 1);
        if let Some((_, port)) = authority[host_end..].rsplit_once(':') {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad());
            }
        }
        Ok(Endpoint::Custom {
            scheme: scheme.to_string(),
            authority: authority.to_string(),
        })
    }
}

/// Everything a request needs besides the operation itself.
#[derive(Clone, Debug)]
pub struct Config {
    /// Signing identity.
    pub credentials: Credentials,
    /// The bucket.
    pub bucket: Bucket,
    /// The region.
    pub region: Region,
    /// Where requests go.
    pub endpoint: Endpoint,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// How long a signature stays valid (q-key-time window end minus now).
    pub signature_validity: Duration,
    /// Seconds to add to the local clock when signing, learned from `RequestTimeTooSkewed`.
    pub clock_offset_secs: i64,
    /// Sent as `User-Agent`.
    pub user_agent: String,
    /// Trust roots and proxy, applied by the drivers ([`crate::network`]).
    pub network: crate::network::Network,
    /// Deadlines and the minimum transfer rate, applied the same way by both transports.
    pub timeouts: Timeouts,
}

/// Deadlines and the minimum transfer rate of one HTTP exchange, applied the same way by the blocking
/// (ureq) and async (hyper) transports. A failure is a [`crate::error::TransportErrorKind::Timeout`]
/// transport error, retried like any transport failure ([`crate::retry::RetryPolicy`]).
///
/// One attempt that sends `n` body bytes and may receive up to `l` answer bytes (the limit the core sets
/// per operation, see [`crate::task::ResponseLimits`]) ends within
/// `connect + (connect + rate_grace + n / min_rate + idle) + response_head + (rate_grace + l / min_rate +
/// idle)`; with the defaults, an upload answer (`l` = 64 KiB) is bounded by 10 + (50 + n/1024) + 30 + 104
/// seconds, and a server that drips bytes is cut off about `rate_grace` + 1 s after a body starts.
/// Waiting for the response head also ends after `idle` with nothing received (so keep `idle` ≥
/// `response_head` for `response_head` to matter).
///
/// ```
/// use std::time::Duration;
/// let t = cos_core::config::Timeouts::default();
/// assert_eq!(t.connect, Duration::from_secs(10));
/// assert_eq!(t.response_head, Duration::from_secs(30));
/// assert_eq!(t.idle, Duration::from_secs(30));
/// assert_eq!(t.min_rate, 1024);
/// assert_eq!(t.rate_grace, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Establishing a connection (DNS, TCP, TLS). Default 10 s.
    pub connect: Duration,
    /// From the end of the request (its body sent) to the end of the response head (status line and
    /// every header), however slowly the head arrives. Default 30 s.
    pub response_head: Duration,
    /// The longest time no byte may move while a body is sent or received, or while the response head
    /// is awaited. Default 30 s.
    pub idle: Duration,
    /// The minimum average rate of a body, either direction, in bytes per second, enforced once
    /// `rate_grace` has passed since the body started (for a request body: since the exchange started plus
    /// `connect`, as connecting takes no body bytes).
    /// 0 turns the check off. Default 1024 (1 KiB/s).
    pub min_rate: u64,
    /// How long a body may run before `min_rate` is enforced. Default 10 s.
    pub rate_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            response_head: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            min_rate: 1024,
            rate_grace: Duration::from_secs(10),
        }
    }
}

impl Timeouts {
    /// The longest a body of `len` bytes may take at the minimum rate, idle time included: `rate_grace +
    /// len / min_rate + idle`; `None` when unbounded (`min_rate` 0) or too large to represent.
    pub fn body_deadline(&self, len: u64) -> Option<Duration> {
        if self.min_rate == 0 {
            return None;
        }
        self.rate_grace
            .checked_add(Duration::from_secs(len / self.min_rate + 1))?
            .checked_add(self.idle)
    }

    /// Whether `bytes` moved in `elapsed` since a body started is below the minimum rate (never within
    /// `rate_grace`).
    pub fn below_min_rate(&self, bytes: u64, elapsed: Duration) -> bool {
        let Some(over) = elapsed.checked_sub(self.rate_grace) else {
            return false;
        };
        (bytes as u128) < (self.min_rate as u128) * over.as_millis() / 1000
    }

    /// [`Timeouts::below_min_rate`] as the transport error both transports report: a
    /// [`crate::error::TransportErrorKind::Timeout`] saying how many bytes moved in how long.
    pub fn check_rate(
        &self,
        bytes: u64,
        elapsed: Duration,
    ) -> Result<(), crate::error::TransportError> {
        if !self.below_min_rate(bytes, elapsed) {
            return Ok(());
        }
        Err(crate::error::TransportError::new(
            crate::error::TransportErrorKind::Timeout,
            format!(
                "{bytes} bytes in {:.1} s is below the minimum rate of {} bytes/s",
                elapsed.as_secs_f64(),
                self.min_rate
            ),
        ))
    }

    /// When, counted from the start of a body, `bytes` stop being enough for the minimum rate: `rate_grace +
    /// bytes / min_rate`; `None` when the rate is not checked.
    pub fn rate_deadline(&self, bytes: u64) -> Option<Duration> {
        if self.min_rate == 0 {
            return None;
        }
        let millis = (bytes as u128) * 1000 / (self.min_rate as u128);
        self.rate_grace
            .checked_add(Duration::from_millis(u64::try_from(millis).ok()?))
    }
}

/// Where one exchange stands, as its driver recorded it, for [`Timeouts::next_deadline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeTimes {
    /// When the exchange started (before connecting).
    pub started: Instant,
    /// When a byte last moved either way; `None` before the first.
    pub last_byte: Option<Instant>,
    /// When the last byte of the request body was sent; `None` before.
    pub body_sent: Option<Instant>,
    /// When the response head was complete; `None` before.
    pub head: Option<Instant>,
    /// Request body bytes sent so far.
    pub sent: u64,
    /// Response body bytes received so far.
    pub received: u64,
    /// Whether the request has a body to send.
    pub has_body: bool,
}

/// The next deadline of an exchange ([`Timeouts::next_deadline`]) and why passing it ends the exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When; `None` when no deadline can be represented (ask again when the exchange moves on).
    pub at: Option<Instant>,
    /// What passing it means, for the timeout error.
    pub reason: String,
}

impl Timeouts {
    /// The earliest deadline that applies to an exchange where it stands: always `idle` after the last
    /// byte moved (or the start); while the request body is sent, the minimum rate counted from
    /// `started + connect`; then `response_head` after the body was sent (or, without a body, after
    /// `started + connect`); once the head arrived, the minimum rate of the response body counted from it.
    /// A transport that cannot express these per phase (a hyper exchange) waits for this deadline and
    /// fails with a [`crate::error::TransportErrorKind::Timeout`] carrying `reason` once it passes.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cos_core::config::{ExchangeTimes, Timeouts};
    /// let t0 = Instant::now();
    /// let x = ExchangeTimes { started: t0, last_byte: None, body_sent: None, head: None, sent: 0,
    ///     received: 0, has_body: false };
    /// let d = Timeouts::default().next_deadline(&x);
    /// assert_eq!(d.at, Some(t0 + Duration::from_secs(30)));
    /// ```
    pub fn next_deadline(&self, x: &ExchangeTimes) -> Deadline {
        let idle = Deadline {
            at: x.last_byte.unwrap_or(x.started).checked_add(self.idle),
            reason: format!("no byte moved for {:?}", self.idle),
        };
        let rate = |start: Instant, bytes: u64, what: &str| Deadline {
            at: self.rate_deadline(bytes).and_then(|d| start.checked_add(d)),
            reason: format!(
                "{what} below the minimum rate of {} bytes/s ({bytes} bytes)",
                self.min_rate
            ),
        };
        let earliest = |a: Deadline, b: Deadline| match (a.at, b.at) {
            (Some(x), Some(y)) if y < x => b,
            (None, Some(_)) => b,
            _ => a,
        };
        let connected = x.started.checked_add(self.connect);
        if let Some(head) = x.head {
            return earliest(idle, rate(head, x.received, "response body"));
        }
        if x.body_sent.is_some() || !x.has_body {
            // As with ureq's per-read timeout, nothing arriving for `idle` ends the wait too.
            let head = Deadline {
                at: x
                    .body_sent
                    .or(connected)
                    .and_then(|from| from.checked_add(self.response_head)),
                reason: format!("no complete response head within {:?}", self.response_head),
            };
            return earliest(idle, head);
        }
        // The request body's rate is counted from the connect deadline on (connecting takes no body bytes).
        match connected {
            Some(from) => earliest(idle, rate(from, x.sent, "request body")),
            None => idle,
        }
    }
}

impl Config {
    /// A configuration with the default endpoint, retry policy and a one-hour signature validity.
    ///
    /// ```
    /// let c = cos_core::Config::new("examplebucket-1250000000", "ap-guangzhou",
    ///     cos_core::Credentials::new("AKID", "KEY")).unwrap();
    /// assert_eq!(c.host(), "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com");
    /// ```
    pub fn new(bucket: &str, region: &str, credentials: Credentials) -> Result<Config, Error> {
        let bucket = Bucket::new(bucket)?;
        let region = Region::new(region)?;
        if !credentials.is_complete() {
            return Err(InvalidInput::MissingCredentials.into());
        }
        let config = Config {
            credentials,
            bucket,
            region,
            endpoint: Endpoint::Default,
            retry: RetryPolicy::default(),
            signature_validity: Duration::from_secs(3600),
            clock_offset_secs: 0,
            user_agent: concat!("cos-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            timeouts: Timeouts::default(),
            network: Default::default(),
        };
        config.check_host()?;
        Ok(config)
    }

    /// A configuration with no credentials of its own, for a client given a credentials provider (e.g. an
    /// instance role or a provider chain): requests are signed with what the provider hands out, and a
    /// client with neither fails with [`InvalidInput::MissingCredentials`] before sending anything.
    ///
    /// ```
    /// let c = cos_core::Config::for_provider("examplebucket-1250000000", "ap-guangzhou").unwrap();
    /// assert!(!c.credentials.is_complete());
    /// ```
    pub fn for_provider(bucket: &str, region: &str) -> Result<Config, Error> {
        let mut config = Config::new(bucket, region, Credentials::new("-", "-"))?;
        config.credentials = Credentials::new("", "");
        Ok(config)
    }

    /// A configuration from the process environment; see [`Config::from_lookup`].
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// A configuration from variables read through `lookup`:
    ///
    /// - `COS_BUCKET` (required);
    /// - `COS_REGION`, else `TENCENTCLOUD_REGION` (required);
    /// - `COS_ENDPOINT` (optional, a custom endpoint URL such as `http://127.0.0.1:9000`);
    /// - credentials as [`EnvCredentials`](crate::credentials::EnvCredentials) reads them (`COS_SECRET_ID`,
    ///   `COS_SECRET_KEY`, `COS_SECURITY_TOKEN`, else `TENCENTCLOUD_SECRETID`, `TENCENTCLOUD_SECRETKEY`,
    ///   `TENCENTCLOUD_SESSIONTOKEN`). Without them the config has no credentials of its own, as
    ///   [`Config::for_provider`]: give the client a provider (an instance role, a chain).
    ///
    /// Empty values count as unset. A missing bucket or region is [`InvalidInput::Parameter`].
    ///
    /// ```
    /// let vars = [("COS_BUCKET", "examplebucket-1250000000"), ("TENCENTCLOUD_REGION", "ap-beijing"),
    ///     ("TENCENTCLOUD_SECRETID", "AKID"), ("TENCENTCLOUD_SECRETKEY", "KEY")];
    /// let c = cos_core::Config::from_lookup(|n| {
    ///     vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    /// }).unwrap();
    /// assert_eq!(c.host(), "examplebucket-1250000000.cos.ap-beijing.myqcloud.com");
    /// assert_eq!(c.credentials.secret_id(), "AKID");
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        use crate::credentials::ProvideCredentials;
        let get = |n: &str| lookup(n).filter(|v| !v.is_empty());
        let missing = |name: &'static str| InvalidInput::Parameter {
            name,
            reason: "is not set in the environment".into(),
        };
        let bucket = get("COS_BUCKET").ok_or_else(|| missing("COS_BUCKET"))?;
        let region = get("COS_REGION")
            .or_else(|| get("TENCENTCLOUD_REGION"))
            .ok_or_else(|| missing("COS_REGION"))?;
        let vars: Vec<(&str, Option<String>)> = [
            "COS_SECRET_ID",
            "COS_SECRET_KEY",
            "COS_SECURITY_TOKEN",
            "TENCENTCLOUD_SECRETID",
            "TENCENTCLOUD_SECRETKEY",
            "TENCENTCLOUD_SESSIONTOKEN",
        ]
        .into_iter()
        .map(|n| (n, get(n)))
        .collect();
        let env = crate::credentials::EnvCredentials::with_lookup(move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .and_then(|(_, v)| v.clone())
        });
        let mut config = Config::for_provider(&bucket, &region)?;
        if let Ok(c) = env.credentials(std::time::SystemTime::UNIX_EPOCH) {
            config.credentials = c;
        }
        if let Some(e) = get("COS_ENDPOINT") {
            config = config.with_endpoint(Endpoint::custom(&e)?)?;
        }
        Ok(config)
    }

    /// Trusts exactly the CA certificates in `pem` (instead of the built-in roots), e.g. a private CA or
    /// the test CA of `cos-testkit serve --tls`.
    pub fn with_ca_pem(mut self, pem: &str) -> Result<Config, Error> {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(InvalidInput::Parameter {
                name: "ca_pem",
                reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
            }
            .into());
        }
        self.network.roots = crate::network::TlsRoots::Pem(pem.to_string());
        Ok(self)
    }

    /// Chooses the trust roots ([`crate::network::TlsRoots`]).
    pub fn with_tls_roots(mut self, roots: crate::network::TlsRoots) -> Config {
        self.network.roots = roots;
        self
    }

    /// Sends every request through `proxy` (`http://[user:password@]host:port`) whatever the environment
    /// says, except to the hosts in `no_proxy` (comma-separated, as `NO_PROXY`). Without it the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` variables decide; see [`crate::network`].
    pub fn with_proxy(mut self, proxy: &str, no_proxy: &str) -> Result<Config, Error> {
        self.network.proxy = crate::network::ProxySetting::Explicit {
            proxy: crate::network::Proxy::parse(proxy)?,
            no_proxy: no_proxy.to_string(),
        };
        Ok(self)
    }

    /// Connects directly, ignoring the proxy variables of the environment.
    pub fn without_proxy(mut self) -> Config {
        self.network.proxy = crate::network::ProxySetting::Direct;
        self
    }

    /// Replaces the endpoint.
    pub fn with_endpoint(mut self, endpoint: Endpoint) -> Result<Config, Error> {
        self.endpoint = endpoint;
        self.check_host()?;
        Ok(self)
    }

    fn check_host(&self) -> Result<(), Error> {
        if matches!(self.endpoint, Endpoint::Custom { .. }) {
            return Ok(());
        }
        let host = self.host();
        if host.len() > 60 && !matches!(self.endpoint, Endpoint::Accelerate) {
            return Err(InvalidInput::Bucket {
                bucket: self.bucket.to_string(),
                reason: "with this region the host name exceeds 60 characters",
            }
            .into());
        }
        Ok(())
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        match &self.endpoint {
            Endpoint::Custom { scheme, .. } => scheme,
            _ => "https",
        }
    }

    /// The `Host` header value (with the port for a custom endpoint that has one).
    pub fn host(&self) -> String {
        let (b, r) = (self.bucket.as_str(), self.region.as_str());
        match &self.endpoint {
            Endpoint::Default => format!("{b}.cos.{r}.myqcloud.com"),
            Endpoint::TencentCos => format!("{b}.cos.{r}.tencentcos.cn"),
            Endpoint::Accelerate => format!("{b}.cos.accelerate.myqcloud.com"),
            Endpoint::Custom { authority, .. } => authority.clone(),
        }
    }

    /// `scheme://host/<encoded key>[?query]`. The query pairs are raw; they are encoded here.
    pub fn uri(&self, key: &str, query: &[(&str, String)]) -> Result<http::Uri, Error> {
        let mut s = format!(
            "{}://{}/{}",
            self.scheme(),
            self.host(),
            crate::auth::encode_path(key)
        );
        for (i, (k, v)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&crate::auth::encode(k));
            if !v.is_empty() {
                s.push('=');
                s.push_str(&crate::auth::encode(v));
            }
        }
        s.parse()
            .map_err(|_| Error::InvalidInput(InvalidInput::Uri(s)))
    }
}

/// Checks an object key: 1..=850 bytes of UTF-8, no leading `/`, no ASCII control characters.
///
/// ```
/// assert!(cos_core::config::validate_key("photos/2026/a b.jpg").is_ok());
/// assert!(cos_core::config::validate_key("").is_err());
/// assert!(cos_core::config::validate_key("/abs").is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), InvalidInput> {
    let bad = |reason| InvalidInput::Key {
        key: key.chars().take(100).collect(),
        reason,
    };
    if key.is_empty() {
        return Err(bad("is empty"));
    }
    if key.len() > 850 {
        return Err(bad("is longer than 850 bytes"));
    }
    if key.starts_with('/') {
        return Err(bad(
            "starts with '/': COS keys are relative to the bucket root",
        ));
    }
    if key.chars().any(|c| c.is_ascii_control()) {
        return Err(bad("contains an ASCII control character"));
    }
    Ok(())
}

/// Like [`validate_key`], and also refuses a key ending in `/` (a folder marker), where a file is uploaded.
pub fn validate_file_key(key: &str) -> Result<(), InvalidInput> {
    validate_key(key)?;
    if key.ends_with('/') {
        return Err(InvalidInput::Key {
            key: key.chars().take(100).collect(),
            reason: "ends with '/', which names a folder, not a file",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("AKID", "KEY")
    }

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_bucket_names_its_appid() {
        let b = Bucket::new("examplebucket-1250000000").unwrap();
        assert_eq!(b.appid(), "1250000000");
        assert_eq!(b.to_string(), "examplebucket-1250000000");
    }

    #[test]
    fn a_custom_endpoint_is_http_or_https_with_a_bare_authority_and_a_real_port() {
        for ok in [
            "http://127.0.0.1:9000",
            "https://cos.example.com/",
            "http://[::1]:9000",
            "http://[::]",
            "http://h:65535",
        ] {
            assert!(Endpoint::custom(ok).is_ok(), "{ok} refused");
        }
        assert_eq!(
            Endpoint::custom("https://h:1/").unwrap(),
            Endpoint::Custom {
                scheme: "https".into(),
                authority: "h:1".into()
            }
        );
        for bad in [
            "ftp://h",
            "h:9000",
            "http://",
            "http:///",
            "http://h/path",
            "http://user@h",
            "http://h:0",
            "http://h:65536",
            "http://h:port",
            "http://h:",
            "http://[::1]:",
        ] {
            assert_eq!(
                Endpoint::custom(bad),
                Err(InvalidInput::Endpoint(bad.into())),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn the_body_deadline_allows_the_grace_the_bytes_at_the_minimum_rate_and_the_idle_time() {
        let t = Timeouts::default();
        // 10 s grace + (10,240 / 1,024 + 1) s + 30 s idle.
        assert_eq!(t.body_deadline(10_240), Some(Duration::from_secs(51)));
        assert_eq!(t.body_deadline(0), Some(Duration::from_secs(41)));
        let off = Timeouts {
            min_rate: 0,
            ..Timeouts::default()
        };
        assert_eq!(off.body_deadline(10_240), None);
        assert_eq!(off.rate_deadline(10_240), None);
        let huge = Timeouts {
            rate_grace: Duration::MAX,
            ..Timeouts::default()
        };
        assert_eq!(huge.body_deadline(1), None);
    }

    #[test]
    fn the_rate_deadline_is_the_grace_plus_the_bytes_at_the_minimum_rate() {
        let t = Timeouts::default();
        assert_eq!(t.rate_deadline(0), Some(Duration::from_secs(10)));
        assert_eq!(t.rate_deadline(2_048), Some(Duration::from_secs(12)));
        assert_eq!(t.rate_deadline(512), Some(Duration::from_millis(10_500)));
    }

    /// The exchange deadlines in virtual time, phase by phase: the earliest applies and says why.
    #[test]
    #[allow(clippy::disallowed_methods)] // one real instant as the origin of virtual time
    fn the_next_deadline_follows_the_exchange_phase_by_phase() {
        let t = Timeouts::default();
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut x = ExchangeTimes {
            started: t0,
            last_byte: None,
            body_sent: None,
            head: None,
            sent: 0,
            received: 0,
            has_body: true,
        };
        // Sending a body: idle (30 s after the start) comes before the rate (connect 10 + grace 10).
        let d = t.next_deadline(&x);
        assert_eq!(
            (d.at, d.reason.as_str()),
            (
                Some(s(20)),
                "request body below the minimum rate of 1024 bytes/s (0 bytes)"
            )
        );
        x.sent = 30 * 1024;
        x.last_byte = Some(s(15));
        let d = t.next_deadline(&x);
        assert_eq!(d.at, Some(s(45)), "idle after the last byte: {}", d.reason);
        assert_eq!(d.reason, "no byte moved for 30s");
        x.sent = 100 * 1024;
        let d = t.next_deadline(&x);
        assert_eq!(d.at, Some(s(45)), "the rate allows 110 s, idle 45");
        x.last_byte = Some(s(100));
        let d = t.next_deadline(&x);
        assert_eq!(d.at, Some(s(120)), "{}", d.reason);
        assert!(d.reason.starts_with("request body below"), "{}", d.reason);
        // Body sent: the response head within 30 s of it (idle from the same byte ties: idle wins).
        x.body_sent = Some(s(101));
        x.last_byte = Some(s(101));
        let d = t.next_deadline(&x);
        assert_eq!(
            (d.at, d.reason.as_str()),
            (Some(s(131)), "no byte moved for 30s")
        );
        let quick = Timeouts {
            response_head: Duration::from_secs(5),
            ..Timeouts::default()
        };
        let d = quick.next_deadline(&x);
        assert_eq!(
            (d.at, d.reason.as_str()),
            (Some(s(106)), "no complete response head within 5s")
        );
        // No body: the head is awaited from the connect deadline on.
        let bodiless = ExchangeTimes {
            has_body: false,
            sent: 0,
            body_sent: None,
            last_byte: None,
            ..x
        };
        assert_eq!(quick.next_deadline(&bodiless).at, Some(s(15)));
        // The head arrived: the response body's rate from it, or idle.
        x.head = Some(s(110));
        x.last_byte = Some(s(110));
        x.received = 0;
        let d = t.next_deadline(&x);
        assert_eq!(
            (d.at, d.reason.as_str()),
            (
                Some(s(120)),
                "response body below the minimum rate of 1024 bytes/s (0 bytes)"
            )
        );
        x.received = 1 << 20;
        x.last_byte = Some(s(125));
        assert_eq!(t.next_deadline(&x).at, Some(s(155)));
        // No rate check: idle alone.
        let unlimited = Timeouts {
            min_rate: 0,
            ..Timeouts::default()
        };
        x.received = 0;
        assert_eq!(unlimited.next_deadline(&x).at, Some(s(155)));
        x.head = None;
        x.body_sent = None;
        assert_eq!(unlimited.next_deadline(&x).at, Some(s(155)));
        // An idle limit too far to represent: the other deadline still applies.
        let endless = Timeouts {
            idle: Duration::MAX,
            ..Timeouts::default()
        };
        x.sent = 0;
        assert_eq!(endless.next_deadline(&x).at, Some(s(20)));
        assert_eq!(endless.next_deadline(&bodiless).at, Some(s(40)));
    }

    #[test]
    fn a_body_below_the_minimum_rate_is_a_timeout_saying_how_slow() {
        let t = Timeouts::default();
        assert!(t.check_rate(2_048, Duration::from_secs(12)).is_ok());
        let e = t.check_rate(2_047, Duration::from_secs(12)).unwrap_err();
        assert_eq!(e.kind, crate::error::TransportErrorKind::Timeout);
        assert_eq!(
            e.message,
            "2047 bytes in 12.0 s is below the minimum rate of 1024 bytes/s"
        );
    }

    #[test]
    fn a_body_is_below_the_minimum_rate_only_after_the_grace_and_under_min_rate_per_second() {
        let t = Timeouts::default();
        assert!(!t.below_min_rate(0, Duration::from_secs(9)));
        assert!(!t.below_min_rate(0, Duration::from_secs(10)));
        // 2 s past the grace at 1,024 B/s: 2,048 bytes are enough, 2,047 are not.
        assert!(t.below_min_rate(2_047, Duration::from_secs(12)));
        assert!(!t.below_min_rate(2_048, Duration::from_secs(12)));
        assert!(!t.below_min_rate(1_000_000, Duration::from_secs(12)));
        assert!(t.below_min_rate(511, Duration::from_millis(10_500)));
        assert!(!t.below_min_rate(512, Duration::from_millis(10_500)));
    }

    #[test]
    fn the_host_name_may_reach_60_characters_except_through_the_accelerate_endpoint() {
        // 26 + 16 characters: ".cos." and ".myqcloud.com" make the host exactly 60.
        let bucket = "abcdefghijklmnop-1250000000";
        let region = "ap-abcdefghijklm";
        assert_eq!(bucket.len() + region.len(), 43);
        let short_region = &region[..15];
        let c = Config::new(bucket, short_region, creds()).unwrap();
        assert_eq!(c.host().len(), 60);
        let long = Config::new(bucket, region, creds()).unwrap_err();
        assert!(
            matches!(long, Error::InvalidInput(InvalidInput::Bucket { .. })),
            "{long:?}"
        );
        // The same bucket and region through the accelerate or a custom endpoint are fine.
        let c = Config::new(bucket, short_region, creds()).unwrap();
        let mut c = c;
        c.region = Region::new(region).unwrap();
        assert!(c.clone().with_endpoint(Endpoint::Default).is_err());
        let acc = c.clone().with_endpoint(Endpoint::Accelerate).unwrap();
        assert_eq!(acc.host(), format!("{bucket}.cos.accelerate.myqcloud.com"));
        let long_bucket = "abcdefghijklmnopqrstuvwxyzabcdefghijkl-1250000000";
        let acc = Config::new(long_bucket, "ap-beijing", creds())
            .unwrap_err()
            .to_string();
        assert!(acc.contains("60 characters"), "{acc}");
        let mut c = Config::new("b-1250000000", "ap-beijing", creds()).unwrap();
        c.bucket = Bucket::new(long_bucket).unwrap();
        assert!(c.clone().with_endpoint(Endpoint::Accelerate).is_ok());
        assert!(c.clone().with_endpoint(Endpoint::TencentCos).is_err());
        let custom = Endpoint::custom("http://127.0.0.1:9000").unwrap();
        assert_eq!(c.with_endpoint(custom).unwrap().host(), "127.0.0.1:9000");
    }

    #[test]
    fn from_lookup_takes_empty_values_as_unset_and_reads_the_cos_credentials() {
        let c = Config::from_lookup(lookup(&[
            ("COS_BUCKET", "examplebucket-1250000000"),
            ("COS_REGION", ""),
            ("TENCENTCLOUD_REGION", "ap-beijing"),
            ("COS_SECRET_ID", "AKID"),
            ("COS_SECRET_KEY", "KEY"),
            ("COS_ENDPOINT", "http://127.0.0.1:9000"),
        ]))
        .unwrap();
        assert_eq!(c.region.as_str(), "ap-beijing");
        assert_eq!(c.credentials.secret_id(), "AKID");
        assert_eq!(c.credentials.secret_key(), "KEY");
        assert_eq!(c.host(), "127.0.0.1:9000");
        assert_eq!(c.scheme(), "http");

        let none = Config::from_lookup(lookup(&[
            ("COS_BUCKET", "examplebucket-1250000000"),
            ("COS_REGION", "ap-beijing"),
            ("COS_SECRET_ID", ""),
        ]))
        .unwrap();
        assert!(!none.credentials.is_complete());
        assert_eq!(none.scheme(), "https");

        let missing =
            Config::from_lookup(lookup(&[("COS_BUCKET", ""), ("COS_REGION", "ap-beijing")]))
                .unwrap_err();
        assert!(
            matches!(
                missing,
                Error::InvalidInput(InvalidInput::Parameter {
                    name: "COS_BUCKET",
                    ..
                })
            ),
            "{missing:?}"
        );
    }

    #[test]
    fn a_ca_pem_must_hold_a_certificate() {
        let c = Config::new("examplebucket-1250000000", "ap-beijing", creds()).unwrap();
        assert!(matches!(
            c.clone().with_ca_pem("not a pem"),
            Err(Error::InvalidInput(InvalidInput::Parameter {
                name: "ca_pem",
                ..
            }))
        ));
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let c = c.with_ca_pem(pem).unwrap();
        assert_eq!(c.network.roots, crate::network::TlsRoots::Pem(pem.into()));
    }

    #[test]
    fn a_key_holds_at_most_850_bytes() {
        assert!(validate_key(&"k".repeat(850)).is_ok());
        let err = validate_key(&"k".repeat(851)).unwrap_err();
        assert!(err.to_string().contains("850"), "{err}");
        assert!(validate_key(&"é".repeat(425)).is_ok());
        assert!(validate_key(&format!("{}k", "é".repeat(425))).is_err());
        assert!(validate_file_key("dir/").is_err());
        assert!(validate_file_key("dir/f").is_ok());
    }
}
