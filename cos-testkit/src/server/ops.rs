//! The operations: PUT / Append / GET / HEAD / DELETE Object, multipart uploads and their listings.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use cos_core::auth::{encode, encode_path};
use cos_core::checksum::{hex, BodyDigest, Crc64, SentDigest};
use http::{Method, Response};
use http_body_util::BodyExt;
use md5::Digest as _;

use super::sigv::{self, SignedRequest};
use super::store::{
    Data, Object, ObjectAttrs, ObjectMeta, Part, PartMeta, Reader, Store, Upload, UploadMeta,
};
use super::util::{el, http_date, iso8601, random_hex};
use super::{buckets, form, objects, respond, subres, throttle, xml_response, ApiError, Body, Ctx};

/// Largest object or part.
pub(crate) const MAX_OBJECT: u64 = 5 << 30;
/// Smallest part except the last.
const MIN_PART: u64 = 1 << 20;
/// Longest key in bytes.
const MAX_KEY: usize = 850;
pub(crate) const OWNER: &str = "qcs::cam::uin/100000000001:uin/100000000001";
pub(crate) const OWNER_NAME: &str = "100000000001";

const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "ARCHIVE",
    "DEEP_ARCHIVE",
    "INTELLIGENT_TIERING",
    "MAZ_STANDARD",
    "MAZ_STANDARD_IA",
    "MAZ_INTELLIGENT_TIERING",
    "MAZ_ARCHIVE",
];

pub(crate) async fn dispatch(ctx: &mut Ctx, op: &'static str) -> Result<Response<Body>, ApiError> {
    match (op, ctx.bucket_exists) {
        ("PutBucket", _) => {}
        (_, false) => return Err(buckets::no_such_bucket()),
        _ => {}
    }
    let key = ctx.key.clone().map_err(|_| {
        ApiError::new(
            400,
            "InvalidURI",
            "The request path does not decode to UTF-8.",
        )
    })?;
    if key.len() > MAX_KEY {
        return Err(ApiError::new(
            400,
            "KeyTooLong",
            "The key is longer than 850 bytes.",
        ));
    }
    if op == "PostObject" {
        return form::post_object(ctx).await;
    }
    sigv::verify(
        &SignedRequest {
            method: ctx.method.as_str(),
            key: &key,
            query: &ctx.query,
            headers: &ctx.headers,
            now: ctx.now,
        },
        &ctx.inner.creds,
        ctx.inner.token().as_deref(),
    )?;
    match op {
        "PutObject" => put_object(ctx, key).await,
        "AppendObject" => append_object(ctx, key).await,
        "GetObject" | "HeadObject" => get_object(ctx, key),
        "DeleteObject" => delete_object(ctx, key),
        "InitiateMultipartUpload" => initiate(ctx, key),
        "UploadPart" => upload_part(ctx, key).await,
        "ListParts" => list_parts(ctx, key),
        "CompleteMultipartUpload" => complete(ctx, key).await,
        "AbortMultipartUpload" => abort(ctx, key),
        "ListMultipartUploads" => list_uploads(ctx),
        "HeadBucket" => Ok(respond(200, Body::empty(), &[])),
        "PutBucket" => buckets::put_bucket(ctx),
        "GetBucket" => super::list::get_bucket(ctx),
        "DeleteBucket" => buckets::delete_bucket(ctx),
        "PutObjectTagging" => subres::put_tagging(ctx, key).await,
        "GetObjectTagging" => subres::get_tagging(ctx, key),
        "DeleteObjectTagging" => subres::delete_tagging(ctx, key),
        "PutObjectAcl" => subres::put_acl(ctx, key).await,
        "GetObjectAcl" => subres::get_acl(ctx, key),
        "PutBucketAcl" => subres::put_bucket_acl(ctx).await,
        "GetBucketAcl" => subres::get_bucket_acl(ctx),
        "DeleteMultipleObjects" => subres::delete_multiple(ctx).await,
        "PutObjectCopy" => objects::copy_object(ctx, key).await,
        "UploadPartCopy" => objects::upload_part_copy(ctx, key).await,
        _ => Err(not_implemented(ctx)),
    }
}

/// `501 NotImplemented`, naming what the request asked for.
pub(crate) fn not_implemented(ctx: &Ctx) -> ApiError {
    ApiError::new(
        501,
        "NotImplemented",
        format!(
            "cos-testkit does not implement {}.",
            super::route::unsupported_what(&ctx.route_input())
        ),
    )
}

/// The server always computes MD5 (`BodyDigest::new`), so `md5` is `Some`.
fn etag_of(md5: &Option<[u8; 16]>) -> String {
    format!("\"{}\"", hex(&md5.unwrap_or_default()))
}

/// The object attributes a PUT / Initiate / Append request sets, validated.
///
/// Empty header values count as absent (COS neither stores nor echoes them); without a `Content-Type` the
/// key's extension gives one.
pub(crate) fn attrs_from(key: &str, headers: &[(String, String)]) -> Result<ObjectAttrs, ApiError> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .cloned()
        .collect();
    let headers = &headers[..];
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut attrs = ObjectAttrs {
        content_type: get("content-type")
            .unwrap_or_else(|| super::mime::content_type_for(key).to_string()),
        headers: Vec::new(),
        storage_class: "STANDARD".into(),
        ..ObjectAttrs::default()
    };
    if let Some(c) = get("x-cos-storage-class") {
        let c = c.to_ascii_uppercase();
        if !STORAGE_CLASSES.contains(&c.as_str()) {
            return Err(ApiError::new(
                400,
                "InvalidArgument",
                format!("x-cos-storage-class {c} is not a storage class"),
            ));
        }
        attrs.storage_class = c;
    }
    if let Some(t) = get("x-cos-traffic-limit") {
        if !t
            .trim()
            .parse::<u64>()
            .is_ok_and(|v| super::throttle::RANGE.contains(&v))
        {
            return Err(ApiError::invalid(
                "x-cos-traffic-limit must be between 819200 and 838860800 bit/s",
            ));
        }
    }
    let (acl, grants) = subres::acl_from_headers(get)?;
    attrs.acl = acl;
    attrs.grants = grants;
    if let Some(t) = get("x-cos-tagging") {
        attrs.tags = subres::parse_tagging_header(&t)?;
    }
    if let Some((alg, md5)) = subres::sse_c_from(get)? {
        attrs.headers.push((subres::SSE_C_ALGORITHM.into(), alg));
        attrs.headers.push((subres::SSE_C_KEY_MD5.into(), md5));
    }
    if let Some(s) = get("x-cos-server-side-encryption") {
        if !matches!(s.as_str(), "AES256" | "cos/kms" | "SM4") {
            return Err(ApiError::invalid(format!(
                "x-cos-server-side-encryption {s} is not supported"
            )));
        }
    }
    let mut meta_len = 0;
    for (k, v) in headers {
        let keep = k.starts_with("x-cos-meta-")
            || matches!(
                k.as_str(),
                "cache-control"
                    | "content-disposition"
                    | "content-encoding"
                    | "content-language"
                    | "expires"
                    | "x-cos-server-side-encryption"
            );
        if k.starts_with("x-cos-meta-") {
            meta_len += k.len() - "x-cos-meta-".len() + v.len();
        }
        if keep {
            attrs.headers.push((k.clone(), v.clone()));
        }
    }
    if meta_len > 2048 {
        return Err(ApiError::invalid(
            "x-cos-meta-* headers exceed 2 KB in total",
        ));
    }
    Ok(attrs)
}

pub(crate) fn header_pairs(ctx: &Ctx) -> Vec<(String, String)> {
    ctx.headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), sigv::header_str(v)))
        .collect()
}

fn forbid_overwrite(ctx: &Ctx) -> bool {
    ctx.header("x-cos-forbid-overwrite")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn already_exists() -> ApiError {
    ApiError::new(
        409,
        "FileAlreadyExists",
        "The object already exists and x-cos-forbid-overwrite is true.",
    )
}

/// Streams the request body into the store while hashing it; checks length limits and `Content-MD5`.
pub(crate) async fn receive(ctx: &mut Ctx, max: u64) -> Result<(SentDigest, Data), ApiError> {
    let declared = match ctx.header("content-length") {
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::invalid("Content-Length is not a number"))?,
        ),
        None => None,
    };
    let chunked = ctx
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if declared.is_none() && !chunked {
        return Err(ApiError::new(
            411,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        ));
    }
    if declared.is_some_and(|l| l > max) {
        return Err(ApiError::new(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size.",
        ));
    }
    let want_md5 = match ctx.header("content-md5") {
        Some(v) => {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
                .filter(|r| r.len() == 16)
                .ok_or_else(|| {
                    ApiError::new(
                        400,
                        "InvalidDigest",
                        "The Content-MD5 you specified is not valid.",
                    )
                })?;
            Some(raw)
        }
        None => None,
    };
    let mut pacer = throttle::limit(ctx)?.map(throttle::Pacer::new);
    let store = &ctx.store;
    let mut w = store.writer(declared.unwrap_or(0)).await?;
    let mut digest = BodyDigest::new();
    let mut got = 0u64;
    let mut body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::internal("body already read"))?;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                store.abandon(w);
                return Err(ApiError::new(
                    400,
                    "RequestTimeout",
                    format!("reading the body failed: {e}"),
                ));
            }
            Some(Ok(f)) => {
                let Ok(d) = f.into_data() else { continue };
                got += d.len() as u64;
                if got > max {
                    store.abandon(w);
                    return Err(ApiError::new(
                        400,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size.",
                    ));
                }
                digest.update(&d);
                if let Err(e) = w.write(&d).await {
                    store.abandon(w);
                    return Err(e.into());
                }
                if let Some(p) = &mut pacer {
                    p.after(d.len()).await;
                }
            }
        }
    }
    let digest = digest.finish();
    if let Some(want) = want_md5 {
        if digest.md5.map(|m| m.to_vec()) != Some(want) {
            store.abandon(w);
            return Err(ApiError::new(
                400,
                "InvalidDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let data = store.finish(w).await?;
    Ok((digest, data))
}

/// Stores an object (replacing any), unless `forbid` and one exists.
pub(crate) fn commit_object(
    store: &Store,
    meta: ObjectMeta,
    data: Data,
    forbid: bool,
) -> Result<(), ApiError> {
    let mut st = store.lock();
    if forbid && st.objects.contains_key(&meta.key) {
        drop(st);
        store.discard(&data);
        return Err(already_exists());
    }
    let mut meta = meta;
    meta.blob = Store::blob_name(&data);
    if let Err(e) = store.save_object(&meta) {
        drop(st);
        store.discard(&data);
        return Err(e.into());
    }
    if let Some(old) = st.objects.insert(meta.key.clone(), Object { meta, data }) {
        store.discard(&old.data);
    }
    Ok(())
}

async fn put_object(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let attrs = attrs_from(&key, &header_pairs(ctx))?;
    let forbid = forbid_overwrite(ctx);
    if forbid && ctx.store.lock().objects.contains_key(&key) {
        return Err(already_exists());
    }
    let (d, data) = receive(ctx, MAX_OBJECT).await?;
    let meta = ObjectMeta {
        key,
        size: d.len,
        etag: etag_of(&d.md5),
        crc64: d.crc64,
        attrs,
        appendable: false,
        last_modified: ctx.now,
        blob: None,
    };
    let etag = meta.etag.clone();
    let mut headers = vec![
        ("etag", etag),
        ("x-cos-hash-crc64ecma", d.crc64.to_string()),
    ];
    headers.extend(subres::sse_echo(&meta.attrs));
    commit_object(&ctx.store, meta, data, forbid)?;
    Ok(respond(200, Body::empty(), &headers))
}

async fn append_object(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let position: u64 = ctx
        .q("position")
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| ApiError::invalid("position must be a number"))?;
    let attrs = attrs_from(&key, &header_pairs(ctx))?;
    let check = |existing: Option<&Object>| -> Result<(), ApiError> {
        match existing {
            Some(o) if !o.meta.appendable => Err(ApiError::new(
                409,
                "ObjectNotAppendable",
                "The object is not appendable.",
            )),
            Some(o) if o.meta.size != position => Err(ApiError::new(
                409,
                "PositionNotEqualToLength",
                format!(
                    "position {position} is not the object's length {}",
                    o.meta.size
                ),
            )),
            None if position != 0 => Err(ApiError::new(
                409,
                "PositionNotEqualToLength",
                format!("position {position} is not the object's length 0"),
            )),
            _ => Ok(()),
        }
    };
    check(ctx.store.lock().objects.get(&key))?;
    let (d, data) = receive(ctx, MAX_OBJECT).await?;
    let store = &ctx.store;
    let _guard = store.append_lock.lock().await;
    let existing = store.lock().objects.get(&key).cloned();
    if let Err(e) = check(existing.as_ref()) {
        store.discard(&data);
        return Err(e);
    }
    if existing
        .as_ref()
        .is_some_and(|o| o.meta.size + d.len > MAX_OBJECT)
    {
        store.discard(&data);
        return Err(ApiError::new(
            400,
            "EntityTooLarge",
            "An appendable object is at most 5 GB.",
        ));
    }
    let (meta, data) = match existing {
        None => (
            ObjectMeta {
                key: key.clone(),
                size: d.len,
                etag: etag_of(&d.md5),
                crc64: d.crc64,
                attrs,
                appendable: true,
                last_modified: ctx.now,
                blob: None,
            },
            data,
        ),
        Some(o) => {
            let (new_data, whole_md5) = store.append(&o.data, o.meta.size, data).await?;
            let mut m = o.meta;
            m.size += d.len;
            m.crc64 = Crc64::combine(m.crc64, d.crc64, d.len);
            m.etag = etag_of(&whole_md5.or(d.md5));
            m.last_modified = ctx.now;
            (m, new_data)
        }
    };
    let (next, crc) = (meta.size, meta.crc64);
    {
        let mut st = store.lock();
        let mut meta = meta;
        meta.blob = Store::blob_name(&data);
        store.save_object(&meta)?;
        let old = st.objects.insert(
            key,
            Object {
                meta,
                data: data.clone(),
            },
        );
        // An append extends the same blob in place; only a replaced, different blob is garbage.
        if let Some(old) = old {
            if Store::blob_name(&old.data) != Store::blob_name(&data) {
                store.discard(&old.data);
            }
        }
    }
    Ok(respond(
        200,
        Body::empty(),
        &[
            ("etag", etag_of(&d.md5)),
            ("x-cos-next-append-position", next.to_string()),
            ("x-cos-hash-crc64ecma", crc.to_string()),
        ],
    ))
}

/// Parses `Range: bytes=a-b` against `size`: `Ok(None)` for no (or an ignored multi-) range.
fn parse_range(v: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let bad = || {
        ApiError::new(
            416,
            "InvalidRange",
            "The requested range is not satisfiable.",
        )
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let s: u64 = a.parse().map_err(|_| bad())?;
        let e: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| bad())?
                .min(size.saturating_sub(1))
        };
        (s, e)
    };
    if size == 0 || start >= size || start > end {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

fn get_object(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let store = &ctx.store;
    let obj = store
        .lock()
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::new(404, "NoSuchKey", "The specified key does not exist."))?;
    let m = &obj.meta;
    subres::check_sse_c_read(ctx, &m.attrs)?;
    let bps = throttle::limit(ctx)?;
    if let Some(want) = ctx.header("if-match") {
        if want.trim() != "*" && want.trim().trim_matches('"') != m.etag.trim_matches('"') {
            return Err(ApiError::new(
                412,
                "PreconditionFailed",
                "If-Match does not match the ETag.",
            ));
        }
    }
    // RFC 9110 order: If-Match, then If-Unmodified-Since when there is no If-Match; If-None-Match, then
    // If-Modified-Since when there is no If-None-Match. Unparsable dates are ignored, as HTTP says.
    let since = |name: &str| {
        ctx.header(name)
            .and_then(|v| cos_core::task::parse_http_date(v.trim()))
    };
    if ctx.header("if-match").is_none() {
        if let Some(t) = since("if-unmodified-since") {
            if m.last_modified > t {
                return Err(ApiError::new(
                    412,
                    "PreconditionFailed",
                    "The object was modified after If-Unmodified-Since.",
                ));
            }
        }
    }
    if let Some(want) = ctx.header("if-none-match") {
        if want.trim() == "*" || want.trim().trim_matches('"') == m.etag.trim_matches('"') {
            return Ok(respond(304, Body::empty(), &[("etag", m.etag.clone())]));
        }
    } else if let Some(t) = since("if-modified-since") {
        if m.last_modified <= t {
            return Ok(respond(304, Body::empty(), &[("etag", m.etag.clone())]));
        }
    }
    let range = match ctx.header("range") {
        Some(r) => parse_range(&r, m.size)?,
        None => None,
    };
    let (start, len) = match range {
        Some((s, e)) => (s, e - s + 1),
        None => (0, m.size),
    };
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", m.attrs.content_type.clone()),
        ("content-length", len.to_string()),
        ("etag", m.etag.clone()),
        ("last-modified", http_date(m.last_modified)),
        ("accept-ranges", "bytes".into()),
        (
            "x-cos-object-type",
            if m.appendable { "appendable" } else { "normal" }.into(),
        ),
        ("x-cos-hash-crc64ecma", m.crc64.to_string()),
    ];
    if m.attrs.storage_class != "STANDARD" {
        headers.push(("x-cos-storage-class", m.attrs.storage_class.clone()));
    }
    if !m.attrs.tags.is_empty() {
        headers.push(("x-cos-tagging-count", m.attrs.tags.len().to_string()));
    }
    if let Some((s, e)) = range {
        headers.push(("content-range", format!("bytes {s}-{e}/{}", m.size)));
    }
    let overrides = [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ];
    let mut stored: Vec<(&str, String)> = m
        .attrs
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    for (q, h) in overrides {
        if let Some(v) = ctx.q(q) {
            stored.retain(|(k, _)| *k != h);
            headers.retain(|(k, _)| *k != h);
            headers.push((h, v.to_string()));
        }
    }
    headers.extend(stored);
    let status = if range.is_some() { 206 } else { 200 };
    if ctx.method == Method::HEAD {
        return Ok(respond(status, Body::empty(), &headers));
    }
    if store.is_sink() {
        return Err(ApiError::new(
            501,
            "NotImplemented",
            "cos-testkit sink mode keeps no object bodies.",
        ));
    }
    let body = match store.read(&obj.data, start, len)? {
        Reader::Bytes(b) => Body::Full(if b.is_empty() { None } else { Some(b) }),
        Reader::File(f, len) => file_body(f, len),
    };
    let body = match bps {
        Some(bps) => throttle::body(body, bps),
        None => body,
    };
    Ok(respond(status, body, &headers))
}

/// Streams `len` bytes of a file through a channel.
fn file_body(f: std::fs::File, len: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut f = f.take(len);
        loop {
            let mut buf = vec![0u8; 256 << 10];
            match f.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Body::Chan(rx)
}

fn delete_object(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let store = &ctx.store;
    let mut st = store.lock();
    if st.objects.contains_key(&key) {
        store.delete_object_meta(&key)?;
        if let Some(o) = st.objects.remove(&key) {
            store.discard(&o.data);
        }
    }
    Ok(respond(204, Body::empty(), &[]))
}

pub(crate) fn no_such_upload() -> ApiError {
    ApiError::new(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

fn upload_id(ctx: &Ctx) -> String {
    ctx.q("uploadId").unwrap_or("").to_string()
}

fn initiate(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let attrs = attrs_from(&key, &header_pairs(ctx))?;
    let store = &ctx.store;
    let mut st = store.lock();
    if forbid_overwrite(ctx) && st.objects.contains_key(&key) {
        return Err(already_exists());
    }
    let id = format!("{:010}{}", ctx.now, random_hex(4));
    let meta = UploadMeta {
        key: key.clone(),
        upload_id: id.clone(),
        initiated: ctx.now,
        attrs,
    };
    let echo = subres::sse_echo(&meta.attrs);
    store.save_upload(&meta)?;
    st.uploads.insert(
        id.clone(),
        Upload {
            meta,
            parts: BTreeMap::new(),
        },
    );
    let mut r = xml_response(format!(
        "<InitiateMultipartUploadResult>{}{}{}</InitiateMultipartUploadResult>",
        el("Bucket", &ctx.bucket),
        el("Key", &key),
        el("UploadId", &id)
    ));
    for (k, v) in echo {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    Ok(r)
}

async fn upload_part(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let number: u32 = ctx
        .q("partNumber")
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| ApiError::invalid("partNumber must be between 1 and 10000"))?;
    if let Some(t) = ctx.header("x-cos-traffic-limit") {
        attrs_from(&key, &[("x-cos-traffic-limit".into(), t)])?;
    }
    let id = upload_id(ctx);
    let known = |ctx: &Ctx| {
        ctx.store
            .lock()
            .uploads
            .get(&id)
            .is_some_and(|u| u.meta.key == key)
    };
    if !known(ctx) {
        return Err(no_such_upload());
    }
    let (d, data) = receive(ctx, MAX_OBJECT).await?;
    let store = &ctx.store;
    let meta = PartMeta {
        number,
        size: d.len,
        etag: etag_of(&d.md5),
        crc64: d.crc64,
        last_modified: ctx.now,
        blob: Store::blob_name(&data),
    };
    {
        let mut st = store.lock();
        let Some(up) = st.uploads.get_mut(&id).filter(|u| u.meta.key == key) else {
            drop(st);
            store.discard(&data);
            return Err(no_such_upload());
        };
        if let Err(e) = store.save_part(&id, &meta) {
            drop(st);
            store.discard(&data);
            return Err(e.into());
        }
        if let Some(old) = up.parts.insert(number, Part { meta, data }) {
            store.discard(&old.data);
        }
    }
    Ok(respond(
        200,
        Body::empty(),
        &[
            ("etag", etag_of(&d.md5)),
            ("x-cos-hash-crc64ecma", d.crc64.to_string()),
        ],
    ))
}

pub(crate) fn owner_xml(tag: &str) -> String {
    format!(
        "<{tag}>{}{}</{tag}>",
        el("ID", OWNER),
        el("DisplayName", OWNER_NAME)
    )
}

pub(crate) fn url_encoding(ctx: &Ctx) -> Result<bool, ApiError> {
    match ctx.q("encoding-type") {
        None => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("url") => Ok(true),
        Some(e) => Err(ApiError::invalid(format!(
            "encoding-type {e} is not supported (only url)"
        ))),
    }
}

pub(crate) fn max_param(ctx: &Ctx, name: &str) -> Result<usize, ApiError> {
    match ctx.q(name) {
        None => Ok(1000),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid(format!("{name} must be between 1 and 1000"))),
    }
}

fn list_parts(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let id = upload_id(ctx);
    let url = url_encoding(ctx)?;
    let max = max_param(ctx, "max-parts")?;
    let marker: u32 = match ctx.q("part-number-marker") {
        None | Some("") => 0,
        Some(m) => m
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("part-number-marker must be a number"))?,
    };
    let up = ctx
        .store
        .lock()
        .uploads
        .get(&id)
        .filter(|u| u.meta.key == key)
        .cloned()
        .ok_or_else(no_such_upload)?;
    let mut parts = up
        .parts
        .range(marker.saturating_add(1)..)
        .map(|(_, p)| &p.meta);
    let page: Vec<&PartMeta> = parts.by_ref().take(max).collect();
    let truncated = parts.next().is_some();
    let enc = |s: &str| if url { encode(s) } else { s.to_string() };
    let mut x = String::from("<ListPartsResult>");
    x += &el("Bucket", &ctx.bucket);
    if url {
        x += &el("Encoding-type", "url");
    }
    x += &el("Key", &enc(&key));
    x += &el("UploadId", &id);
    x += &owner_xml("Initiator");
    x += &owner_xml("Owner");
    x += &el("StorageClass", &up.meta.attrs.storage_class);
    x += &el("PartNumberMarker", &marker.to_string());
    let next = page.last().map_or(marker, |p| p.number);
    x += &el("NextPartNumberMarker", &next.to_string());
    x += &el("MaxParts", &max.to_string());
    x += &el("IsTruncated", if truncated { "true" } else { "false" });
    for p in page {
        x += &format!(
            "<Part>{}{}{}{}</Part>",
            el("PartNumber", &p.number.to_string()),
            el("LastModified", &iso8601(p.last_modified)),
            el("ETag", &p.etag),
            el("Size", &p.size.to_string())
        );
    }
    x += "</ListPartsResult>";
    Ok(xml_response(x))
}

/// Parses a `CompleteMultipartUpload` body into `(part number, ETag without quotes)`.
fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, ApiError> {
    use quick_xml::events::Event;
    let malformed = || {
        ApiError::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut cur: (Option<u32>, Option<String>) = (None, None);
    let mut root_seen = false;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != "CompleteMultipartUpload" || root_seen {
                        return Err(malformed());
                    }
                    root_seen = true;
                }
                if name == "Part" && path.len() == 1 {
                    cur = (None, None);
                }
                path.push(name);
            }
            Event::Empty(e) => {
                if path.is_empty() {
                    return Err(malformed());
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.len() == 2 && path[1] == "Part" && name == "ETag" {
                    cur.1 = Some(String::new());
                }
            }
            Event::End(_) => {
                let name = path.pop().ok_or_else(malformed)?;
                if name == "Part" && path.len() == 1 {
                    match cur.clone() {
                        (Some(n), Some(e)) => parts.push((n, e)),
                        _ => return Err(malformed()),
                    }
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| malformed())?.into_owned();
                if path.len() == 3 && path[1] == "Part" {
                    match path[2].as_str() {
                        "PartNumber" => {
                            cur.0 = Some(text.trim().parse().map_err(|_| malformed())?);
                        }
                        "ETag" => cur.1 = Some(text),
                        _ => {}
                    }
                }
            }
            Event::CData(t) if path.len() == 3 && path[1] == "Part" && path[2] == "ETag" => {
                cur.1 = Some(String::from_utf8_lossy(&t).into_owned());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || !path.is_empty() || parts.is_empty() {
        return Err(malformed());
    }
    Ok(parts)
}

fn bare_etag(s: &str) -> String {
    s.trim().trim_matches('"').to_ascii_lowercase()
}

pub(crate) async fn read_small_body(ctx: &mut Ctx, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::internal("body already read"))?;
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
            if out.len() > limit {
                return Err(ApiError::new(
                    400,
                    "EntityTooLarge",
                    "The request body is too large.",
                ));
            }
        }
    }
    Ok(out)
}

async fn complete(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let id = upload_id(ctx);
    let known = ctx
        .store
        .lock()
        .uploads
        .get(&id)
        .is_some_and(|u| u.meta.key == key);
    if !known {
        return Err(no_such_upload());
    }
    let body = read_small_body(ctx, 16 << 20).await?;
    let wanted = parse_complete(&body)?;
    let forbid = forbid_overwrite(ctx);
    let store = &ctx.store;
    let up = store
        .lock()
        .uploads
        .get(&id)
        .filter(|u| u.meta.key == key)
        .cloned()
        .ok_or_else(no_such_upload)?;
    // Checked in this order over the whole list: ascending numbers, then known parts with matching ETags,
    // then the minimum size of every part but the last.
    if wanted.windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err(ApiError::new(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order.",
        ));
    }
    let mut chosen: Vec<&Part> = Vec::with_capacity(wanted.len());
    for (n, etag) in &wanted {
        let part = up
            .parts
            .get(n)
            .filter(|p| bare_etag(&p.meta.etag) == bare_etag(etag))
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "InvalidPart",
                    format!("Part {n} was not found or its ETag does not match."),
                )
            })?;
        chosen.push(part);
    }
    if let Some(p) = chosen[..chosen.len() - 1]
        .iter()
        .find(|p| p.meta.size < MIN_PART)
    {
        return Err(ApiError::new(
            400,
            "EntityTooSmall",
            format!(
                "Part {} is smaller than the minimum allowed size of 1 MB.",
                p.meta.number
            ),
        ));
    }
    if forbid && store.lock().objects.contains_key(&key) {
        return Err(already_exists());
    }
    let mut md5s = md5::Md5::new();
    let mut crc = 0u64;
    let mut size = 0u64;
    for p in &chosen {
        md5s.update(
            (0..16)
                .filter_map(|i| {
                    u8::from_str_radix(bare_etag(&p.meta.etag).get(i * 2..i * 2 + 2)?, 16).ok()
                })
                .collect::<Vec<u8>>(),
        );
        crc = Crc64::combine(crc, p.meta.crc64, p.meta.size);
        size += p.meta.size;
    }
    if size > MAX_OBJECT * 10 {
        return Err(ApiError::new(
            400,
            "EntityTooLarge",
            "The object would exceed the maximum size.",
        ));
    }
    let etag = format!("\"{}-{}\"", hex(&md5s.finalize()), chosen.len());
    let data = store
        .concat(
            chosen
                .iter()
                .map(|p| (p.data.clone(), p.meta.size))
                .collect(),
        )
        .await?;
    let meta = ObjectMeta {
        key: key.clone(),
        size,
        etag: etag.clone(),
        crc64: crc,
        attrs: up.meta.attrs.clone(),
        appendable: false,
        last_modified: ctx.now,
        blob: None,
    };
    {
        // The upload must still exist (no concurrent abort or complete), then swap atomically.
        let mut st = store.lock();
        let Some(up) = st.uploads.remove(&id) else {
            drop(st);
            store.discard(&data);
            return Err(no_such_upload());
        };
        if forbid && st.objects.contains_key(&key) {
            st.uploads.insert(id.clone(), up);
            drop(st);
            store.discard(&data);
            return Err(already_exists());
        }
        let mut meta = meta;
        meta.blob = Store::blob_name(&data);
        if let Err(e) = store.save_object(&meta) {
            st.uploads.insert(id.clone(), up);
            drop(st);
            store.discard(&data);
            return Err(e.into());
        }
        if let Some(old) = st.objects.insert(key.clone(), Object { meta, data }) {
            store.discard(&old.data);
        }
        store.delete_upload(&up)?;
    }
    let location = format!("{}/{}", ctx.host, encode_path(&key));
    let mut r = xml_response(format!(
        "<CompleteMultipartUploadResult>{}{}{}{}</CompleteMultipartUploadResult>",
        el("Location", &location),
        el("Bucket", &ctx.bucket),
        el("Key", &key),
        el("ETag", &etag)
    ));
    if let Ok(v) = http::HeaderValue::from_str(&crc.to_string()) {
        r.headers_mut().insert("x-cos-hash-crc64ecma", v);
    }
    Ok(r)
}

fn abort(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let id = upload_id(ctx);
    let store = &ctx.store;
    let mut st = store.lock();
    if st.uploads.get(&id).is_none_or(|u| u.meta.key != key) {
        return Err(no_such_upload());
    }
    if let Some(up) = st.uploads.remove(&id) {
        store.delete_upload(&up)?;
    }
    Ok(respond(204, Body::empty(), &[]))
}

fn list_uploads(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let url = url_encoding(ctx)?;
    let max = max_param(ctx, "max-uploads")?;
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx.q("delimiter").unwrap_or("").to_string();
    let key_marker = ctx.q("key-marker").unwrap_or("").to_string();
    let id_marker = ctx.q("upload-id-marker").unwrap_or("").to_string();
    let mut all: Vec<(String, String, u64, String)> = ctx
        .store
        .lock()
        .uploads
        .values()
        .filter(|u| u.meta.key.starts_with(&prefix))
        .map(|u| {
            (
                u.meta.key.clone(),
                u.meta.upload_id.clone(),
                u.meta.initiated,
                u.meta.attrs.storage_class.clone(),
            )
        })
        .collect();
    all.sort();
    enum Entry {
        Upload(String, String, u64, String),
        Prefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    for (k, id, at, class) in all {
        let after_marker = if key_marker.is_empty() {
            true
        } else if id_marker.is_empty() {
            k > key_marker
        } else {
            k > key_marker || (k == key_marker && id > id_marker)
        };
        if !after_marker {
            continue;
        }
        let common = (!delimiter.is_empty())
            .then(|| {
                k[prefix.len()..]
                    .find(&delimiter)
                    .map(|i| k[..prefix.len() + i + delimiter.len()].to_string())
            })
            .flatten();
        if let Some(cp) = common {
            if !key_marker.is_empty() && cp == key_marker {
                continue;
            }
            if matches!(entries.last(), Some(Entry::Prefix(p)) if *p == cp) {
                continue;
            }
            if entries.len() == max {
                truncated = true;
                break;
            }
            entries.push(Entry::Prefix(cp));
        } else {
            if entries.len() == max {
                truncated = true;
                break;
            }
            entries.push(Entry::Upload(k, id, at, class));
        }
    }
    let enc = |s: &str| if url { encode(s) } else { s.to_string() };
    let mut x = String::from("<ListMultipartUploadsResult>");
    x += &el("Bucket", &ctx.bucket);
    if url {
        x += &el("Encoding-Type", "url");
    }
    x += &el("KeyMarker", &enc(&key_marker));
    x += &el("UploadIdMarker", &id_marker);
    let (next_key, next_id) = match entries.last() {
        Some(Entry::Upload(k, id, ..)) if truncated => (k.clone(), id.clone()),
        Some(Entry::Prefix(p)) if truncated => (p.clone(), String::new()),
        _ => (String::new(), String::new()),
    };
    x += &el("NextKeyMarker", &enc(&next_key));
    x += &el("NextUploadIdMarker", &next_id);
    x += &el("MaxUploads", &max.to_string());
    x += &el("IsTruncated", if truncated { "true" } else { "false" });
    x += &el("Prefix", &enc(&prefix));
    x += &el("Delimiter", &enc(&delimiter));
    for e in &entries {
        if let Entry::Upload(k, id, at, class) = e {
            x += &format!(
                "<Upload>{}{}{}{}{}{}</Upload>",
                el("Key", &enc(k)),
                el("UploadId", id),
                el("StorageClass", class),
                owner_xml("Initiator"),
                owner_xml("Owner"),
                el("Initiated", &iso8601(*at))
            );
        }
    }
    for e in &entries {
        if let Entry::Prefix(p) = e {
            x += &format!("<CommonPrefixes>{}</CommonPrefixes>", el("Prefix", &enc(p)));
        }
    }
    x += "</ListMultipartUploadsResult>";
    Ok(xml_response(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100).unwrap(), Some((50, 99)));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert_eq!(parse_range("bytes=0-1,3-4", 100).unwrap(), None);
    }

    #[test]
    fn complete_body() {
        let b = br#"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"def"</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(b).unwrap(),
            vec![(1, "\"abc\"".to_string()), (2, "\"def\"".to_string())]
        );
        assert!(parse_complete(b"<CompleteMultipartUpload>").is_err());
        assert!(parse_complete(b"<Other/>").is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload></CompleteMultipartUpload>").is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>").is_err());
    }
}
