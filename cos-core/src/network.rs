//! How the drivers reach the endpoint: which certificates are trusted, and which proxy (if any) is used.
//!
//! The decisions are made here, once, so both clients behave the same:
//!
//! - **Trust roots** ([`TlsRoots`]): Mozilla's roots built in (the default), the platform's roots (the
//!   drivers' `native-roots` feature), or exactly the CA certificates given in PEM (as the official SDKs'
//!   `Verify`/`ca` options: a given bundle replaces the defaults). Certificate verification cannot be
//!   switched off.
//! - **Proxy** ([`ProxySetting`]): by default the environment (`https_proxy`/`HTTPS_PROXY` for `https`
//!   endpoints, `http_proxy`/`HTTP_PROXY` for `http` ones, `all_proxy`/`ALL_PROXY` for both, lower case
//!   first; `no_proxy`/`NO_PROXY` lists hosts to reach directly), an explicit [`Proxy`] (with optional
//!   credentials), or none. Both drivers tunnel through the proxy with `CONNECT host:port` (for `http`
//!   endpoints too), sending `Proxy-Authorization: Basic …` when the proxy has credentials.

use std::fmt;

use base64::Engine;

use crate::error::InvalidInput;

/// Which certificates a TLS server must chain to.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's root certificates, built in (the default).
    #[default]
    WebPki,
    /// The platform's trust store (needs the drivers' `native-roots` feature; without it the drivers
    /// refuse to build a client with this setting).
    Native,
    /// Exactly these CA certificates (PEM text, one or more `BEGIN CERTIFICATE` blocks), e.g. a private or
    /// test CA. They replace the defaults.
    Pem(String),
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsRoots::WebPki => f.write_str("WebPki"),
            TlsRoots::Native => f.write_str("Native"),
            TlsRoots::Pem(p) => write!(
                f,
                "Pem({} certificates)",
                p.matches("BEGIN CERTIFICATE").count()
            ),
        }
    }
}

/// An HTTP proxy: `http://[user:password@]host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port]` (port 80 by default; a bare `host:port` is taken as
    /// `http://`). User and password may be percent-encoded.
    ///
    /// ```
    /// let p = cos_core::network::Proxy::parse("http://alice:s%40cret@proxy.corp:3128").unwrap();
    /// assert_eq!(p.authority(), "proxy.corp:3128");
    /// assert_eq!(p.authorization().as_deref(), Some("Basic YWxpY2U6c0BjcmV0"));
    /// assert!(!format!("{p:?}").contains("cret"));
    /// ```
    pub fn parse(url: &str) -> Result<Proxy, InvalidInput> {
        let bad = || InvalidInput::Parameter {
            name: "proxy",
            reason: "expected http://[user:password@]host[:port]".into(),
        };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(_) => return Err(bad()),
            None => url,
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let dec = |s: &str| crate::auth::decode(s).unwrap_or_else(|| s.to_string());
            (dec(user), dec(pass))
        });
        let auth: http::uri::Authority = hostport.parse().map_err(|_| bad())?;
        let host = auth.host().to_string();
        if host.is_empty() {
            return Err(bad());
        }
        let port = match auth.port_u16() {
            Some(0) => return Err(bad()),
            Some(p) => p,
            None if hostport.ends_with(':') => return Err(bad()),
            None => 80,
        };
        Ok(Proxy {
            host,
            port,
            credentials,
        })
    }

    /// Adds credentials sent as `Proxy-Authorization: Basic`.
    pub fn with_credentials(mut self, user: &str, password: &str) -> Proxy {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// `host:port` of the proxy.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The proxy host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user, when the proxy has credentials.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }

    /// The `Proxy-Authorization` value, when the proxy has credentials. Never log it.
    pub fn authorization(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    /// `http://[user:password@]host:port`, with the credentials percent-encoded: for drivers whose
    /// libraries take a URL. Never log it.
    pub fn url_with_credentials(&self) -> String {
        match &self.credentials {
            Some((u, p)) => format!(
                "http://{}:{}@{}",
                crate::auth::encode(u),
                crate::auth::encode(p),
                self.authority()
            ),
            None => format!("http://{}", self.authority()),
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("authority", &self.authority())
            .field("user", &self.user())
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority())
    }
}

/// Where the proxy setting comes from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxySetting {
    /// `https_proxy`, `http_proxy`, `all_proxy`, `no_proxy` (and their upper-case forms), read when the
    /// client is built (the default).
    #[default]
    FromEnv,
    /// This proxy, whatever the environment says; `no_proxy` hosts (comma-separated, as `NO_PROXY`) are
    /// reached directly.
    Explicit {
        /// The proxy.
        proxy: Proxy,
        /// Hosts reached directly.
        no_proxy: String,
    },
    /// Always connect directly.
    Direct,
}

/// Connection settings the drivers apply: trust roots and proxy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Network {
    /// Which certificates a TLS server must chain to.
    pub roots: TlsRoots,
    /// Which proxy to use.
    pub proxy: ProxySetting,
}

impl Network {
    /// The proxy for requests to `scheme://host[:port]`, with environment variables read through
    /// `env`; `None` to connect directly.
    ///
    /// ```
    /// use cos_core::network::Network;
    /// let env = |n: &str| match n {
    ///     "HTTPS_PROXY" => Some("http://proxy:3128".to_string()),
    ///     "NO_PROXY" => Some("localhost,.internal.example".to_string()),
    ///     _ => None,
    /// };
    /// let n = Network::default();
    /// assert_eq!(n.proxy_for("https", "b.cos.ap-guangzhou.myqcloud.com", env).unwrap().authority(), "proxy:3128");
    /// assert!(n.proxy_for("http", "b.cos.ap-guangzhou.myqcloud.com", env).is_none());
    /// assert!(n.proxy_for("https", "cos.internal.example:443", env).is_none());
    /// ```
    pub fn proxy_for(
        &self,
        scheme: &str,
        authority: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Proxy> {
        let (proxy, no_proxy) = match &self.proxy {
            ProxySetting::Direct => return None,
            ProxySetting::Explicit { proxy, no_proxy } => (proxy.clone(), no_proxy.clone()),
            ProxySetting::FromEnv => {
                let get = |name: &str| {
                    env(&name.to_ascii_lowercase())
                        .or_else(|| env(name))
                        .filter(|v| !v.trim().is_empty())
                };
                let var = if scheme == "https" {
                    "HTTPS_PROXY"
                } else {
                    "HTTP_PROXY"
                };
                let url = get(var).or_else(|| get("ALL_PROXY"))?;
                // A proxy URL that cannot be used is ignored rather than guessed at.
                let proxy = Proxy::parse(url.trim()).ok()?;
                (proxy, get("NO_PROXY").unwrap_or_default())
            }
        };
        if bypass(&no_proxy, authority) {
            None
        } else {
            Some(proxy)
        }
    }
}

/// Whether `authority` (`host[:port]`) matches a `NO_PROXY` list: `*` matches everything; `example.com`
/// and `.example.com` match that host and its subdomains; `host:port` matches that port only; IP
/// addresses match exactly. Case-insensitive.
pub fn bypass(no_proxy: &str, authority: &str) -> bool {
    let (host, port) = split_host_port(authority);
    let host = host.to_ascii_lowercase();
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (ehost, eport) = split_host_port(entry);
            if eport.is_some() && eport != port {
                return false;
            }
            let ehost = ehost.trim_start_matches("*.").trim_start_matches('.');
            let ehost = ehost.to_ascii_lowercase();
            host == ehost || host.ends_with(&format!(".{ehost}"))
        })
}

fn split_host_port(a: &str) -> (&str, Option<&str>) {
    if let Some(rest) = a.strip_prefix('[') {
        // [v6]:port
        return match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (a, None),
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (a, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        assert!(bypass("*", "anything:1"));
        assert!(bypass("example.com", "example.com"));
        assert!(bypass("example.com", "a.b.example.com:443"));
        assert!(bypass(".example.com", "a.example.com"));
        assert!(!bypass("example.com", "badexample.com"));
        assert!(bypass("127.0.0.1", "127.0.0.1:9000"));
        assert!(bypass("localhost:9000", "localhost:9000"));
        assert!(!bypass("localhost:9000", "localhost:9001"));
        assert!(bypass(" a.com , B.COM ", "b.com"));
        assert!(bypass("::1", "[::1]:80"));
        assert!(!bypass("", "x"));
    }

    #[test]
    fn env_precedence_and_explicit() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let n = Network::default();
        let e = env(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ]);
        assert_eq!(n.proxy_for("https", "h", e).unwrap().authority(), "lower:1");
        let e = env(&[("ALL_PROXY", "all:3")]);
        assert_eq!(n.proxy_for("http", "h", e).unwrap().authority(), "all:3");
        assert!(n
            .proxy_for("http", "h", env(&[("HTTP_PROXY", "socks5://x:1")]))
            .is_none());
        let explicit = Network {
            proxy: ProxySetting::Explicit {
                proxy: Proxy::parse("p:8080").unwrap(),
                no_proxy: "direct.example".into(),
            },
            ..Default::default()
        };
        assert_eq!(
            explicit
                .proxy_for("http", "h", env(&[("HTTP_PROXY", "http://other:1")]))
                .unwrap()
                .authority(),
            "p:8080"
        );
        assert!(explicit
            .proxy_for("http", "direct.example", |_| None)
            .is_none());
        let direct = Network {
            proxy: ProxySetting::Direct,
            ..Default::default()
        };
        assert!(direct
            .proxy_for("https", "h", env(&[("HTTPS_PROXY", "http://p:1")]))
            .is_none());
    }

    #[test]
    fn proxy_parsing() {
        assert!(Proxy::parse("https://p:1").is_err());
        assert!(Proxy::parse("http://p:0").is_err());
        assert!(Proxy::parse("http://p:1/path").is_err());
        let p = Proxy::parse("http://u:p%3Aw@h:1").unwrap();
        assert_eq!((p.user(), p.authority().as_str()), (Some("u"), "h:1"));
        assert_eq!(p.url_with_credentials(), "http://u:p%3Aw@h:1");
        assert_eq!(Proxy::parse("h").unwrap().port(), 80);
    }

    #[test]
    fn a_proxy_shows_its_host_and_port_and_hides_its_password() {
        assert!(Proxy::parse("http://proxy:").is_err());
        assert!(Proxy::parse("http://u:p@:3128").is_err());
        let p = Proxy::parse("http://alice:s%40cret@proxy.corp:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 3128));
        // base64("alice:s@cret")
        assert_eq!(p.authorization().as_deref(), Some("Basic YWxpY2U6c0BjcmV0"));
        assert_eq!(p.to_string(), "http://proxy.corp:3128");
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("cret") && debug.contains("alice"),
            "{debug}"
        );
        let bare = Proxy::parse("proxy.corp:8080").unwrap();
        assert_eq!(bare.authorization(), None);
        assert_eq!(bare.url_with_credentials(), "http://proxy.corp:8080");
        let added = bare.with_credentials("bob", "pw");
        assert_eq!(added.authorization().as_deref(), Some("Basic Ym9iOnB3"));
    }

    #[test]
    fn trust_roots_show_how_many_certificates_not_the_pem() {
        assert_eq!(format!("{:?}", TlsRoots::WebPki), "WebPki");
        assert_eq!(format!("{:?}", TlsRoots::Native), "Native");
        let pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n".repeat(2);
        assert_eq!(format!("{:?}", TlsRoots::Pem(pem)), "Pem(2 certificates)");
    }
}
