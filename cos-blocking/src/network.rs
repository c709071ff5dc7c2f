//! Trust roots and proxy for the ureq agent, as [`cos_core::network`] decides them: the TLS roots
//! (built-in Mozilla roots, the platform's with the `native-roots` feature, or exactly the CA certificates
//! of the config), and the proxy (ureq tunnels with `CONNECT`, sending `Proxy-Authorization: Basic`).
//! ureq's own reading of the environment is switched off: the core's decision is the only one.

use cos_core::network::{Proxy, TlsRoots};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// The TLS settings for `roots`.
pub(crate) fn tls_config(roots: &TlsRoots) -> Result<TlsConfig, String> {
    let roots = match roots {
        TlsRoots::Pem(pem) => {
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(pem.as_bytes()) {
                match item.map_err(|e| format!("the CA certificates (PEM): {e}"))? {
                    ureq::tls::PemItem::Certificate(c) => certs.push(c),
                    _ => continue,
                }
            }
            if certs.is_empty() {
                return Err("the CA certificates (PEM): no certificate".into());
            }
            RootCerts::new_with_certs(&certs.into_iter().collect::<Vec<Certificate<'static>>>())
        }
        TlsRoots::Native => {
            #[cfg(feature = "native-roots")]
            {
                RootCerts::PlatformVerifier
            }
            #[cfg(not(feature = "native-roots"))]
            return Err(
                "TlsRoots::Native needs the `native-roots` feature of cos-blocking".to_string(),
            );
        }
        _ => RootCerts::WebPki,
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// The ureq proxy for `proxy` (`None`: connect directly, whatever the environment says).
pub(crate) fn ureq_proxy(proxy: Option<&Proxy>) -> Result<Option<ureq::Proxy>, String> {
    proxy
        .map(|p| ureq::Proxy::new(&p.url_with_credentials()).map_err(|e| format!("proxy {p}: {e}")))
        .transpose()
}
