//! POST Object: browser-style `multipart/form-data` uploads authorised by a signed policy.
//!
//! The form body is read into memory (form uploads are meant for small files; the body is capped at 5 GB).
//! Checks, in order: the signature fields (`q-ak` → 403 `InvalidAccessKeyId`, key time → 403 `AccessDenied`
//! "Request has expired"), `q-signature = hex(HMAC-SHA1(SignKey, hex(SHA1(policy JSON))))` (403
//! `SignatureDoesNotMatch`), the policy's expiration (403 `AccessDenied`), that it pins `q-sign-algorithm`,
//! `q-ak`, `q-sign-time`, the bucket and the key (403 `AccessDenied`), then every condition (403
//! `AccessDenied`; `content-length-range` → 400 `EntityTooLarge` / `EntityTooSmall`).

use base64::Engine as _;
use bytes::Bytes;
use cos_core::auth::{encode, sign_key, KeyTime};
use cos_core::checksum::{hex, BodyDigest};
use hmac::{Hmac, Mac};
use http::Response;
use http_body_util::BodyExt;
use sha1::{Digest as _, Sha1};

use super::ops::{attrs_from, commit_object, MAX_OBJECT};
use super::store::{Data, ObjectMeta};
use super::util::{el, parse_iso8601};
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

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    hex(&mac.finalize().into_bytes())
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
    // Fields (names lower-cased), the file excluded.
    let fields: Vec<(String, String)> = parts
        .iter()
        .filter(|p| !p.name.eq_ignore_ascii_case("file"))
        .map(|p| {
            (
                p.name.to_ascii_lowercase(),
                String::from_utf8_lossy(&p.value).into_owned(),
            )
        })
        .collect();
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());

    // Signature.
    let ak = field("q-ak").ok_or_else(|| denied("The form has no q-ak field."))?;
    if ak != ctx.inner.creds.secret_id() {
        return Err(ApiError::new(
            403,
            "InvalidAccessKeyId",
            "The Access Key Id you provided does not exist in our records.",
        ));
    }
    if !field("q-sign-algorithm").is_some_and(|a| a.eq_ignore_ascii_case("sha1")) {
        return Err(denied("q-sign-algorithm must be sha1."));
    }
    let key_time_text = field("q-key-time")
        .or_else(|| field("q-sign-time"))
        .ok_or_else(|| denied("The form has no q-key-time field."))?;
    let key_time =
        KeyTime::parse(&key_time_text).ok_or_else(|| denied("q-key-time is malformed."))?;
    if key_time.end < ctx.now {
        return Err(denied("Request has expired"));
    }
    if key_time.start > ctx.now {
        return Err(ApiError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        ));
    }
    if let Some(want) = ctx.inner.token() {
        if field("x-cos-security-token") != Some(want) {
            return Err(ApiError::new(
                403,
                "InvalidAccessKeyId",
                "The security token is missing or does not belong to this SecretId.",
            ));
        }
    }
    let policy_b64 = field("policy").ok_or_else(|| denied("The form has no policy field."))?;
    let policy_text = base64::engine::general_purpose::STANDARD
        .decode(policy_b64.trim())
        .map_err(|_| ApiError::new(400, "InvalidPolicyDocument", "The policy is not base64."))?;
    let string_to_sign = hex(&Sha1::digest(&policy_text));
    let expected = hmac_hex(
        sign_key(ctx.inner.creds.secret_key(), &key_time).as_bytes(),
        string_to_sign.as_bytes(),
    );
    if !field("q-signature").is_some_and(|s| s.trim().eq_ignore_ascii_case(&expected)) {
        let mut e = ApiError::new(
            403,
            "SignatureDoesNotMatch",
            "The Signature you specified does not match what we calculated.",
        );
        e.extra.push(("StringToSign", string_to_sign));
        e.extra.push((
            "FormatString",
            String::from_utf8_lossy(&policy_text).into_owned(),
        ));
        return Err(e);
    }

    // Policy.
    let policy: serde_json::Value = serde_json::from_slice(&policy_text)
        .map_err(|_| ApiError::new(400, "InvalidPolicyDocument", "The policy is not JSON."))?;
    let expiration = policy
        .get("expiration")
        .and_then(|v| v.as_str())
        .and_then(parse_iso8601)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidPolicyDocument",
                "The policy has no valid expiration.",
            )
        })?;
    if expiration < ctx.now {
        return Err(denied("Invalid according to Policy: Policy expired."));
    }
    let conditions = policy
        .get("conditions")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidPolicyDocument",
                "The policy has no conditions.",
            )
        })?;

    let raw_key = field("key")
        .ok_or_else(|| ApiError::new(400, "InvalidArgument", "The form has no key field."))?;
    let key = match &file.filename {
        Some(f) => raw_key.replace("${filename}", f),
        None => raw_key.clone(),
    };
    if key.is_empty() || key.len() > 850 {
        return Err(ApiError::invalid("The key must be 1 to 850 bytes."));
    }
    let size = file.value.len() as u64;
    let value_of = |name: &str| -> Option<String> {
        match name {
            "bucket" => Some(ctx.inner.bucket.clone()),
            "key" => Some(key.clone()),
            "q-sign-time" => field("q-sign-time").or_else(|| field("q-key-time")),
            n => field(n),
        }
    };
    let mut pinned = std::collections::HashSet::new();
    for c in conditions {
        let cond_err = |what: &str| {
            denied(format!(
                "Invalid according to Policy: Policy Condition failed: {what}"
            ))
        };
        match c {
            serde_json::Value::Object(m) => {
                for (name, want) in m {
                    let name = name.trim_start_matches('$').to_ascii_lowercase();
                    let want = want
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| want.to_string());
                    pinned.insert(name.clone());
                    let ok = value_of(&name).is_some_and(|v| v == want)
                        || (name == "key" && raw_key == want);
                    if !ok {
                        return Err(cond_err(&format!("[\"eq\", \"${name}\", \"{want}\"]")));
                    }
                }
            }
            serde_json::Value::Array(a) => {
                let op = a
                    .first()
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if op == "content-length-range" {
                    let num = |i: usize| {
                        a.get(i)
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
                    };
                    let (min, max) = num(1).zip(num(2)).ok_or_else(|| {
                        ApiError::new(
                            400,
                            "InvalidPolicyDocument",
                            "content-length-range needs two numbers.",
                        )
                    })?;
                    if size < min {
                        return Err(ApiError::new(
                            400,
                            "EntityTooSmall",
                            "Your proposed upload is smaller than the minimum allowed size.",
                        ));
                    }
                    if size > max {
                        return Err(ApiError::new(
                            400,
                            "EntityTooLarge",
                            "Your proposed upload exceeds the maximum allowed size.",
                        ));
                    }
                    continue;
                }
                let name = a
                    .get(1)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .trim_start_matches('$')
                    .to_ascii_lowercase();
                let want = a.get(2).and_then(|v| v.as_str()).unwrap_or("").to_string();
                pinned.insert(name.clone());
                let have = value_of(&name);
                let ok = match op.as_str() {
                    "eq" => have.is_some_and(|v| v == want) || (name == "key" && raw_key == want),
                    "starts-with" => {
                        have.is_some_and(|v| v.starts_with(&want))
                            || (name == "key" && raw_key.starts_with(&want))
                    }
                    _ => {
                        return Err(ApiError::new(
                            400,
                            "InvalidPolicyDocument",
                            format!("Unknown policy condition {op:?}."),
                        ))
                    }
                };
                if !ok {
                    return Err(cond_err(&format!("[\"{op}\", \"${name}\", \"{want}\"]")));
                }
            }
            _ => {
                return Err(ApiError::new(
                    400,
                    "InvalidPolicyDocument",
                    "A condition is neither an object nor an array.",
                ))
            }
        }
    }
    for required in ["q-sign-algorithm", "q-ak", "q-sign-time", "bucket", "key"] {
        if !pinned.contains(required) {
            return Err(denied(format!(
                "Invalid according to Policy: the policy must have a condition on {required}."
            )));
        }
    }

    // Store.
    let mut headers: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| {
            k.starts_with("x-cos-")
                || matches!(
                    k.as_str(),
                    "content-type"
                        | "cache-control"
                        | "content-disposition"
                        | "content-encoding"
                        | "expires"
                )
        })
        .cloned()
        .collect();
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
    let forbid = field("x-cos-forbid-overwrite").is_some_and(|v| v.eq_ignore_ascii_case("true"));
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
    if let Some(redirect) = field("success_action_redirect").filter(|r| !r.is_empty()) {
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
    match field("success_action_status").as_deref().map(str::trim) {
        Some("201") => {
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
        Some("200") => Ok(respond(200, Body::empty(), &common)),
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
