//! POST Object: browser-style `multipart/form-data` uploads authorised by a signed policy.
//!
//! The form body is read into memory (form uploads are meant for small files; the body is capped at 5 GB).
//! Checks, in order: the signature fields (`q-ak` → 403 `InvalidAccessKeyId`, key time → 403 `AccessDenied`
//! "Request has expired"), `q-signature = hex(HMAC-SHA1(SignKey, hex(SHA1(policy JSON))))` (403
//! `SignatureDoesNotMatch`), the policy's expiration (403 `AccessDenied`), that it pins `q-sign-algorithm`,
//! `q-ak`, `q-sign-time`, the bucket and the key (403 `AccessDenied`), then every condition (403
//! `AccessDenied`; `content-length-range` → 400 `EntityTooLarge` / `EntityTooSmall`).

use bytes::Bytes;
use cos_core::auth::{encode, KeyTime};
use cos_core::checksum::BodyDigest;
use cos_core::post_policy::{verify_form, FormSubmission, PolicyViolation};
use http::Response;
use http_body_util::BodyExt;

use super::ops::{attrs_from, commit_object, MAX_OBJECT};
use super::store::{Data, ObjectMeta};
use super::util::el;
use super::{respond, xml_response, ApiError, Body, Ctx};

struct FormPart {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    value: Bytes,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// `name="x"; filename="y"` parameters of a `Content-Disposition`.
fn disposition_param(v: &str, name: &str) -> Option<String> {
    v.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn parse_form(body: &Bytes, boundary: &str) -> Option<Vec<FormPart>> {
    let delim = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return None;
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':')?;
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        let start = head_end + 4;
        let end = find(body, next.as_bytes(), start)?;
        parts.push(FormPart {
            name: name?,
            filename,
            content_type,
            value: body.slice(start..end),
        });
        pos = end + next.len();
    }
}

fn denied(msg: impl Into<String>) -> ApiError {
    ApiError::new(403, "AccessDenied", msg)
}

/// The COS answer to a policy violation; a key time that has not started yet is clock skew, as for
/// signed requests.
fn violation(v: PolicyViolation, key_time: Option<&str>, now: u64) -> ApiError {
    if let PolicyViolation::KeyTimeNotValid { .. } = &v {
        if key_time
            .and_then(KeyTime::parse)
            .is_some_and(|k| k.start > now)
        {
            return ApiError::new(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.",
            );
        }
        if key_time
            .and_then(KeyTime::parse)
            .is_some_and(|k| k.end < now)
        {
            return denied("Request has expired");
        }
    }
    let mut e = ApiError::new(v.status(), v.code(), v.to_string());
    if let PolicyViolation::SignatureMismatch { string_to_sign } = &v {
        e.extra.push(("StringToSign", string_to_sign.clone()));
    }
    e
}

pub(crate) async fn post_object(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let ct = ctx.header("content-type").unwrap_or_default();
    let b = boundary(&ct).ok_or_else(|| {
        ApiError::new(
            400,
            "MalformedPOSTRequest",
            "The multipart/form-data has no boundary.",
        )
    })?;
    let mut body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::internal("body already read"))?;
    let mut buf = Vec::new();
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| {
            ApiError::new(
                400,
                "RequestTimeout",
                format!("reading the body failed: {e}"),
            )
        })?;
        if let Ok(d) = f.into_data() {
            buf.extend_from_slice(&d);
            if buf.len() as u64 > MAX_OBJECT + (1 << 20) {
                return Err(ApiError::new(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.",
                ));
            }
        }
    }
    let body = Bytes::from(buf);
    let parts = parse_form(&body, &b).ok_or_else(|| {
        ApiError::new(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    })?;
    let file = parts
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("file"))
        .ok_or_else(|| {
            ApiError::new(
                400,
                "MalformedPOSTRequest",
                "The POST request has no file field.",
            )
        })?;
    // The non-file fields, in the order received. The policy rules are cos-core's, shared with the SDK.
    let fields: Vec<(String, String)> = parts
        .iter()
        .filter(|p| !p.name.eq_ignore_ascii_case("file"))
        .map(|p| {
            (
                p.name.clone(),
                String::from_utf8_lossy(&p.value).into_owned(),
            )
        })
        .collect();
    let size = file.value.len() as u64;
    let creds = ctx.inner.creds.clone();
    let creds = match ctx.inner.token() {
        Some(t) => creds.with_security_token(t),
        None => creds,
    };
    let submission = FormSubmission {
        fields: &fields,
        filename: file.filename.as_deref().unwrap_or(""),
        file_len: size,
        bucket: &ctx.inner.bucket,
    };
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ctx.now);
    let verified = verify_form(&submission, now, |ak| {
        (ak == creds.secret_id()).then(|| creds.clone())
    })
    .map_err(|v| violation(v, submission.field("q-key-time"), ctx.now))?;
    let key = verified.key.clone();
    let mut headers = verified.object_headers.clone();
    if !headers.iter().any(|(k, _)| k == "content-type") {
        if let Some(ct) = &file.content_type {
            headers.push(("content-type".into(), ct.clone()));
        }
    }
    let attrs = attrs_from(&headers)?;
    let d = BodyDigest::of(&file.value);
    let data = if ctx.inner.store.is_sink() {
        Data::None
    } else {
        let mut w = ctx.inner.store.writer(size).await?;
        if let Err(e) = w.write(&file.value).await {
            ctx.inner.store.abandon(w);
            return Err(e.into());
        }
        ctx.inner.store.finish(w).await?
    };
    let etag = format!("\"{}\"", d.md5_hex());
    let forbid = headers
        .iter()
        .any(|(k, v)| k == "x-cos-forbid-overwrite" && v.eq_ignore_ascii_case("true"));
    commit_object(
        &ctx.inner.store,
        ObjectMeta {
            key: key.clone(),
            size,
            etag: etag.clone(),
            crc64: d.crc64,
            attrs,
            appendable: false,
            last_modified: ctx.now,
            blob: None,
        },
        data,
        forbid,
    )?;
    let location = format!("http://{}/{}", ctx.host, cos_core::auth::encode_path(&key));
    let common = [
        ("etag", etag.clone()),
        ("location", location.clone()),
        ("x-cos-hash-crc64ecma", d.crc64.to_string()),
    ];
    if let Some(redirect) = verified.success_action_redirect.filter(|r| !r.is_empty()) {
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let to = format!(
            "{redirect}{sep}bucket={}&key={}&etag={}",
            encode(&ctx.inner.bucket),
            encode(&key),
            encode(&etag)
        );
        let mut h = common.to_vec();
        h.retain(|(k, _)| *k != "location");
        h.push(("location", to));
        return Ok(respond(303, Body::empty(), &h));
    }
    match verified.success_action_status {
        201 => {
            let mut r = xml_response(format!(
                "<PostResponse>{}{}{}{}</PostResponse>",
                el("Location", &location),
                el("Bucket", &ctx.inner.bucket),
                el("Key", &key),
                el("ETag", &etag)
            ));
            *r.status_mut() = http::StatusCode::CREATED;
            for (k, v) in &common {
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    r.headers_mut().insert(*k, v);
                }
            }
            Ok(r)
        }
        200 => Ok(respond(200, Body::empty(), &common)),
        _ => Ok(respond(204, Body::empty(), &common)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parsing() {
        let body = Bytes::from_static(
            b"--XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\na/${filename}\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n--XX--\r\n",
        );
        let parts = parse_form(&body, "XX").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "key");
        assert_eq!(&parts[0].value[..], b"a/${filename}");
        assert_eq!(parts[1].filename.as_deref(), Some("f.txt"));
        assert_eq!(&parts[1].value[..], b"hello\r\nworld");
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XX\"").as_deref(),
            Some("XX")
        );
        assert!(parse_form(&Bytes::from_static(b"garbage"), "XX").is_none());
    }
}
