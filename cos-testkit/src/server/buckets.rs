//! Several buckets in one server: the bucket a request names (from its `Host`), and PUT / HEAD / DELETE
//! Bucket.
//!
//! The configured bucket always exists and keeps its objects at the root of the data directory; buckets
//! created with PUT Bucket live in `DIR/buckets/<name>/` (the same layout) and are reloaded on restart.
//! A host `<bucket>-<appid>.cos.<region>.myqcloud.com` (or `.tencentcos.cn`, or any host whose first label
//! is `<name>-<digits>`) names a bucket; any other host (an IP address, a custom domain) names the
//! configured bucket.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use http::Response;

use super::store::Store;
use super::{respond, ApiError, Body, Ctx, Inner};

/// The buckets created with PUT Bucket, by name.
pub(crate) type Buckets = std::sync::Mutex<BTreeMap<String, Arc<Store>>>;

/// Whether `name` is `<name>-<appid>`: lower-case letters, digits and `-`, ending in `-<digits>`.
fn is_bucket_name(name: &str) -> bool {
    let Some((short, appid)) = name.rsplit_once('-') else {
        return false;
    };
    !short.is_empty()
        && short.len() <= 50
        && !appid.is_empty()
        && appid.bytes().all(|b| b.is_ascii_digit())
        && short
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !short.starts_with('-')
}

/// The bucket a `Host` names, or `None` for a host that names none (the configured bucket serves it).
pub(crate) fn bucket_of_host(host: &str) -> Option<String> {
    let h = host.to_ascii_lowercase();
    let h = match h.rsplit_once(':') {
        Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
        _ => h,
    };
    let (first, rest) = h.split_once('.')?;
    if rest.is_empty() {
        return None;
    }
    is_bucket_name(first).then(|| first.to_string())
}

/// Opens the buckets saved under `DIR/buckets/`.
pub(crate) fn load(dir: Option<&PathBuf>, sink: bool) -> io::Result<BTreeMap<String, Arc<Store>>> {
    let mut out = BTreeMap::new();
    let Some(d) = dir else { return Ok(out) };
    let root = d.join("buckets");
    if !root.is_dir() {
        return Ok(out);
    }
    for e in std::fs::read_dir(&root)? {
        let p = e?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if is_bucket_name(&name) && p.is_dir() {
            out.insert(name, Arc::new(Store::open(Some(p), sink)?));
        }
    }
    Ok(out)
}

/// The store of bucket `name`, if it exists.
pub(crate) fn find(inner: &Inner, name: &str) -> Option<Arc<Store>> {
    if name == inner.bucket {
        return Some(inner.store.clone());
    }
    inner
        .buckets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned()
}

pub(crate) fn no_such_bucket() -> ApiError {
    ApiError::new(404, "NoSuchBucket", "The specified bucket does not exist.")
}

/// PUT Bucket: creates the bucket the host names (409 when it exists).
pub(crate) fn put_bucket(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let name = ctx.bucket.clone();
    if !is_bucket_name(&name) {
        return Err(ApiError::new(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        ));
    }
    let inner = &ctx.inner;
    let mut map = inner.buckets.lock().unwrap_or_else(|e| e.into_inner());
    if name == inner.bucket || map.contains_key(&name) {
        return Err(ApiError::new(
            409,
            "BucketAlreadyExists",
            "The requested bucket name is not available.",
        ));
    }
    let dir = inner
        .data_dir
        .as_ref()
        .map(|d| d.join("buckets").join(&name));
    let store = Store::open(dir, inner.store.is_sink())?;
    map.insert(name, Arc::new(store));
    Ok(respond(200, Body::empty(), &[]))
}

/// DELETE Bucket: only an empty bucket (no objects, no unfinished uploads). The configured bucket is
/// never removed: deleting it when empty answers 204 and it stays served.
pub(crate) fn delete_bucket(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    {
        let st = ctx.store.lock();
        if !st.objects.is_empty() || !st.uploads.is_empty() {
            return Err(ApiError::new(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty.",
            ));
        }
    }
    if ctx.bucket != ctx.inner.bucket {
        let mut map = ctx.inner.buckets.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&ctx.bucket);
        if let Some(d) = &ctx.inner.data_dir {
            let _ = std::fs::remove_dir_all(d.join("buckets").join(&ctx.bucket));
        }
    }
    Ok(respond(204, Body::empty(), &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let b = |h| bucket_of_host(h);
        assert_eq!(
            b("b-1.cos.ap-guangzhou.myqcloud.com").as_deref(),
            Some("b-1")
        );
        assert_eq!(
            b("b-1.cos.ap-guangzhou.myqcloud.com:443").as_deref(),
            Some("b-1")
        );
        assert_eq!(
            b("my-bucket-125.localhost:9000").as_deref(),
            Some("my-bucket-125")
        );
        assert_eq!(b("127.0.0.1:9000"), None);
        assert_eq!(b("localhost:9000"), None);
        assert_eq!(b("cdn.example.com"), None);
        assert_eq!(b("[::1]:80"), None);
    }
}
