//! PUT Object - Copy (within and across keys and buckets, `x-cos-metadata-directive`, source conditions)
//! and Upload Part - Copy (`x-cos-copy-source-range`).

use std::collections::BTreeMap;

use cos_core::checksum::{hex, BodyDigest, SentDigest};
use http::Response;
use tokio::io::AsyncReadExt;

use super::ops::{attrs_from, commit_object, header_pairs, no_such_upload};
use super::store::{Data, ObjectAttrs, ObjectMeta, Part, PartMeta, Reader, Store};
use super::util::{el, iso8601};
use super::{buckets, xml_response, ApiError, Body, Ctx};

/// The source a copy names: its bucket's store and the object (404 `NoSuchKey` / `NoSuchBucket`).
fn copy_source(ctx: &Ctx) -> Result<(std::sync::Arc<Store>, super::store::Object), ApiError> {
    let raw = ctx.header("x-cos-copy-source").unwrap_or_default();
    let bad = || {
        ApiError::new(
            400,
            "InvalidArgument",
            "x-cos-copy-source is not <bucket>.cos.<region>.myqcloud.com/<key>.",
        )
    };
    let raw = raw.trim();
    let raw = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .unwrap_or(raw);
    let (host, path) = raw.split_once('/').ok_or_else(bad)?;
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() {
        return Err(bad());
    }
    let key = cos_core::auth::decode(path).ok_or_else(bad)?;
    let bucket = buckets::bucket_of_host(host).ok_or_else(bad)?;
    let store = buckets::find(&ctx.inner, &bucket).ok_or_else(buckets::no_such_bucket)?;
    if store.is_sink() {
        return Err(ApiError::new(
            501,
            "NotImplemented",
            "cos-testkit sink mode keeps no object bodies to copy.",
        ));
    }
    let obj = store
        .lock()
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::new(404, "NoSuchKey", "The specified key does not exist."))?;
    let m = &obj.meta;
    if let Some(want) = ctx.header("x-cos-copy-source-if-match") {
        if want.trim() != "*" && want.trim().trim_matches('"') != m.etag.trim_matches('"') {
            return Err(ApiError::new(
                412,
                "PreconditionFailed",
                "x-cos-copy-source-If-Match does not match the source's ETag.",
            ));
        }
    }
    if let Some(want) = ctx.header("x-cos-copy-source-if-none-match") {
        if want.trim() == "*" || want.trim().trim_matches('"') == m.etag.trim_matches('"') {
            return Err(ApiError::new(
                412,
                "PreconditionFailed",
                "x-cos-copy-source-If-None-Match matches the source's ETag.",
            ));
        }
    }
    Ok((store, obj))
}

/// Copies `[start, start+len)` of a source body into a new body of `dst`, digesting it on the way.
async fn copy_bytes(
    src: &Store,
    data: &Data,
    start: u64,
    len: u64,
    dst: &Store,
) -> Result<(SentDigest, Data), ApiError> {
    let mut w = dst.writer(len).await?;
    let mut digest = BodyDigest::new();
    let res: std::io::Result<()> = async {
        match src.read(data, start, len)? {
            Reader::Bytes(b) => {
                digest.update(&b);
                w.write(&b).await?;
            }
            Reader::File(f, len) => {
                let mut f = tokio::fs::File::from_std(f).take(len);
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = f.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    digest.update(&buf[..n]);
                    w.write(&buf[..n]).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = res {
        dst.abandon(w);
        return Err(e.into());
    }
    let d = digest.finish();
    if d.len != len {
        dst.abandon(w);
        return Err(ApiError::internal(
            "the source body is shorter than its size",
        ));
    }
    Ok((d, dst.finish(w).await?))
}

/// The server always computes MD5 (`BodyDigest::new`), so `md5` is `Some`.
fn etag_of(md5: &Option<[u8; 16]>) -> String {
    format!("\"{}\"", hex(&md5.unwrap_or_default()))
}

/// PUT Object - Copy.
pub(crate) async fn copy_object(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let (src_store, src) = copy_source(ctx)?;
    let directive = ctx
        .header("x-cos-metadata-directive")
        .unwrap_or_else(|| "Copy".into());
    let replaced = match directive.trim() {
        d if d.eq_ignore_ascii_case("copy") => false,
        d if d.eq_ignore_ascii_case("replaced") => true,
        d => {
            return Err(ApiError::invalid(format!(
                "x-cos-metadata-directive {d} is not Copy or Replaced"
            )))
        }
    };
    let same = std::sync::Arc::ptr_eq(&src_store, &ctx.store) && src.meta.key == key;
    if same && !replaced {
        return Err(ApiError::new(
            400,
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.",
        ));
    }
    if src.meta.size > super::ops::MAX_OBJECT {
        return Err(ApiError::new(
            400,
            "InvalidRequest",
            "The source is larger than 5 GB: copy it with Upload Part - Copy.",
        ));
    }
    let attrs: ObjectAttrs = if replaced {
        attrs_from(&key, &header_pairs(ctx))?
    } else {
        let mut a = src.meta.attrs.clone();
        if let Some(class) = ctx.header("x-cos-storage-class") {
            a.storage_class =
                attrs_from(&key, &[("x-cos-storage-class".into(), class)])?.storage_class;
        }
        a
    };
    let (d, data) = copy_bytes(&src_store, &src.data, 0, src.meta.size, &ctx.store).await?;
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
    let x = format!(
        "<CopyObjectResult>{}{}{}</CopyObjectResult>",
        el("ETag", &meta.etag),
        el("LastModified", &iso8601(meta.last_modified)),
        el("CRC64", &d.crc64.to_string())
    );
    let forbid = ctx
        .header("x-cos-forbid-overwrite")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    commit_object(&ctx.store, meta, data, forbid)?;
    Ok(xml_response(x))
}

/// `bytes=first-last` inside an object of `size` bytes.
fn copy_range(v: &str, size: u64) -> Result<(u64, u64), ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "InvalidArgument",
            "x-cos-copy-source-range must be bytes=first-last inside the source.",
        )
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(bad());
    }
    Ok((first, last - first + 1))
}

/// Upload Part - Copy.
pub(crate) async fn upload_part_copy(
    ctx: &mut Ctx,
    key: String,
) -> Result<Response<Body>, ApiError> {
    let number: u32 = ctx
        .q("partNumber")
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| ApiError::invalid("partNumber must be between 1 and 10000"))?;
    let id = ctx.q("uploadId").unwrap_or("").to_string();
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
    let (src_store, src) = copy_source(ctx)?;
    let (start, len) = match ctx.header("x-cos-copy-source-range") {
        Some(r) => copy_range(&r, src.meta.size)?,
        None => (0, src.meta.size),
    };
    if len > super::ops::MAX_OBJECT {
        return Err(ApiError::new(
            400,
            "EntityTooLarge",
            "A copied part is at most 5 GB.",
        ));
    }
    let (d, data) = copy_bytes(&src_store, &src.data, start, len, &ctx.store).await?;
    let store = &ctx.store;
    let meta = PartMeta {
        number,
        size: d.len,
        etag: etag_of(&d.md5),
        crc64: d.crc64,
        last_modified: ctx.now,
        blob: Store::blob_name(&data),
    };
    let x = format!(
        "<CopyPartResult>{}{}{}</CopyPartResult>",
        el("ETag", &meta.etag),
        el("LastModified", &iso8601(meta.last_modified)),
        el("CRC64", &d.crc64.to_string())
    );
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
        let parts: &mut BTreeMap<u32, Part> = &mut up.parts;
        if let Some(old) = parts.insert(number, Part { meta, data }) {
            store.discard(&old.data);
        }
    }
    Ok(xml_response(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(copy_range("bytes=0-9", 10).unwrap(), (0, 10));
        assert_eq!(copy_range("bytes=3-3", 10).unwrap(), (3, 1));
        assert!(copy_range("bytes=5-10", 10).is_err());
        assert!(copy_range("bytes=5-4", 10).is_err());
        assert!(copy_range("bytes=-4", 10).is_err());
        assert!(copy_range("0-4", 10).is_err());
    }
}
