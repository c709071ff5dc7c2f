//! GET Bucket (List Objects, version 1): `prefix`, `delimiter`, `marker`, `max-keys`, `encoding-type`.

use cos_core::auth::encode;
use http::Response;

use super::ops::{max_param, owner_xml, url_encoding};
use super::util::{el, iso8601};
use super::{xml_response, ApiError, Body, Ctx};

enum Entry {
    Object {
        key: String,
        modified: u64,
        etag: String,
        size: u64,
        class: String,
    },
    Prefix(String),
}

pub(crate) fn get_bucket(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let url = url_encoding(ctx)?;
    let max = match ctx.q("max-keys") {
        Some("0") => 0,
        _ => max_param(ctx, "max-keys")?,
    };
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let delimiter = ctx.q("delimiter").unwrap_or("").to_string();
    let marker = ctx.q("marker").unwrap_or("").to_string();
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    {
        let st = ctx.store.lock();
        let after = st
            .objects
            .range::<String, _>((
                std::ops::Bound::Excluded(&marker),
                std::ops::Bound::Unbounded,
            ))
            .filter(|(k, _)| k.starts_with(&prefix));
        for (k, o) in after {
            let common = (!delimiter.is_empty())
                .then(|| {
                    k[prefix.len()..]
                        .find(&delimiter)
                        .map(|i| k[..prefix.len() + i + delimiter.len()].to_string())
                })
                .flatten();
            if let Some(cp) = common {
                if cp <= marker || matches!(entries.last(), Some(Entry::Prefix(p)) if *p == cp) {
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
                entries.push(Entry::Object {
                    key: k.clone(),
                    modified: o.meta.last_modified,
                    etag: o.meta.etag.clone(),
                    size: o.meta.size,
                    class: o.meta.attrs.storage_class.clone(),
                });
            }
        }
    }
    let enc = |s: &str| if url { encode(s) } else { s.to_string() };
    let mut x = String::from("<ListBucketResult>");
    x += &el("Name", &ctx.bucket);
    if url {
        x += &el("EncodingType", "url");
    }
    x += &el("Prefix", &enc(&prefix));
    x += &el("Marker", &enc(&marker));
    x += &el("MaxKeys", &max.to_string());
    if !delimiter.is_empty() {
        x += &el("Delimiter", &enc(&delimiter));
    }
    x += &el("IsTruncated", if truncated { "true" } else { "false" });
    if truncated {
        let next = match entries.last() {
            Some(Entry::Object { key, .. }) => key.clone(),
            Some(Entry::Prefix(p)) => p.clone(),
            None => String::new(),
        };
        x += &el("NextMarker", &enc(&next));
    }
    for e in &entries {
        match e {
            Entry::Object {
                key,
                modified,
                etag,
                size,
                class,
            } => {
                x += &format!(
                    "<Contents>{}{}{}{}{}{}</Contents>",
                    el("Key", &enc(key)),
                    el("LastModified", &iso8601(*modified)),
                    el("ETag", etag),
                    el("Size", &size.to_string()),
                    owner_xml("Owner"),
                    el("StorageClass", class)
                );
            }
            Entry::Prefix(_) => {}
        }
    }
    for e in &entries {
        if let Entry::Prefix(p) = e {
            x += &format!("<CommonPrefixes>{}</CommonPrefixes>", el("Prefix", &enc(p)));
        }
    }
    x += "</ListBucketResult>";
    Ok(xml_response(x))
}
