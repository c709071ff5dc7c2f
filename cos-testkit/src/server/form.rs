//! POST Object: browser-style `multipart/form-data` uploads authorised by a signed policy.
//!
//! The form body is read into memory (form uploads are meant for small files; the body is capped at 5 GB).
//! The rules are cos-core's, so that the SDK and this server share one reading of the protocol:
//! [`parse_multipart`] splits the body, [`verify_form`] checks the fields (signature, key time, expiration,
//! the required pins and every condition) and its [`PolicyViolation`] gives the status and error code
//! (a key time outside `now` is answered as for signed requests);
//! [`post_response_xml`] and [`redirect_location`] shape the answer. This module only reads the body,
//! finds the file part, stores the object and frames the response.

use std::time::{Duration, UNIX_EPOCH};

use super::policy::{
    parse_multipart, post_response_xml, redirect_location, verify_form, FormSubmission,
    PolicyViolation,
};
use base64::Engine as _;
use bytes::Bytes;
use cos_core::auth::KeyTime;
use cos_core::checksum::BodyDigest;
use cos_core::post_policy::MAX_POST_SIZE;
use http::Response;
use http_body_util::BodyExt;

use super::ops::{attrs_from, commit_object};
use super::store::{Data, ObjectMeta};
use super::{respond, ApiError, Body, Ctx};

/// The COS answer to a refused form: status and code from cos-core's [`PolicyViolation`], except that a
/// key time outside `now` is answered as for signed requests (not started yet: 403 `RequestTimeTooSkewed`,
/// clock skew; ended: 403 `AccessDenied` "Request has expired"). A signature mismatch also carries
/// `StringToSign` and `FormatString` (the policy text), as COS sends them.
fn refusal(v: PolicyViolation, fields: &[(String, String)], now: u64) -> ApiError {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let PolicyViolation::KeyTimeNotValid { key_time } = &v {
        match KeyTime::parse(key_time) {
            Some(k) if k.start > now => {
                return ApiError::new(
                    403,
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the server's time is too large.",
                )
            }
            Some(k) if k.end < now => {
                return ApiError::new(403, "AccessDenied", "Request has expired")
            }
            _ => {}
        }
    }
    let mut e = ApiError::new(v.status(), v.code(), v.to_string());
    if let PolicyViolation::SignatureMismatch { string_to_sign } = v {
        e.extra.push(("StringToSign", string_to_sign));
        let policy = field("policy").and_then(|p| {
            let compact: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
        });
        if let Some(text) = policy {
            e.extra
                .push(("FormatString", String::from_utf8_lossy(&text).into_owned()));
        }
    }
    e
}

pub(crate) async fn post_object(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let ct = ctx.header("content-type").unwrap_or_default();
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
            if buf.len() as u64 > MAX_POST_SIZE + (1 << 20) {
                return Err(ApiError::new(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.",
                ));
            }
        }
    }
    let body = Bytes::from(buf);
    let parts = parse_multipart(&ct, &body).map_err(|v| refusal(v, &[], ctx.now))?;
    let file = parts
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("file"))
        .ok_or_else(|| {
            refusal(
                PolicyViolation::MalformedForm("the form has no file part".into()),
                &[],
                ctx.now,
            )
        })?;
    // The fields, names as sent, the file excluded.
    let fields: Vec<(String, String)> = parts
        .iter()
        .filter(|p| !p.name.eq_ignore_ascii_case("file"))
        .map(|p| {
            (
                p.name.clone(),
                String::from_utf8_lossy(&p.data).into_owned(),
            )
        })
        .collect();
    let size = file.data.len() as u64;
    let bucket = ctx.bucket.clone();
    let creds = ctx.inner.credentials();
    let verified = verify_form(
        &FormSubmission {
            fields: &fields,
            filename: file.filename.as_deref().unwrap_or(""),
            file_len: size,
            bucket: &bucket,
        },
        UNIX_EPOCH + Duration::from_secs(ctx.now),
        |id| (id == creds.secret_id()).then(|| creds.clone()),
    )
    .map_err(|v| refusal(v, &fields, ctx.now))?;
    let key = verified.key;

    // Store.
    let mut headers = verified.object_headers;
    if !headers.iter().any(|(k, _)| k == "content-type") {
        if let Some(ct) = &file.content_type {
            headers.push(("content-type".into(), ct.clone()));
        }
    }
    let attrs = attrs_from(&key, &headers)?;
    let forbid = headers
        .iter()
        .any(|(k, v)| k == "x-cos-forbid-overwrite" && v.eq_ignore_ascii_case("true"));
    let d = BodyDigest::of(&file.data);
    let data = if ctx.store.is_sink() {
        Data::None
    } else {
        let mut w = ctx.store.writer(size).await?;
        if let Err(e) = w.write(&file.data).await {
            ctx.store.abandon(w);
            return Err(e.into());
        }
        ctx.store.finish(w).await?
    };
    let etag = format!("\"{}\"", d.md5_hex().unwrap_or_default());
    commit_object(
        &ctx.store,
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

    // Answer.
    let location = format!("http://{}/{}", ctx.host, cos_core::auth::encode_path(&key));
    let mut h = vec![
        ("etag", etag.clone()),
        ("x-cos-hash-crc64ecma", d.crc64.to_string()),
    ];
    if let Some(redirect) = verified.success_action_redirect.filter(|r| !r.is_empty()) {
        h.push((
            "location",
            redirect_location(&redirect, &bucket, &key, &etag),
        ));
        return Ok(respond(303, Body::empty(), &h));
    }
    h.push(("location", location.clone()));
    match verified.success_action_status {
        201 => {
            h.push(("content-type", "application/xml".into()));
            let xml = post_response_xml(&location, &bucket, &key, &etag);
            Ok(respond(201, Body::bytes(xml), &h))
        }
        status => Ok(respond(status, Body::empty(), &h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_mismatch_carries_the_policy_text() {
        let fields = vec![(
            "Policy".to_string(),
            base64::engine::general_purpose::STANDARD.encode("{\"a\":1}"),
        )];
        let e = refusal(
            PolicyViolation::SignatureMismatch {
                string_to_sign: "abc".into(),
            },
            &fields,
            0,
        );
        assert_eq!((e.status, e.code.as_str()), (403, "SignatureDoesNotMatch"));
        assert_eq!(
            e.extra,
            vec![
                ("StringToSign", "abc".to_string()),
                ("FormatString", "{\"a\":1}".to_string())
            ]
        );
        let e = refusal(PolicyViolation::MissingField("key"), &fields, 0);
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidArgument"));
        assert!(e.extra.is_empty());
    }

    #[test]
    fn key_time_outside_now_is_answered_as_for_signed_requests() {
        let v = || PolicyViolation::KeyTimeNotValid {
            key_time: "100;200".into(),
        };
        let e = refusal(v(), &[], 99);
        assert_eq!((e.status, e.code.as_str()), (403, "RequestTimeTooSkewed"));
        let e = refusal(v(), &[], 201);
        assert_eq!((e.status, e.code.as_str()), (403, "AccessDenied"));
        assert_eq!(e.message, "Request has expired");
    }
}
