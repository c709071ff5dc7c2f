//! POST Object: browser form uploads authorised by a signed policy.
//!
//! A server that holds the credentials builds a [`PostPolicy`] (what may be uploaded, until when) and signs
//! it into a [`PostForm`]: the action URL and the form fields, in order. The form can be handed to a browser
//! (it is [`serde::Serialize`]) or sent by a driver with [`PostObject`], which frames the fields and the
//! file as `multipart/form-data` so that the file can be streamed between a head and a tail of known
//! length.
//!
//! The server side (verifying a received form, parsing policy JSON and `multipart/form-data`) lives in
//! `cos_testkit::policy`: only a server needs it.
//!
//! # Signing
//! `KeyTime = "<start>;<end>"`, `SignKey = hex(HMAC-SHA1(SecretKey, KeyTime))` ([`crate::auth::sign_key`]),
//! `q-signature = hex(HMAC-SHA1(SignKey, hex(SHA1(policy JSON text))))` ([`sign_policy`]). The `policy`
//! field is the standard base64 of the exact JSON text that was hashed.
//!
//! # Example
//! ```
//! use std::time::{Duration, SystemTime};
//! use cos_core::post_policy::{PostObject, PostPolicy};
//! use cos_core::{Config, Credentials};
//!
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKIDEXAMPLE", "KEY"))?;
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let form = PostPolicy::new(now + Duration::from_secs(3600))
//!     .key_starts_with("uploads/alice/")
//!     .content_length_range(1, 10 << 20)
//!     .content_type("image/png")
//!     .success_action_status(201)
//!     .sign(&config, now)?;
//! assert_eq!(form.url(), "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/");
//! assert_eq!(form.field("key"), Some("uploads/alice/${filename}"));
//! assert!(form.policy_json().starts_with(r#"{"expiration":"2023-11-14T23:13:20.000Z","conditions":[{"q-sign-algorithm":"sha1"}"#));
//!
//! // A driver streams the file between `head()` and `tail()`.
//! let post = PostObject::new(form, "cos-rs-boundary-1", "cat.png", "image/png")?;
//! let request = post.request(5)?;
//! assert_eq!(request.headers()["content-length"], (post.head().len() + 5 + post.tail().len()).to_string());
//! # Ok::<(), cos_core::Error>(())
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};

use crate::auth::{self, sign_key, KeyTime};
use crate::checksum::{hex, SentDigest};
use crate::config::{validate_file_key, validate_key, Config};
use crate::credentials::Credentials;
use crate::date::corrected;
use crate::error::{Error, InvalidInput};
use crate::ops::{self, Acl, StorageClass, MAX_METADATA_BYTES};

mod task;
pub use task::{FileDigest, FileDigester, PostFraming, PostObjectTask};

/// Largest file a POST Object accepts (5 GB).
pub const MAX_POST_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// How a form field is constrained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// The field must equal this value; the signed form carries it.
    Eq(String),
    /// The field must start with this prefix; the uploader fills in the value (see [`PostForm::set`]).
    StartsWith(String),
}

/// One policy condition, as written in the policy JSON and as a server (`cos_testkit::policy::parse_policy_json`) reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// `{"field": "value"}` (or, when parsed, `["eq", "$field", "value"]`).
    Eq {
        /// Field name without `$`.
        field: String,
        /// Required value.
        value: String,
    },
    /// `["starts-with", "$field", "prefix"]`; an empty prefix admits any value, or no field at all.
    StartsWith {
        /// Field name without `$`.
        field: String,
        /// Required prefix.
        prefix: String,
    },
    /// `["content-length-range", min, max]`: the file length in bytes, both ends inclusive.
    ContentLengthRange {
        /// Smallest length.
        min: u64,
        /// Largest length.
        max: u64,
    },
}

/// A condition as policy JSON: `{"field":"value"}`, `["starts-with","$field","prefix"]` or
/// `["content-length-range",min,max]`.
struct ConditionJson<'a>(&'a Condition);

impl Serialize for ConditionJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeTuple as _};
        match self.0 {
            Condition::Eq { field, value } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(field, value)?;
                m.end()
            }
            Condition::StartsWith { field, prefix } => {
                let mut t = s.serialize_tuple(3)?;
                t.serialize_element("starts-with")?;
                t.serialize_element(&format!("${field}"))?;
                t.serialize_element(prefix)?;
                t.end()
            }
            Condition::ContentLengthRange { min, max } => {
                let mut t = s.serialize_tuple(3)?;
                t.serialize_element("content-length-range")?;
                t.serialize_element(min)?;
                t.serialize_element(max)?;
                t.end()
            }
        }
    }
}

/// The policy document, serialised compactly in this member order (the signature covers the exact text).
#[derive(Serialize)]
struct PolicyJson<'a> {
    expiration: &'a str,
    conditions: Vec<ConditionJson<'a>>,
}

/// Compact JSON text of `value` (strings and numbers cannot fail to serialise).
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("policy JSON is strings and integers")
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_json(&ConditionJson(self)))
    }
}

/// A POST Object policy under construction: what a form may upload, and until when.
///
/// [`PostPolicy::sign`] always pins `q-sign-algorithm`, `q-ak`, `q-sign-time` (the key time) and the
/// config's bucket, and requires a key condition ([`PostPolicy::key`] or [`PostPolicy::key_starts_with`]).
/// Conditions appear in the policy in this order: the three pins, `bucket`, `key`, `content-length-range`,
/// `Content-Type`, `success_action_status`, `success_action_redirect`, `x-cos-meta-*`,
/// `x-cos-storage-class`, `acl`, then [`PostPolicy::field`]s in the order given.
#[derive(Clone, Debug)]
pub struct PostPolicy {
    expiration: SystemTime,
    key: Option<Match>,
    content_length_range: Option<(u64, u64)>,
    content_type: Option<Match>,
    success_action_status: Option<u16>,
    success_action_redirect: Option<String>,
    metadata: Vec<(String, Match)>,
    storage_class: Option<StorageClass>,
    acl: Option<Acl>,
    fields: Vec<(String, Match)>,
}

/// Field names with a dedicated [`PostPolicy`] method (or set by signing), refused by [`PostPolicy::field`].
const RESERVED_FIELDS: &[&str] = &[
    "key",
    "policy",
    "file",
    "bucket",
    "q-sign-algorithm",
    "q-ak",
    "q-key-time",
    "q-sign-time",
    "q-signature",
    "x-cos-security-token",
    "content-type",
    "success_action_status",
    "success_action_redirect",
    "acl",
    "x-cos-storage-class",
    "content-length-range",
];

impl PostPolicy {
    /// A policy that expires at `expiration` (rendered `YYYY-MM-DDTHH:MM:SS.000Z`, whole seconds).
    pub fn new(expiration: SystemTime) -> Self {
        PostPolicy {
            expiration,
            key: None,
            content_length_range: None,
            content_type: None,
            success_action_status: None,
            success_action_redirect: None,
            metadata: Vec::new(),
            storage_class: None,
            acl: None,
            fields: Vec::new(),
        }
    }

    /// Only this exact key may be uploaded; the form's `key` field is set to it.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(Match::Eq(key.into()));
        self
    }

    /// Any key starting with `prefix` may be uploaded (an empty prefix: any key). The form's `key` field is
    /// `<prefix>${filename}`, which COS replaces with the uploaded file's name; change it with
    /// [`PostForm::set`].
    pub fn key_starts_with(mut self, prefix: impl Into<String>) -> Self {
        self.key = Some(Match::StartsWith(prefix.into()));
        self
    }

    /// The file must be `min..=max` bytes long.
    pub fn content_length_range(mut self, min: u64, max: u64) -> Self {
        self.content_length_range = Some((min, max));
        self
    }

    /// The object's `Content-Type` is exactly this (the form carries it; COS ignores the browser's type).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(Match::Eq(content_type.into()));
        self
    }

    /// The `Content-Type` field must start with `prefix` (e.g. `image/`); the uploader sets the field.
    pub fn content_type_starts_with(mut self, prefix: impl Into<String>) -> Self {
        self.content_type = Some(Match::StartsWith(prefix.into()));
        self
    }

    /// The status COS answers a successful upload with: 200, 201 (with an XML `PostResponse`) or 204
    /// (COS's default).
    pub fn success_action_status(mut self, status: u16) -> Self {
        self.success_action_status = Some(status);
        self
    }

    /// After a successful upload COS answers 303 with `Location: <url>?bucket=…&key=…&etag=…`.
    pub fn success_action_redirect(mut self, url: impl Into<String>) -> Self {
        self.success_action_redirect = Some(url.into());
        self
    }

    /// `x-cos-meta-<name>` must equal `value` (the form carries it). All metadata together ≤ 2 KB.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), Match::Eq(value.into())));
        self
    }

    /// `x-cos-meta-<name>` must start with `prefix`; the uploader sets the field.
    pub fn metadata_starts_with(
        mut self,
        name: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        self.metadata
            .push((name.into(), Match::StartsWith(prefix.into())));
        self
    }

    /// `x-cos-storage-class`.
    pub fn storage_class(mut self, class: StorageClass) -> Self {
        self.storage_class = Some(class);
        self
    }

    /// `acl` (the object ACL).
    pub fn acl(mut self, acl: Acl) -> Self {
        self.acl = Some(acl);
        self
    }

    /// Any other form field COS accepts, exactly this value: `Cache-Control`, `Content-Disposition`,
    /// `Content-Encoding`, `Expires`, `x-cos-server-side-encryption`, `x-cos-tagging`…
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push((name.into(), Match::Eq(value.into())));
        self
    }

    /// Any other form field, starting with `prefix`; the uploader sets it.
    pub fn field_starts_with(mut self, name: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.fields
            .push((name.into(), Match::StartsWith(prefix.into())));
        self
    }

    /// Signs the policy with the config's credentials. See [`PostPolicy::sign_with`].
    pub fn sign(&self, config: &Config, now: SystemTime) -> Result<PostForm, Error> {
        self.sign_with(config, &config.credentials, now)
    }

    /// Signs the policy with `credentials` (e.g. from a [`crate::credentials::ProvideCredentials`]) for the
    /// config's bucket and endpoint.
    ///
    /// The key time runs from `now` (shifted by [`Config::clock_offset_secs`]) minus 60 s, tolerating a
    /// server clock slightly behind ours, to the expiration.
    ///
    /// Errors ([`Error::InvalidInput`], nothing signed): incomplete credentials; no key condition; an
    /// expiration not after `now`; `content-length-range` with min > max; a success status other than 200,
    /// 201, 204; a redirect that is not an `http(s)://` URL; a bad key, prefix, metadata or field name;
    /// metadata over 2 KB.
    pub fn sign_with(
        &self,
        config: &Config,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<PostForm, Error> {
        if !credentials.is_complete() {
            return Err(InvalidInput::MissingCredentials.into());
        }
        let exp = unix_secs(self.expiration);
        let now_secs = unix_secs(now);
        if exp <= now_secs {
            return Err(param(
                "expiration",
                format!(
                    "{} is not after now ({})",
                    format_iso8601(exp),
                    format_iso8601(now_secs)
                ),
            ));
        }
        let start = unix_secs(corrected(now, config.clock_offset_secs)?).saturating_sub(60);
        if start >= exp {
            return Err(param(
                "expiration",
                format!(
                    "{} is not after the server's time (clock offset {} s)",
                    format_iso8601(exp),
                    config.clock_offset_secs
                ),
            ));
        }
        let key_time = KeyTime { start, end: exp };
        let plan = self.plan()?;

        let mut conditions = vec![
            eq("q-sign-algorithm", "sha1"),
            eq("q-ak", credentials.secret_id()),
            eq("q-sign-time", &key_time.to_string()),
            eq("bucket", config.bucket.as_str()),
        ];
        conditions.extend(plan.conditions);
        let expiration = format_iso8601(exp);
        let json = to_json(&PolicyJson {
            expiration: &expiration,
            conditions: conditions.iter().map(ConditionJson).collect(),
        });

        let signature = sign_policy(credentials.secret_key(), &key_time, &json);
        let mut fields = vec![
            ("key".to_string(), plan.key_field),
            (
                "policy".to_string(),
                base64::engine::general_purpose::STANDARD.encode(json.as_bytes()),
            ),
            ("q-sign-algorithm".to_string(), "sha1".to_string()),
            ("q-ak".to_string(), credentials.secret_id().to_string()),
            ("q-key-time".to_string(), key_time.to_string()),
            ("q-signature".to_string(), signature),
        ];
        if let Some(token) = credentials.security_token() {
            fields.push(("x-cos-security-token".to_string(), token.to_string()));
        }
        fields.extend(plan.fields);
        Ok(PostForm {
            url: format!("{}://{}/", config.scheme(), config.host()),
            fields,
            starts_with: plan.starts_with,
            expiration,
            content_length_range: self.content_length_range,
            policy_json: json,
        })
    }

    /// Validates the optional conditions and turns them into policy conditions and form fields.
    fn plan(&self) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        let key_field = match &self.key {
            None => {
                return Err(param(
                    "key",
                    "a POST policy needs a key condition (key or key_starts_with)".into(),
                ))
            }
            Some(Match::Eq(key)) => {
                validate_file_key(key)?;
                if key.contains("${filename}") {
                    return Err(InvalidInput::Key {
                        key: key.chars().take(100).collect(),
                        reason:
                            "COS replaces ${filename} before checking the policy, so an exact key \
                                 condition cannot contain it: use key_starts_with",
                    }
                    .into());
                }
                key.clone()
            }
            Some(Match::StartsWith(prefix)) => {
                if !prefix.is_empty() {
                    validate_key(prefix)?;
                }
                format!("{prefix}${{filename}}")
            }
        };
        plan.add("key", self.key.as_ref().expect("checked above"), false);
        plan.key_field = key_field;
        if let Some((min, max)) = self.content_length_range {
            if min > max {
                return Err(param(
                    "content-length-range",
                    format!("min {min} is larger than max {max}"),
                ));
            }
            plan.conditions
                .push(Condition::ContentLengthRange { min, max });
        }
        if let Some(m) = &self.content_type {
            check_value("Content-Type", m)?;
            plan.add("Content-Type", m, true);
        }
        if let Some(status) = self.success_action_status {
            if !matches!(status, 200 | 201 | 204) {
                return Err(param(
                    "success_action_status",
                    format!("{status}: COS accepts 200, 201 or 204"),
                ));
            }
            plan.add(
                "success_action_status",
                &Match::Eq(status.to_string()),
                true,
            );
        }
        if let Some(url) = &self.success_action_redirect {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.parse::<http::Uri>().is_ok();
            if !ok {
                return Err(param(
                    "success_action_redirect",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
            plan.add("success_action_redirect", &Match::Eq(url.clone()), true);
        }
        let mut meta_bytes = 0;
        let mut seen: Vec<String> = Vec::new();
        for (name, m) in &self.metadata {
            let bare = name.strip_prefix("x-cos-meta-").unwrap_or(name);
            if bare.is_empty()
                || !bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(InvalidInput::MetadataName(bare.to_string()).into());
            }
            let full = format!("x-cos-meta-{}", bare.to_ascii_lowercase());
            if seen.contains(&full) {
                return Err(param("metadata", format!("{full} is given twice")));
            }
            check_value(&full, m)?;
            let value = match m {
                Match::Eq(v) | Match::StartsWith(v) => v,
            };
            meta_bytes += full.len() + value.len();
            plan.add(&full, m, true);
            seen.push(full);
        }
        if meta_bytes > MAX_METADATA_BYTES {
            return Err(InvalidInput::MetadataTooLarge(meta_bytes).into());
        }
        if let Some(class) = &self.storage_class {
            plan.add(
                "x-cos-storage-class",
                &Match::Eq(class.as_str().to_string()),
                true,
            );
        }
        if let Some(acl) = &self.acl {
            plan.add("acl", &Match::Eq(acl.as_str().to_string()), true);
        }
        let mut seen: Vec<String> = Vec::new();
        for (name, m) in &self.fields {
            let lower = name.to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'$' | b'\\'));
            if !valid {
                return Err(param(
                    "field",
                    format!("{name:?} is not a valid form field name"),
                ));
            }
            if RESERVED_FIELDS.contains(&lower.as_str()) || lower.starts_with("x-cos-meta-") {
                return Err(param(
                    "field",
                    format!("{name} has its own PostPolicy method or is set by signing"),
                ));
            }
            if seen.contains(&lower) {
                return Err(param("field", format!("{name} is given twice")));
            }
            check_value(name, m)?;
            plan.add(name, m, true);
            seen.push(lower);
        }
        Ok(plan)
    }
}

#[derive(Default)]
struct Plan {
    conditions: Vec<Condition>,
    fields: Vec<(String, String)>,
    starts_with: Vec<(String, String)>,
    key_field: String,
}

impl Plan {
    fn add(&mut self, name: &str, m: &Match, as_field: bool) {
        match m {
            Match::Eq(v) => {
                self.conditions.push(eq(name, v));
                if as_field {
                    self.fields.push((name.to_string(), v.clone()));
                }
            }
            Match::StartsWith(p) => {
                self.conditions.push(Condition::StartsWith {
                    field: name.to_string(),
                    prefix: p.clone(),
                });
                if as_field {
                    self.starts_with.push((name.to_string(), p.clone()));
                }
            }
        }
    }
}

fn eq(field: &str, value: &str) -> Condition {
    Condition::Eq {
        field: field.to_string(),
        value: value.to_string(),
    }
}

fn param(name: &'static str, reason: String) -> Error {
    InvalidInput::Parameter { name, reason }.into()
}

fn check_value(name: &str, m: &Match) -> Result<(), Error> {
    let v = match m {
        Match::Eq(v) | Match::StartsWith(v) => v,
    };
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(InvalidInput::HeaderValue(name.to_string()).into());
    }
    Ok(())
}

/// `q-signature` of a policy: `hex(HMAC-SHA1(SignKey, hex(SHA1(policy_json))))` with
/// `SignKey = hex(HMAC-SHA1(secret_key, key_time))`.
///
/// ```
/// use cos_core::{auth::KeyTime, post_policy::sign_policy};
/// let sig = sign_policy("secret", &KeyTime { start: 1, end: 2 }, r#"{"expiration":"1970-01-01T00:00:02.000Z","conditions":[]}"#);
/// assert_eq!(sig.len(), 40);
/// ```
pub fn sign_policy(secret_key: &str, key_time: &KeyTime, policy_json: &str) -> String {
    let string_to_sign = hex(&Sha1::digest(policy_json.as_bytes()));
    let key = sign_key(secret_key, key_time);
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A signed POST form: the action URL and the fields, in the order they are sent.
///
/// Field order: `key`, `policy`, `q-sign-algorithm`, `q-ak`, `q-key-time`, `q-signature`,
/// `x-cos-security-token` (temporary credentials only), then the exact-match fields in the policy's order
/// (`Content-Type`, `success_action_status`, `success_action_redirect`, `x-cos-meta-*`,
/// `x-cos-storage-class`, `acl`, other fields). The `file` field is not among them: it must come last, after
/// any field set with [`PostForm::set`].
///
/// Serialised (serde) as
/// `{"url": "...", "fields": [["key", "..."], ["policy", "..."], ...], "starts_with": [["Content-Type", "image/"]],
/// "expiration": "2026-01-01T00:00:00.000Z", "content_length_range": [min, max]}`:
/// `fields` is an ordered list of `[name, value]` pairs (append them to a `FormData` in this order, then
/// the file); `starts_with` lists the fields the uploader must add, each with the prefix its value must
/// start with; `content_length_range` is absent when the policy has none. The serialised form contains the
/// signature and, for temporary credentials, the security token: hand it only to the intended uploader.
/// `Debug` redacts both.
#[derive(Clone, Serialize)]
pub struct PostForm {
    url: String,
    fields: Vec<(String, String)>,
    starts_with: Vec<(String, String)>,
    expiration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_length_range: Option<(u64, u64)>,
    #[serde(skip)]
    policy_json: String,
}

impl PostForm {
    /// The form's action URL: `scheme://host/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The fields, in order, without the file.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// A field's value (names compare case-insensitively).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a field: replaces its value in place, or appends it. Use it for the `starts-with` fields
    /// ([`PostForm::starts_with`]) and to choose the key under a key prefix. Changing a field the policy
    /// pins exactly makes COS refuse the upload.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (name, value) = (name.into(), value.into());
        match self
            .fields
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
        self
    }

    /// Fields the uploader must set, each with the prefix its value must start with.
    pub fn starts_with(&self) -> &[(String, String)] {
        &self.starts_with
    }

    /// The policy's expiration, `YYYY-MM-DDTHH:MM:SS.000Z`.
    pub fn expiration(&self) -> &str {
        &self.expiration
    }

    /// The policy's `content-length-range`, if any.
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.content_length_range
    }

    /// The policy JSON text that was signed (the `policy` field is its base64).
    pub fn policy_json(&self) -> &str {
        &self.policy_json
    }

    /// A multipart boundary derived from a seed (the core has no randomness of its own: pass a random
    /// number). The boundary must not occur in the file; 128 random bits make that vanishingly unlikely.
    pub fn boundary(seed: u128) -> String {
        format!("----cos-rs-{seed:032x}")
    }

    /// The `Content-Type` header of a body framed with `boundary`.
    pub fn multipart_content_type(boundary: &str) -> String {
        format!("multipart/form-data; boundary={boundary}")
    }

    /// The bytes before the file content: every field as a part, then the `file` part's header
    /// (`Content-Disposition: form-data; name="file"; filename="…"`, `Content-Type: …`, blank line).
    ///
    /// In the file name `"`, CR and LF are written `%22`, `%0D`, `%0A` (as browsers do). Errors: an invalid
    /// boundary (1..=70 characters of `A-Z a-z 0-9 '()+_,-./:=?`), an empty file name, a content type with
    /// control characters, a field name with `"` or control characters, or a value containing the
    /// boundary.
    pub fn multipart_head(
        &self,
        boundary: &str,
        filename: &str,
        content_type: &str,
    ) -> Result<Bytes, Error> {
        validate_boundary(boundary)?;
        if filename.is_empty() {
            return Err(param("filename", "the file part needs a file name".into()));
        }
        if content_type.is_empty() || content_type.chars().any(|c| c.is_control()) {
            return Err(InvalidInput::HeaderValue("file Content-Type".into()).into());
        }
        let delimiter = format!("--{boundary}");
        let mut out = BytesMut::with_capacity(512);
        for (name, value) in &self.fields {
            if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
                return Err(param(
                    "field",
                    format!("{name:?} is not a valid form field name"),
                ));
            }
            if value.contains(&delimiter) {
                return Err(param(
                    "boundary",
                    format!("the boundary occurs in field {name}"),
                ));
            }
            out.put_slice(delimiter.as_bytes());
            out.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
            out.put_slice(name.as_bytes());
            out.put_slice(b"\"\r\n\r\n");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        let filename = filename
            .replace('"', "%22")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        if filename.contains(&delimiter) {
            return Err(param(
                "boundary",
                "the boundary occurs in the file name".into(),
            ));
        }
        out.put_slice(delimiter.as_bytes());
        out.put_slice(b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"");
        out.put_slice(filename.as_bytes());
        out.put_slice(b"\"\r\nContent-Type: ");
        out.put_slice(content_type.as_bytes());
        out.put_slice(b"\r\n\r\n");
        Ok(out.freeze())
    }

    /// The bytes after the file content: `\r\n--<boundary>--\r\n`.
    pub fn multipart_tail(&self, boundary: &str) -> Bytes {
        Bytes::from(format!("\r\n--{boundary}--\r\n"))
    }
}

impl fmt::Debug for PostForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(n, v)| {
                let secret = n.eq_ignore_ascii_case("q-signature")
                    || n.eq_ignore_ascii_case("x-cos-security-token");
                (n.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("PostForm")
            .field("url", &self.url)
            .field("fields", &fields)
            .field("starts_with", &self.starts_with)
            .field("expiration", &self.expiration)
            .field("content_length_range", &self.content_length_range)
            .finish()
    }
}

fn validate_boundary(b: &str) -> Result<(), Error> {
    let ok = (1..=70).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(param(
            "boundary",
            format!("{b:?}: 1..=70 characters of A-Z a-z 0-9 '()+_,-./:=?"),
        ))
    }
}

/// A POST Object upload of one file with a signed [`PostForm`]: the request head, the multipart framing
/// around the file, and the response parser.
///
/// The driver sends [`PostObject::request`]'s head with the body `head() ++ file ++ tail()`, feeding the
/// file bytes (only) to a [`crate::checksum::BodyDigest`], and hands the response and digest to
/// [`PostObject::parse_response`]. POST Object carries its authorisation in the form: the request is not
/// signed again.
#[derive(Clone, Debug)]
pub struct PostObject {
    form: PostForm,
    boundary: String,
    head: Bytes,
}

impl PostObject {
    /// Frames `form` and the file part (`filename`, `content_type`) with `boundary`.
    ///
    /// Besides [`PostForm::multipart_head`]'s errors: every [`PostForm::starts_with`] field must have been
    /// set with a value that starts with its prefix, and a `key` with `${filename}` needs a file name.
    pub fn new(
        form: PostForm,
        boundary: impl Into<String>,
        filename: &str,
        content_type: &str,
    ) -> Result<PostObject, Error> {
        let boundary = boundary.into();
        for (name, prefix) in &form.starts_with {
            match form.field(name) {
                Some(v) if v.starts_with(prefix.as_str()) => {}
                Some(v) => {
                    return Err(param(
                        "form field",
                        format!("{name} is {v:?}, which does not start with {prefix:?} as the policy requires"),
                    ))
                }
                None if prefix.is_empty() => {}
                None => {
                    return Err(param(
                        "form field",
                        format!("{name} must be set (starting with {prefix:?}) with PostForm::set"),
                    ))
                }
            }
        }
        let head = form.multipart_head(&boundary, filename, content_type)?;
        Ok(PostObject {
            form,
            boundary,
            head,
        })
    }

    /// The signed form.
    pub fn form(&self) -> &PostForm {
        &self.form
    }

    /// The multipart boundary.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The body bytes before the file.
    pub fn head(&self) -> &Bytes {
        &self.head
    }

    /// The body bytes after the file.
    pub fn tail(&self) -> Bytes {
        self.form.multipart_tail(&self.boundary)
    }

    /// The whole body's length for a file of `file_len` bytes.
    pub fn content_length(&self, file_len: u64) -> u64 {
        self.head.len() as u64 + file_len + self.tail().len() as u64
    }

    /// The request head: `POST <form url>` with `Host`, `Content-Type: multipart/form-data; boundary=…` and
    /// `Content-Length`. Errors when `file_len` exceeds 5 GB or the policy's `content-length-range`.
    pub fn request(&self, file_len: u64) -> Result<http::Request<()>, Error> {
        self.request_with(file_len, ())
    }

    /// The whole request with the file given as bytes (small files, tests, servers replaying a form).
    pub fn request_with_bytes(&self, file: &[u8]) -> Result<http::Request<Bytes>, Error> {
        let mut body = BytesMut::with_capacity(self.content_length(file.len() as u64) as usize);
        body.put_slice(&self.head);
        body.put_slice(file);
        body.put_slice(&self.tail());
        self.request_with(file.len() as u64, body.freeze())
    }

    fn request_with<B>(&self, file_len: u64, body: B) -> Result<http::Request<B>, Error> {
        if file_len > MAX_POST_SIZE {
            return Err(InvalidInput::Size {
                what: "POST Object file",
                size: file_len,
                limit: "a POST Object takes at most 5 GB; use a multipart upload",
            }
            .into());
        }
        if let Some((min, max)) = self.form.content_length_range {
            if !(min..=max).contains(&file_len) {
                return Err(InvalidInput::Size {
                    what: "POST Object file",
                    size: file_len,
                    limit: "outside the policy's content-length-range",
                }
                .into());
            }
        }
        let uri: http::Uri = self
            .form
            .url
            .parse()
            .map_err(|_| Error::InvalidInput(InvalidInput::Uri(self.form.url.clone())))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .header(http::header::HOST, ops::header_value("host", &host)?)
            .header(
                http::header::CONTENT_TYPE,
                ops::header_value(
                    "content-type",
                    &PostForm::multipart_content_type(&self.boundary),
                )?,
            )
            .header(http::header::CONTENT_LENGTH, self.content_length(file_len))
            .body(body)
            .map_err(|e| Error::InvalidInput(InvalidInput::Uri(e.to_string())))
    }

    /// Interprets COS's answer: 204 or 200 (empty body, `ETag` and `Location` headers), 201 (an XML
    /// `PostResponse` {Location, Bucket, Key, ETag}), or, when the form has `success_action_redirect`, a
    /// 3xx whose `Location` carries `bucket`, `key` and `etag` parameters. Anything else is the error it
    /// stands for ([`ops::error_from_response`]); an `<Error>` body is an error whatever the status.
    ///
    /// `sent` is the digest of the file bytes: the ETag (when it is an MD5) and `x-cos-hash-crc64ecma`
    /// are checked against it.
    pub fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        sent: Option<&SentDigest>,
    ) -> Result<PostObjectOutput, Error> {
        let status = response.status().as_u16();
        let mut out = PostObjectOutput {
            status,
            etag: ops::header(response, "etag"),
            location: ops::header(response, "location"),
            bucket: None,
            key: None,
            crc64: ops::crc64_header(response),
            version_id: ops::version_id(response),
            request_id: ops::request_id(response),
        };
        if response.status().is_redirection()
            && self.form.field("success_action_redirect").is_some()
        {
            let loc = out
                .location
                .clone()
                .ok_or_else(|| ops::unexpected(response, "a redirect without Location"))?;
            let query = loc.split_once('?').map(|(_, q)| q).unwrap_or("");
            for (k, v) in auth::parse_query(query).unwrap_or_default() {
                match k.as_str() {
                    "bucket" => out.bucket = Some(v),
                    "key" => out.key = Some(v),
                    "etag" => out.etag = Some(v),
                    _ => {}
                }
            }
        } else if response.body().iter().all(u8::is_ascii_whitespace) {
            ops::expect_success(response)?;
        } else {
            let x: PostResponseXml = ops::parse_xml(response, "PostResponse")?;
            out.location = x.location.or(out.location);
            out.bucket = x.bucket;
            out.key = x.key;
            out.etag = x.etag.or(out.etag);
        }
        if let Some(etag) = &out.etag {
            ops::check_etag(None, etag, sent)?;
        }
        ops::check_crc64(None, out.crc64, sent.map(|d| d.crc64))?;
        Ok(out)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PostResponseXml {
    #[serde(rename = "Location")]
    location: Option<String>,
    #[serde(rename = "Bucket")]
    bucket: Option<String>,
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "ETag")]
    etag: Option<String>,
}

/// What a successful POST Object returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostObjectOutput {
    /// The status COS answered with (200, 201, 204, or 3xx for a redirect).
    pub status: u16,
    /// `ETag` (header, `PostResponse` or redirect parameter), quoted as COS sends it.
    pub etag: Option<String>,
    /// `Location`: the object's URL, or the redirect target.
    pub location: Option<String>,
    /// The bucket, from a `PostResponse` or redirect.
    pub bucket: Option<String>,
    /// The key the object was stored under (after `${filename}`), from a `PostResponse` or redirect.
    pub key: Option<String>,
    /// `x-cos-hash-crc64ecma`.
    pub crc64: Option<u64>,
    /// `x-cos-version-id`, when the bucket is versioned.
    pub version_id: Option<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Time and JSON helpers.
// ---------------------------------------------------------------------------------------------------------

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub use crate::date::{format_iso8601, parse_iso8601};

#[cfg(test)]
mod tests;
