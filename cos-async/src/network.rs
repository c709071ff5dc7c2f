//! Trust roots and proxy for the hyper client, as [`cos_core::network`] decides them: the rustls
//! configuration (built-in Mozilla roots, the platform's with the `native-roots` feature, or exactly the
//! CA certificates of the config), and a connector that tunnels through the proxy with `CONNECT`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use cos_core::network::{Proxy, TlsRoots};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A direct TCP connection, or one tunnelled through a proxy.
#[derive(Clone)]
pub(crate) enum Conn {
    Direct(HttpConnector),
    Tunnel(Tunnel<HttpConnector>),
}

impl tower_service::Service<http::Uri> for Conn {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Conn::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Conn::Tunnel(c) => c.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        match self {
            Conn::Direct(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Conn::Tunnel(c) => {
                // CONNECT needs the port; an `http` URI without one means 80.
                let dst = with_port(dst);
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
        }
    }
}

fn with_port(uri: http::Uri) -> http::Uri {
    if uri.port().is_some() {
        return uri;
    }
    let port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let Some(host) = uri.host() else { return uri };
    format!(
        "{}://{host}:{port}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    )
    .parse()
    .unwrap_or(uri)
}

/// The rustls client configuration for `roots`.
fn tls_config(roots: &TlsRoots) -> Result<rustls::ClientConfig, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut store = rustls::RootCertStore::empty();
    match roots {
        TlsRoots::Pem(pem) => {
            use rustls::pki_types::pem::PemObject;
            let mut n = 0;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("the CA certificates (PEM): {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("the CA certificates (PEM): {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err("the CA certificates (PEM): no certificate".into());
            }
        }
        TlsRoots::Native => {
            #[cfg(feature = "native-roots")]
            {
                let found = rustls_native_certs_load()?;
                store.add_parsable_certificates(found);
            }
            #[cfg(not(feature = "native-roots"))]
            return Err(
                "TlsRoots::Native needs the `native-roots` feature of cos-async".to_string(),
            );
        }
        _ => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(builder.with_root_certificates(store).with_no_client_auth())
}

#[cfg(feature = "native-roots")]
fn rustls_native_certs_load() -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let r = rustls_native_certs::load_native_certs();
    if r.certs.is_empty() {
        return Err(format!(
            "no certificates in the platform's trust store: {:?}",
            r.errors
        ));
    }
    Ok(r.certs)
}

/// The HTTPS-or-HTTP connector: TLS with `roots`, through `proxy` when there is one.
pub(crate) fn connector(
    roots: &TlsRoots,
    proxy: Option<&Proxy>,
    connect_timeout: Duration,
) -> Result<HttpsConnector<Conn>, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let conn = match proxy {
        None => Conn::Direct(http),
        Some(p) => {
            let dst: http::Uri = format!("http://{}", p.authority())
                .parse()
                .map_err(|e| format!("proxy {p}: {e}"))?;
            let mut tunnel = Tunnel::new(dst, http);
            if let Some(auth) = p.authorization() {
                let mut v = http::HeaderValue::from_str(&auth)
                    .map_err(|_| format!("proxy {p}: credentials HTTP cannot carry"))?;
                v.set_sensitive(true);
                tunnel = tunnel.with_auth(v);
            }
            Conn::Tunnel(tunnel)
        }
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(roots)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(conn))
}
