//! Object sub-resources and per-object options: tagging (`x-cos-tagging`, `?tagging`), ACL (`x-cos-acl`,
//! `x-cos-grant-*`, `?acl`; the bucket's too), server-side encryption (SSE-COS echo, SSE-C key checks) and Delete Multiple
//! Objects (`POST /?delete`).

use base64::Engine as _;
use http::Response;
use md5::Digest as _;

use super::store::{ObjectAttrs, ObjectMeta};
use super::util::el;
use super::{respond, xml_response, ApiError, Body, Ctx};

const OWNER: &str = "qcs::cam::uin/100000000001:uin/100000000001";
const OWNER_NAME: &str = "100000000001";
const ALL_USERS: &str = "http://cam.qcloud.com/groups/global/AllUsers";
/// Most tags on one object.
const MAX_TAGS: usize = 10;

/// The SSE-C response headers (names as COS sends them, lower-case on the wire).
pub(crate) const SSE_C_ALGORITHM: &str = "x-cos-server-side-encryption-customer-algorithm";
pub(crate) const SSE_C_KEY_MD5: &str = "x-cos-server-side-encryption-customer-key-md5";
const SSE_C_KEY: &str = "x-cos-server-side-encryption-customer-key";

/// `(name, text)` pairs: tags, grants, XML element texts.
type Pairs = Vec<(String, String)>;

fn malformed() -> ApiError {
    ApiError::new(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )
}

fn invalid_tag(msg: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidTag", msg)
}

/// Checks a tag set: at most 10 tags, keys 1–128 and values 0–256 characters, no duplicate keys.
fn validate_tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "Object tags cannot be greater than 10",
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|(o, _)| o == k) {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

/// Parses `x-cos-tagging: k1=v1&k2=v2` (URL-encoded pairs).
pub(crate) fn parse_tagging_header(v: &str) -> Result<Vec<(String, String)>, ApiError> {
    let tags = cos_core::auth::parse_query(v.trim())
        .ok_or_else(|| ApiError::invalid("x-cos-tagging is not a URL-encoded query string"))?;
    validate_tags(&tags)?;
    Ok(tags)
}

/// Parses one `x-cos-grant-*` value: `id="…",uri="…"` entries, kept as written.
fn parse_grantees(v: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let (kind, val) = g.split_once('=').ok_or_else(|| {
            ApiError::invalid(format!("grantee {g} is not id=\"…\" or uri=\"…\""))
        })?;
        let kind = kind.trim().to_ascii_lowercase();
        let val = val.trim().trim_matches('"');
        if !matches!(kind.as_str(), "id" | "uri") || val.is_empty() {
            return Err(ApiError::invalid(format!(
                "grantee {g} is not id=\"…\" or uri=\"…\""
            )));
        }
        out.push(format!("{kind}=\"{val}\""));
    }
    Ok(out)
}

/// The canned ACL and grants a request's `x-cos-acl` and `x-cos-grant-*` headers set.
pub(crate) fn acl_from_headers(
    get: impl Fn(&str) -> Option<String>,
) -> Result<(Option<String>, Pairs), ApiError> {
    let canned = get("x-cos-acl");
    if let Some(a) = &canned {
        if !matches!(
            a.as_str(),
            "default" | "private" | "public-read" | "public-read-write"
        ) {
            return Err(ApiError::invalid(format!(
                "x-cos-acl {a} is not a canned ACL"
            )));
        }
    }
    let mut grants = Vec::new();
    for (h, perm) in [
        ("x-cos-grant-read", "READ"),
        ("x-cos-grant-write", "WRITE"),
        ("x-cos-grant-read-acp", "READ_ACP"),
        ("x-cos-grant-write-acp", "WRITE_ACP"),
        ("x-cos-grant-full-control", "FULL_CONTROL"),
    ] {
        if let Some(v) = get(h) {
            for g in parse_grantees(&v)? {
                grants.push((perm.to_string(), g));
            }
        }
    }
    Ok((canned, grants))
}

/// Validates SSE-C request headers: `Some((algorithm, key MD5))` when present and consistent.
pub(crate) fn sse_c_from(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, ApiError> {
    let (alg, key, md5) = (get(SSE_C_ALGORITHM), get(SSE_C_KEY), get(SSE_C_KEY_MD5));
    if alg.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    let bad = |m: &str| ApiError::new(400, "InvalidArgument", m.to_string());
    let alg = alg.ok_or_else(|| {
        bad("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
    })?;
    if alg != "AES256" {
        return Err(bad("The encryption algorithm specified is not valid."));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = key
        .and_then(|k| b64.decode(k.trim()).ok())
        .filter(|k| k.len() == 32)
        .ok_or_else(|| bad("The secret key was invalid for the specified algorithm."))?;
    let want = b64.encode(md5::Md5::digest(&raw));
    if let Some(m) = md5 {
        if m.trim() != want {
            return Err(bad(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
            ));
        }
    }
    Ok(Some((alg, want)))
}

/// A read (HEAD/GET) of an SSE-C object must carry the key it was written with.
pub(crate) fn check_sse_c_read(ctx: &Ctx, attrs: &ObjectAttrs) -> Result<(), ApiError> {
    let stored = attrs
        .headers
        .iter()
        .find(|(k, _)| k == SSE_C_KEY_MD5)
        .map(|(_, v)| v.clone());
    let given = sse_c_from(|n| ctx.header(n).filter(|v| !v.is_empty()))?;
    match (stored, given) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(ApiError::new(
            400,
            "InvalidRequest",
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (Some(want), Some((_, got))) if want != got => Err(ApiError::new(
            403,
            "AccessDenied",
            "The provided customer key does not match the key the object was encrypted with.",
        )),
        _ => Ok(()),
    }
}

/// The encryption headers to echo on a write's answer.
pub(crate) fn sse_echo(attrs: &ObjectAttrs) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (k, v) in &attrs.headers {
        for name in [
            "x-cos-server-side-encryption",
            SSE_C_ALGORITHM,
            SSE_C_KEY_MD5,
        ] {
            if k == name {
                out.push((name, v.clone()));
            }
        }
    }
    out
}

/// The direct-child texts of every `<item>` element under the root `<root>`, by child name (nested
/// children are flattened: `Grantee/ID` is `ID`). Texts of other elements directly under the root are
/// returned with the root entry, as `item = root`.
fn xml_items(body: &[u8], root: &str, item: &str) -> Result<(Pairs, Vec<Pairs>), ApiError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut top = Vec::new();
    let mut items: Vec<Vec<(String, String)>> = Vec::new();
    let mut in_item: Option<usize> = None;
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != root || seen_root {
                        return Err(malformed());
                    }
                    seen_root = true;
                }
                if name == item && in_item.is_none() {
                    in_item = Some(path.len());
                    items.push(Vec::new());
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    return Err(malformed());
                }
                if in_item.is_some() {
                    if let Some(it) = items.last_mut() {
                        it.push((name, String::new()));
                    }
                } else if name == item {
                    items.push(Vec::new());
                }
            }
            Event::End(_) => {
                path.pop().ok_or_else(malformed)?;
                if in_item == Some(path.len()) {
                    in_item = None;
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| malformed())?.into_owned();
                let name = path.last().cloned().unwrap_or_default();
                if in_item.is_some() {
                    if let Some(it) = items.last_mut() {
                        it.push((name, text));
                    }
                } else {
                    top.push((name, text));
                }
            }
            Event::CData(t) => {
                let text = String::from_utf8_lossy(&t).into_owned();
                let name = path.last().cloned().unwrap_or_default();
                if let (Some(_), Some(it)) = (in_item, items.last_mut()) {
                    it.push((name, text));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root || !path.is_empty() {
        return Err(malformed());
    }
    Ok((top, items))
}

fn field<'a>(item: &'a [(String, String)], name: &str) -> Option<&'a str> {
    item.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn no_such_key() -> ApiError {
    ApiError::new(404, "NoSuchKey", "The specified key does not exist.")
}

/// Changes an existing object's attributes in place (index and saved metadata).
fn update_attrs(ctx: &Ctx, key: &str, f: impl FnOnce(&mut ObjectAttrs)) -> Result<(), ApiError> {
    let store = &ctx.store;
    let mut st = store.lock();
    let obj = st.objects.get_mut(key).ok_or_else(no_such_key)?;
    let mut meta: ObjectMeta = obj.meta.clone();
    f(&mut meta.attrs);
    store.save_object(&meta)?;
    obj.meta = meta;
    Ok(())
}

fn object_attrs(ctx: &Ctx, key: &str) -> Result<ObjectAttrs, ApiError> {
    ctx.store
        .lock()
        .objects
        .get(key)
        .map(|o| o.meta.attrs.clone())
        .ok_or_else(no_such_key)
}

/// PUT Object Tagging: replaces the object's tag set with the body's `<Tagging><TagSet><Tag>…`.
pub(crate) async fn put_tagging(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    object_attrs(ctx, &key)?;
    let body = super::ops::read_small_body(ctx, 64 << 10).await?;
    let (_, items) = xml_items(&body, "Tagging", "Tag")?;
    let mut tags = Vec::new();
    for t in &items {
        let k = field(t, "Key").ok_or_else(malformed)?;
        let v = field(t, "Value").unwrap_or("");
        tags.push((k.to_string(), v.to_string()));
    }
    validate_tags(&tags)?;
    update_attrs(ctx, &key, |a| a.tags = tags)?;
    Ok(respond(200, Body::empty(), &[]))
}

/// GET Object Tagging.
pub(crate) fn get_tagging(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    let attrs = object_attrs(ctx, &key)?;
    let mut x = String::from("<Tagging><TagSet>");
    for (k, v) in &attrs.tags {
        x += &format!("<Tag>{}{}</Tag>", el("Key", k), el("Value", v));
    }
    x += "</TagSet></Tagging>";
    Ok(xml_response(x))
}

/// DELETE Object Tagging.
pub(crate) fn delete_tagging(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    update_attrs(ctx, &key, |a| a.tags.clear())?;
    Ok(respond(204, Body::empty(), &[]))
}

/// PUT Object ACL: from `x-cos-acl` / `x-cos-grant-*` headers, or an `<AccessControlPolicy>` body.
pub(crate) async fn put_acl(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    object_attrs(ctx, &key)?;
    let (canned, grants, from_body) = acl_of_request(ctx, "Object").await?;
    update_attrs(ctx, &key, |a| {
        a.acl = canned;
        a.grants = grants;
        a.acl_from_body = from_body;
    })?;
    Ok(respond(200, Body::empty(), &[]))
}

/// PUT Bucket ACL: as PUT Object ACL, for the bucket.
pub(crate) async fn put_bucket_acl(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let (acl, grants, acl_from_body) = acl_of_request(ctx, "Bucket").await?;
    let attrs = ObjectAttrs {
        acl,
        grants,
        acl_from_body,
        ..ObjectAttrs::default()
    };
    ctx.store.save_bucket_acl(&attrs)?;
    ctx.store.lock().bucket_acl = attrs;
    Ok(respond(200, Body::empty(), &[]))
}

/// GET Bucket ACL: as GET Object ACL, for the bucket.
pub(crate) fn get_bucket_acl(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let attrs = ctx.store.lock().bucket_acl.clone();
    Ok(acl_response(&attrs))
}

/// The canned ACL, grants, and whether they came from an `AccessControlPolicy` body, of a PUT ACL request
/// (`what`: `Object` or `Bucket`).
async fn acl_of_request(
    ctx: &mut Ctx,
    what: &str,
) -> Result<(Option<String>, Pairs, bool), ApiError> {
    let (canned, mut grants) = acl_from_headers(|n| ctx.header(n).filter(|v| !v.is_empty()))?;
    let body = super::ops::read_small_body(ctx, 64 << 10).await?;
    let from_body = !body.iter().all(u8::is_ascii_whitespace);
    if from_body {
        if canned.is_some() || !grants.is_empty() {
            return Err(ApiError::invalid(
                "Specify an ACL either in headers or in the body, not both.",
            ));
        }
        let (_, items) = xml_items(&body, "AccessControlPolicy", "Grant")?;
        for g in &items {
            let perm = field(g, "Permission").ok_or_else(malformed)?;
            if !matches!(
                perm,
                "READ" | "WRITE" | "READ_ACP" | "WRITE_ACP" | "FULL_CONTROL"
            ) {
                return Err(malformed());
            }
            let grantee = match (field(g, "ID"), field(g, "URI")) {
                (Some(id), _) => format!("id=\"{id}\""),
                (None, Some(uri)) => format!("uri=\"{uri}\""),
                _ => return Err(malformed()),
            };
            grants.push((perm.to_string(), grantee));
        }
    } else if canned.is_none() && grants.is_empty() {
        return Err(ApiError::invalid(format!(
            "PUT {what} ACL needs x-cos-acl, x-cos-grant-* headers or an AccessControlPolicy body."
        )));
    }
    Ok((canned, grants, from_body))
}

fn grant_xml(grantee: &str, permission: &str) -> String {
    let (kind, val) = grantee.split_once('=').unwrap_or(("id", grantee));
    let val = val.trim_matches('"');
    let inner = if kind == "uri" {
        format!(
            "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">{}</Grantee>",
            el("URI", val)
        )
    } else {
        format!(
            "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">{}{}</Grantee>",
            el("ID", val),
            el("DisplayName", val.rsplit('/').next().unwrap_or(val))
        )
    };
    format!("<Grant>{inner}{}</Grant>", el("Permission", permission))
}

/// GET Object ACL: the owner's FULL_CONTROL (unless a policy body set the whole list), the canned ACL's
/// group grants, then the explicit grants.
pub(crate) fn get_acl(ctx: &mut Ctx, key: String) -> Result<Response<Body>, ApiError> {
    Ok(acl_response(&object_attrs(ctx, &key)?))
}

/// The `AccessControlPolicy` answer (and `x-cos-acl`) for the ACL in `attrs`.
fn acl_response(attrs: &ObjectAttrs) -> Response<Body> {
    let mut x = format!(
        "<AccessControlPolicy><Owner>{}{}</Owner><AccessControlList>",
        el("ID", OWNER),
        el("DisplayName", OWNER_NAME)
    );
    // An ACL set by a policy body is exactly that list; otherwise the owner has FULL_CONTROL first.
    if !attrs.acl_from_body {
        x += &grant_xml(&format!("id=\"{OWNER}\""), "FULL_CONTROL");
    }
    let all = format!("uri=\"{ALL_USERS}\"");
    match attrs.acl.as_deref() {
        Some("public-read") => x += &grant_xml(&all, "READ"),
        Some("public-read-write") => {
            x += &grant_xml(&all, "READ");
            x += &grant_xml(&all, "WRITE");
        }
        _ => {}
    }
    for (perm, g) in &attrs.grants {
        x += &grant_xml(g, perm);
    }
    x += "</AccessControlList></AccessControlPolicy>";
    let mut r = xml_response(x);
    if let Some(a) = &attrs.acl {
        if let Ok(v) = http::HeaderValue::from_str(a) {
            r.headers_mut().insert("x-cos-acl", v);
        }
    }
    r
}

/// Delete Multiple Objects: `<Delete><Quiet>…</Quiet><Object><Key>…</Key></Object>…</Delete>`, up to
/// 1000 keys; a missing key counts as deleted. Quiet mode reports only errors.
pub(crate) async fn delete_multiple(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let body = super::ops::read_small_body(ctx, 4 << 20).await?;
    // COS compares a Content-MD5 the request carries with the body it received and deletes nothing when they
    // differ: a list of keys damaged on the way must not delete other objects.
    if let Some(want) = ctx.header("content-md5") {
        if want.trim() != cos_core::checksum::content_md5(&body) {
            return Err(ApiError::new(
                400,
                "InvalidDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let (top, items) = xml_items(&body, "Delete", "Object")?;
    let quiet = top
        .iter()
        .any(|(k, v)| k == "Quiet" && v.trim().eq_ignore_ascii_case("true"));
    if items.is_empty() || items.len() > 1000 {
        return Err(malformed());
    }
    let mut keys = Vec::with_capacity(items.len());
    for o in &items {
        keys.push(field(o, "Key").ok_or_else(malformed)?.to_string());
    }
    let store = &ctx.store;
    let mut x = String::from("<DeleteResult>");
    for key in keys {
        let res: Result<(), ApiError> = (|| {
            if key.is_empty() || key.len() > 850 {
                return Err(ApiError::invalid("The key is empty or too long."));
            }
            let mut st = store.lock();
            if st.objects.contains_key(&key) {
                store.delete_object_meta(&key)?;
                if let Some(o) = st.objects.remove(&key) {
                    store.discard(&o.data);
                }
            }
            Ok(())
        })();
        match res {
            Ok(()) if !quiet => x += &format!("<Deleted>{}</Deleted>", el("Key", &key)),
            Ok(()) => {}
            Err(e) => {
                x += &format!(
                    "<Error>{}{}{}</Error>",
                    el("Key", &key),
                    el("Code", &e.code),
                    el("Message", &e.message)
                )
            }
        }
    }
    x += "</DeleteResult>";
    Ok(xml_response(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_header() {
        assert_eq!(
            parse_tagging_header("a=1&b%20c=x%26y").unwrap(),
            vec![("a".into(), "1".into()), ("b c".into(), "x&y".into())]
        );
        assert!(parse_tagging_header("a=1&a=2").is_err());
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tagging_header(&many.join("&")).is_err());
    }

    #[test]
    fn items() {
        let (top, items) = xml_items(
            b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b&amp;</Key></Object></Delete>",
            "Delete",
            "Object",
        )
        .unwrap();
        assert_eq!(top, vec![("Quiet".to_string(), "true".to_string())]);
        assert_eq!(items.len(), 2);
        assert_eq!(field(&items[1], "Key"), Some("b&"));
        assert!(xml_items(b"<Other/>", "Delete", "Object").is_err());
        assert!(xml_items(b"<Delete>", "Delete", "Object").is_err());
    }

    #[test]
    fn grantees() {
        assert_eq!(
            parse_grantees("id=\"qcs::cam::uin/1:uin/2\", uri=\"http://x\"").unwrap(),
            vec!["id=\"qcs::cam::uin/1:uin/2\"", "uri=\"http://x\""]
        );
        assert!(parse_grantees("bogus").is_err());
    }
}
