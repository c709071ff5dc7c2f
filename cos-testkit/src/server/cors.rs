//! CORS as COS does it: the bucket's CORS configuration (`PUT` / `GET` / `DELETE /?cors`), preflight
//! `OPTIONS` answered from its rules without a signature, and `Access-Control-*` headers on every answer to
//! a request whose `Origin` a rule allows (errors included).
//!
//! The `<CORSConfiguration>` document is read and written with `cos_core::ops::CorsConfiguration`, the
//! same code the SDK sends it with. Decisions where COS documents little:
//! - A rule matches when one `AllowedOrigin` matches the `Origin` (`*` matches any run of characters,
//!   ASCII case-insensitive), the method (the preflight's `Access-Control-Request-Method`) is an
//!   `AllowedMethod`, and, for a preflight, every header of `Access-Control-Request-Headers` matches an
//!   `AllowedHeader` (`*` wildcards, case-insensitive). The first matching rule answers.
//! - Preflight with no configuration, no `Origin`, no `Access-Control-Request-Method` or no matching rule:
//!   403 `AccessForbidden` (COS's "CORSResponse: This CORS request is not allowed…").
//! - `Access-Control-Allow-Origin` is `*` when the matching origin is exactly `*`, else the request's
//!   `Origin`. `Vary: Origin` is on every preflight answer, and on other answers when the origin is echoed
//!   (the answer differs by origin) or the configuration says `<ResponseVary>true</ResponseVary>`.
//! - `PUT /?cors` needs `Content-MD5` (400 `MissingContentMD5`, or `InvalidDigest` when it differs), a
//!   parseable document (400 `MalformedXML`) and valid rules (400 `InvalidArgument`); `GET` on a bucket
//!   without rules: 404 `NoSuchCORSConfiguration`; `DELETE`: 204.
//! - With a data directory the configuration is kept in `DIR/cors.xml` (written atomically).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use cos_core::ops::{CorsConfiguration, CorsRule, CORS_METHODS};
use http::{HeaderMap, HeaderValue, Method, Response};
use http_body_util::BodyExt;

use super::buckets;
use super::sigv::{self, SignedRequest};
use super::util::random_hex;
use super::{respond, xml_response, ApiError, Body, Ctx};

/// The response headers browsers need to read after an upload, exposed by [`dev_rule`].
pub const DEV_EXPOSE_HEADERS: &[&str] = &[
    "ETag",
    "Content-Length",
    "x-cos-request-id",
    "x-cos-hash-crc64ecma",
    "x-cos-next-append-position",
    "x-cos-version-id",
];

/// A permissive development rule: any origin, every method the upload flows use, any request header, and
/// the response headers of [`DEV_EXPOSE_HEADERS`] exposed; preflights cached for 10 minutes.
pub fn dev_rule() -> CorsRule {
    let mut rule = CorsRule::new()
        .id("cos-testkit-dev")
        .allowed_origin("*")
        .allowed_methods(CORS_METHODS.iter().copied())
        .allowed_header("*")
        .max_age_seconds(600);
    for h in DEV_EXPOSE_HEADERS {
        rule = rule.expose_header(*h);
    }
    rule
}

/// The bucket's CORS configuration, persisted when the server has a data directory.
pub(crate) struct CorsState {
    dir: Option<PathBuf>,
    config: RwLock<Option<CorsConfiguration>>,
}

impl CorsState {
    /// Loads `DIR/cors.xml` if there is one; `initial`, when given, replaces it (and is saved).
    pub(crate) fn open(
        dir: Option<&Path>,
        initial: Option<CorsConfiguration>,
    ) -> io::Result<CorsState> {
        let state = CorsState {
            dir: dir.map(Path::to_path_buf),
            config: RwLock::new(None),
        };
        match initial {
            Some(c) => state.set(Some(c))?,
            None => {
                if let Some(d) = dir {
                    match std::fs::read_to_string(d.join("cors.xml")) {
                        Ok(text) => {
                            let c = CorsConfiguration::from_xml(&text)
                                .map_err(|e| io::Error::other(format!("cors.xml: {e}")))?;
                            *state.config.write().unwrap_or_else(|e| e.into_inner()) = Some(c);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(state)
    }

    /// The configuration now.
    pub(crate) fn get(&self) -> Option<CorsConfiguration> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces (or with `None` removes) the configuration, on disk first.
    pub(crate) fn set(&self, config: Option<CorsConfiguration>) -> io::Result<()> {
        let mut guard = self.config.write().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = &self.dir {
            let path = d.join("cors.xml");
            match &config {
                Some(c) => {
                    let tmp = d.join("tmp").join(format!("cors-{}", random_hex(1)));
                    std::fs::write(&tmp, c.to_xml())?;
                    std::fs::rename(&tmp, &path)?;
                }
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
            }
        }
        *guard = config;
        Ok(())
    }
}

/// The operation name of the requests this file answers: `OPTIONS` anywhere, `?cors` on the bucket root.
pub(crate) fn operation(ctx: &Ctx) -> Option<&'static str> {
    if ctx.method == Method::OPTIONS {
        return Some("OptionsObject");
    }
    let root = ctx.key.as_ref().is_ok_and(|k| k.is_empty());
    if !root || ctx.q("cors").is_none() {
        return None;
    }
    match ctx.method {
        Method::PUT => Some("PutBucketCors"),
        Method::GET => Some("GetBucketCors"),
        Method::DELETE => Some("DeleteBucketCors"),
        _ => None,
    }
}

/// Answers the operations [`operation`] names; `None` for every other one.
pub(crate) async fn dispatch(
    ctx: &mut Ctx,
    op: &'static str,
) -> Option<Result<Response<Body>, ApiError>> {
    if !matches!(
        op,
        "OptionsObject" | "PutBucketCors" | "GetBucketCors" | "DeleteBucketCors"
    ) {
        return None;
    }
    Some(answer(ctx, op).await)
}

async fn answer(ctx: &mut Ctx, op: &'static str) -> Result<Response<Body>, ApiError> {
    if let Some(b) = buckets::bucket_of_host(&ctx.host) {
        if buckets::find(&ctx.inner, &b).is_none() {
            return Err(buckets::no_such_bucket());
        }
    }
    if op == "OptionsObject" {
        return preflight(ctx);
    }
    sigv::verify(
        &SignedRequest {
            method: ctx.method.as_str(),
            key: "",
            query: &ctx.query,
            headers: &ctx.headers,
            now: ctx.now,
        },
        &ctx.inner.creds,
        ctx.inner.token().as_deref(),
    )?;
    let state = &ctx.inner.cors;
    match op {
        "PutBucketCors" => {
            let body = read_body(ctx).await?;
            let want = ctx.header("content-md5").ok_or_else(|| {
                ApiError::new(
                    400,
                    "MissingContentMD5",
                    "Missing required header for this request: Content-MD5.",
                )
            })?;
            if want.trim() != cos_core::checksum::content_md5(&body) {
                return Err(ApiError::new(
                    400,
                    "InvalidDigest",
                    "The Content-MD5 you specified did not match what we received.",
                ));
            }
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::new(400, "MalformedXML", "The XML is not UTF-8."))?;
            let config = CorsConfiguration::from_xml(text)
                .map_err(|e| ApiError::new(400, "MalformedXML", e))?;
            config.validate().map_err(ApiError::invalid)?;
            ctx.inner.cors.set(Some(config))?;
            Ok(respond(200, Body::empty(), &[]))
        }
        "GetBucketCors" => match state.get() {
            Some(c) => Ok(xml_response(c.to_xml())),
            None => Err(ApiError::new(
                404,
                "NoSuchCORSConfiguration",
                "The CORS configuration does not exist.",
            )),
        },
        _ => {
            state.set(None)?;
            Ok(respond(204, Body::empty(), &[]))
        }
    }
}

async fn read_body(ctx: &mut Ctx) -> Result<Vec<u8>, ApiError> {
    let Some(mut body) = ctx.body.take() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| {
            ApiError::new(
                400,
                "RequestTimeout",
                format!("reading the body failed: {e}"),
            )
        })?;
        if let Ok(d) = f.into_data() {
            out.extend_from_slice(&d);
            if out.len() > cos_core::ops::MAX_CORS_XML_BYTES {
                return Err(ApiError::new(
                    400,
                    "EntityTooLarge",
                    "The CORS configuration is larger than 64 KB.",
                ));
            }
        }
    }
    Ok(out)
}

/// `*` matches any run of characters; ASCII case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The first rule allowing `origin` with `method` (and, for a preflight, `headers`), and the origin
/// pattern that matched.
fn find<'a>(
    config: &'a CorsConfiguration,
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<(&'a CorsRule, &'a str)> {
    config.rules.iter().find_map(|r| {
        let o = r.allowed_origins.iter().find(|o| glob(o, origin))?;
        if !r
            .allowed_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
        {
            return None;
        }
        let all_allowed = headers
            .iter()
            .all(|h| r.allowed_headers.iter().any(|a| glob(a, h)));
        all_allowed.then_some((r, o.as_str()))
    })
}

fn forbidden(why: &str) -> ApiError {
    ApiError::new(
        403,
        "AccessForbidden",
        format!(
            "CORSResponse: This CORS request is not allowed. This is usually because the evaluation of \
             Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers \
             are not whitelisted by the resource's CORS spec ({why})."
        ),
    )
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn allow_origin(pattern: &str, origin: &str) -> String {
    if pattern == "*" {
        "*".into()
    } else {
        origin.into()
    }
}

fn preflight(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let config = ctx
        .inner
        .cors
        .get()
        .ok_or_else(|| forbidden("the bucket has no CORS configuration"))?;
    let origin = ctx
        .header("origin")
        .ok_or_else(|| forbidden("no Origin header"))?;
    let method = ctx
        .header("access-control-request-method")
        .ok_or_else(|| forbidden("no Access-Control-Request-Method header"))?;
    let asked = ctx.header("access-control-request-headers");
    let headers: Vec<String> = asked
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let (rule, pattern) = find(&config, &origin, method.trim(), &headers)
        .ok_or_else(|| forbidden("no rule matches"))?;
    let mut r = respond(200, Body::empty(), &[]);
    let h = r.headers_mut();
    set(
        h,
        "access-control-allow-origin",
        &allow_origin(pattern, &origin),
    );
    set(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if let Some(asked) = asked.filter(|_| !headers.is_empty()) {
        set(h, "access-control-allow-headers", asked.trim());
    }
    if !rule.expose_headers.is_empty() {
        set(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set(h, "access-control-max-age", &age.to_string());
    }
    set(h, "vary", "Origin");
    Ok(r)
}

/// Adds `Access-Control-*` headers to an answer (any status) when the request's `Origin` and method match
/// a rule. Preflight answers are left as they are.
pub(crate) fn decorate(ctx: &Ctx, r: &mut Response<Body>) {
    if ctx.method == Method::OPTIONS {
        return;
    }
    let (Some(origin), Some(config)) = (ctx.header("origin"), ctx.inner.cors.get()) else {
        return;
    };
    let Some((rule, pattern)) = find(&config, &origin, ctx.method.as_str(), &[]) else {
        return;
    };
    let h = r.headers_mut();
    let allow = allow_origin(pattern, &origin);
    set(h, "access-control-allow-origin", &allow);
    set(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        set(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if allow != "*" || config.response_vary == Some(true) {
        set(h, "vary", "Origin");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "http://a.example.com"));
        assert!(glob("http://*.example.com", "http://a.b.Example.com"));
        assert!(!glob("http://*.example.com", "http://example.com"));
        assert!(glob("http://localhost:*", "http://localhost:8080"));
        assert!(!glob("http://localhost:*", "https://localhost:8080"));
        assert!(glob("x-cos-meta-*", "x-cos-meta-a"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("", ""));
        assert!(!glob("", "a"));
    }

    #[test]
    fn first_matching_rule_answers() {
        let config = CorsConfiguration::new(vec![
            CorsRule::new()
                .id("meta")
                .allowed_origin("https://*.example.com")
                .allowed_method("PUT")
                .allowed_header("x-cos-meta-*")
                .allowed_header("content-type"),
            dev_rule(),
        ]);
        let hs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (r, p) = find(
            &config,
            "https://app.example.com",
            "PUT",
            &hs(&["x-cos-meta-a", "content-type"]),
        )
        .unwrap();
        assert_eq!(
            (r.id.as_deref(), p),
            (Some("meta"), "https://*.example.com")
        );
        let (r, p) = find(
            &config,
            "https://app.example.com",
            "PUT",
            &hs(&["authorization"]),
        )
        .unwrap();
        assert_eq!((r.id.as_deref(), p), (Some("cos-testkit-dev"), "*"));
        let only = CorsConfiguration::new(vec![config.rules[0].clone()]);
        assert!(find(&only, "https://app.example.com", "GET", &[]).is_none());
        assert!(find(&only, "http://app.example.com", "PUT", &[]).is_none());
        assert!(find(&only, "https://app.example.com", "PUT", &hs(&["x-other"])).is_none());
    }
}
