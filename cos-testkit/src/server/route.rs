//! Which operation a request is: method, bucket or object, sub-resources and a few headers.
//!
//! Every COS sub-resource is known here. A request naming one the server does not implement (or a
//! parameter that is not plain signing or response data on a write) is routed to [`UNSUPPORTED`] and answered
//! `501 NotImplemented`: never to another operation (a `GET ?tagging` must not return the object's bytes).

use http::Method;

/// The operation name of every request the server does not implement.
pub(crate) const UNSUPPORTED: &str = "Unsupported";

/// The COS sub-resources (query parameters that select an operation), implemented or not.
pub(crate) const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "append",
    "cors",
    "delete",
    "domain",
    "encryption",
    "guetzli",
    "image-process",
    "intelligenttiering",
    "inventory",
    "lifecycle",
    "list-type",
    "location",
    "logging",
    "metaquery",
    "notification",
    "object-lock",
    "origin",
    "partNumber",
    "policy",
    "position",
    "referer",
    "rename",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "select-type",
    "symlink",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
    "ci-process",
    "fetch",
];

/// Query parameters that carry no operation: signatures, tokens, traffic limits, response overrides.
fn is_plain_param(name: &str) -> bool {
    name.starts_with("q-")
        || name.starts_with("x-cos-")
        || name.starts_with("response-")
        || name == "sign"
}

/// Listing parameters of GET Bucket / List Multipart Uploads / List Parts.
fn is_listing_param(name: &str) -> bool {
    matches!(
        name,
        "prefix"
            | "delimiter"
            | "marker"
            | "max-keys"
            | "encoding-type"
            | "key-marker"
            | "upload-id-marker"
            | "max-uploads"
            | "max-parts"
            | "part-number-marker"
    )
}

/// What routing needs from a request.
pub(crate) struct RouteInput<'a> {
    pub method: &'a Method,
    /// The path names the bucket itself (`/`).
    pub bucket_level: bool,
    pub query: &'a [(String, String)],
    pub headers: &'a http::HeaderMap,
}

impl RouteInput<'_> {
    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// Sub-resources present, other than those in `allowed`.
    fn other_subresources(&self, allowed: &[&str]) -> bool {
        self.query
            .iter()
            .any(|(k, _)| SUBRESOURCES.contains(&k.as_str()) && !allowed.contains(&k.as_str()))
    }

    /// Parameters that are neither plain nor in `allowed` (unknown parameters on a write are refused).
    fn other_params(&self, allowed: &[&str]) -> bool {
        self.query
            .iter()
            .any(|(k, _)| !is_plain_param(k) && !allowed.contains(&k.as_str()))
    }

    fn is_form(&self) -> bool {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"))
    }

    fn copy_source(&self) -> bool {
        self.headers.contains_key("x-cos-copy-source")
    }
}

/// Routes a request to its operation name (as counted and dispatched).
pub(crate) fn operation(r: &RouteInput<'_>) -> &'static str {
    // Bucket CORS and preflight requests have a single entry point (see `cors_operation`).
    if let Some(op) = cors_operation(r) {
        return op;
    }
    if r.bucket_level {
        bucket_operation(r)
    } else {
        object_operation(r)
    }
}

/// The bucket CORS configuration (`?cors`) and `OPTIONS` preflight requests. Not implemented yet: 501.
/// (Bucket CORS plugs in here: return its operation names and dispatch them in `ops::dispatch`.)
fn cors_operation(r: &RouteInput<'_>) -> Option<&'static str> {
    if *r.method == Method::OPTIONS || r.has("cors") {
        return Some(UNSUPPORTED);
    }
    None
}

fn bucket_operation(r: &RouteInput<'_>) -> &'static str {
    let m = r.method;
    if *m == Method::GET && r.has("uploads") {
        if r.other_subresources(&["uploads"]) {
            return UNSUPPORTED;
        }
        return "ListMultipartUploads";
    }
    if *m == Method::POST && r.has("delete") {
        if r.other_params(&["delete"]) {
            return UNSUPPORTED;
        }
        return "DeleteMultipleObjects";
    }
    if *m == Method::POST && r.is_form() {
        if r.other_subresources(&[]) {
            return UNSUPPORTED;
        }
        return "PostObject";
    }
    if r.has("acl") {
        return match *m {
            _ if r.other_params(&["acl"]) => UNSUPPORTED,
            Method::PUT => "PutBucketAcl",
            Method::GET => "GetBucketAcl",
            _ => UNSUPPORTED,
        };
    }
    if r.other_subresources(&[]) {
        return UNSUPPORTED;
    }
    match *m {
        Method::HEAD => "HeadBucket",
        Method::PUT if !r.other_params(&[]) => "PutBucket",
        Method::DELETE if !r.other_params(&[]) => "DeleteBucket",
        Method::GET
            if !r.other_params(&["prefix", "delimiter", "marker", "max-keys", "encoding-type"]) =>
        {
            "GetBucket"
        }
        _ => UNSUPPORTED,
    }
}

fn object_operation(r: &RouteInput<'_>) -> &'static str {
    let m = r.method;
    let only = |allowed: &[&str]| !r.other_params(allowed);
    match *m {
        Method::PUT if r.has("partNumber") || r.has("uploadId") => {
            if !only(&["partNumber", "uploadId"]) {
                UNSUPPORTED
            } else if r.copy_source() {
                "UploadPartCopy"
            } else {
                "UploadPart"
            }
        }
        Method::PUT if r.has("tagging") => op_if(only(&["tagging"]), "PutObjectTagging"),
        Method::PUT if r.has("acl") => op_if(only(&["acl"]), "PutObjectAcl"),
        Method::PUT if r.copy_source() => op_if(only(&[]), "PutObjectCopy"),
        Method::PUT => op_if(only(&[]), "PutObject"),
        Method::POST if r.has("uploads") => op_if(only(&["uploads"]), "InitiateMultipartUpload"),
        Method::POST if r.has("uploadId") => op_if(only(&["uploadId"]), "CompleteMultipartUpload"),
        Method::POST if r.has("append") => op_if(only(&["append", "position"]), "AppendObject"),
        Method::POST => UNSUPPORTED,
        Method::GET if r.has("uploadId") => op_if(
            !r.other_subresources(&["uploadId"])
                && only(&[
                    "uploadId",
                    "max-parts",
                    "part-number-marker",
                    "encoding-type",
                ]),
            "ListParts",
        ),
        Method::GET if r.has("tagging") => op_if(only(&["tagging"]), "GetObjectTagging"),
        Method::GET if r.has("acl") => op_if(only(&["acl"]), "GetObjectAcl"),
        Method::GET | Method::HEAD => {
            let versioned = r
                .query
                .iter()
                .any(|(k, v)| k == "versionId" && !v.is_empty() && v != "null");
            op_if(
                !versioned && !r.other_subresources(&[]),
                if *m == Method::GET {
                    "GetObject"
                } else {
                    "HeadObject"
                },
            )
        }
        Method::DELETE if r.has("uploadId") => op_if(only(&["uploadId"]), "AbortMultipartUpload"),
        Method::DELETE if r.has("tagging") => op_if(only(&["tagging"]), "DeleteObjectTagging"),
        Method::DELETE => op_if(only(&[]), "DeleteObject"),
        _ => UNSUPPORTED,
    }
}

fn op_if(ok: bool, op: &'static str) -> &'static str {
    if ok {
        op
    } else {
        UNSUPPORTED
    }
}

/// Why a request is not implemented, for the 501 message: its sub-resources or copy source.
pub(crate) fn unsupported_what(r: &RouteInput<'_>) -> String {
    let mut what: Vec<String> = r
        .query
        .iter()
        .filter(|(k, _)| !is_plain_param(k) && !is_listing_param(k))
        .map(|(k, _)| format!("?{k}"))
        .collect();
    if r.copy_source() && *r.method == Method::PUT {
        what.push("x-cos-copy-source".into());
    }
    if what.is_empty() {
        format!(
            "{} {}",
            r.method,
            if r.bucket_level { "Bucket" } else { "Object" }
        )
    } else {
        format!("{} {}", r.method, what.join(" "))
    }
}
