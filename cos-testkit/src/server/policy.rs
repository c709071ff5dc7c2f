//! The server side of POST Object: parse and verify a received form.
//!
//! Only a server needs these, so they live in the test server rather than in cos-core: [`verify_form`]
//! checks a received form (signature, key time, expiration and every condition) and returns typed
//! [`PolicyViolation`]s; [`parse_policy_json`], [`ParsedPolicy::check_conditions`] and
//! [`parse_multipart`] are its pure building blocks; [`post_response_xml`] and [`redirect_location`] shape
//! the answer. The client side (building and signing a policy, parsing the answer) stays in
//! [`cos_core::post_policy`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use sha1::{Digest as _, Sha1};

use cos_core::auth::{self, KeyTime};
use cos_core::checksum::hex;
use cos_core::config::validate_key;
use cos_core::error::InvalidInput;
use cos_core::post_policy::{parse_iso8601, sign_policy, Condition};
use cos_core::Credentials;

/// The longest key COS accepts, in bytes.
const MAX_KEY_BYTES: usize = 850;

/// Why a POST form is refused. [`PolicyViolation::status`] and [`PolicyViolation::code`] give the answer a
/// COS-compatible server sends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The body is not a well-formed `multipart/form-data` body (or has no `file` part).
    MalformedForm(String),
    /// A required form field is absent: `key`, `policy`, `q-sign-algorithm`, `q-ak`, `q-key-time` or
    /// `q-signature`.
    MissingField(&'static str),
    /// A field appears more than once (names compare case-insensitively).
    DuplicateField(String),
    /// `q-sign-algorithm` is not `sha1`.
    UnsupportedAlgorithm(String),
    /// `q-key-time` is not `<start>;<end>` with `start <= end`.
    MalformedKeyTime(String),
    /// The `policy` field is not base64 of UTF-8 text.
    PolicyNotBase64,
    /// The policy text is not a policy document (not JSON, no `expiration`, an unknown operator…).
    MalformedPolicy(String),
    /// The policy does not constrain a required field: `q-sign-algorithm`, `q-ak` or `q-sign-time` (each
    /// needs an exact condition), `bucket` or `key` (exact or `starts-with`).
    MissingCondition(&'static str),
    /// `q-ak` names no known credentials.
    UnknownSecretId(String),
    /// The credentials of `q-ak` are temporary and `x-cos-security-token` is missing or different.
    InvalidSecurityToken,
    /// `q-signature` is not the signature of the policy with the key time and the secret of `q-ak`.
    SignatureMismatch {
        /// What the server signed: `hex(SHA1(policy JSON text))`.
        string_to_sign: String,
    },
    /// The request time is outside `q-key-time`.
    KeyTimeNotValid {
        /// `q-key-time` as sent.
        key_time: String,
    },
    /// The policy's expiration has passed.
    Expired {
        /// The policy's `expiration`.
        expiration: String,
    },
    /// A form field fails a policy condition.
    ConditionFailed {
        /// The field (as named in the condition).
        field: String,
        /// The condition, as policy JSON.
        condition: String,
        /// The value received, `None` when the field is absent.
        actual: Option<String>,
    },
    /// The file length is outside the policy's `content-length-range`.
    ContentLength {
        /// The file length.
        len: u64,
        /// Smallest length allowed.
        min: u64,
        /// Largest length allowed.
        max: u64,
    },
    /// `success_action_status` is not 200, 201 or 204.
    InvalidSuccessActionStatus(String),
    /// The key, after `${filename}` is replaced, is longer than 850 bytes.
    KeyTooLong(usize),
    /// The key, after `${filename}` is replaced, is not a usable key.
    InvalidKey {
        /// The key (cut to 100 characters).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl PolicyViolation {
    /// The HTTP status a COS-compatible server answers with.
    pub fn status(&self) -> u16 {
        match self {
            PolicyViolation::UnknownSecretId(_)
            | PolicyViolation::InvalidSecurityToken
            | PolicyViolation::SignatureMismatch { .. }
            | PolicyViolation::KeyTimeNotValid { .. }
            | PolicyViolation::Expired { .. }
            | PolicyViolation::ConditionFailed { .. } => 403,
            _ => 400,
        }
    }

    /// The COS error code a COS-compatible server answers with.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyViolation::MalformedForm(_) => "MalformedPOSTRequest",
            PolicyViolation::MissingField(_)
            | PolicyViolation::DuplicateField(_)
            | PolicyViolation::UnsupportedAlgorithm(_)
            | PolicyViolation::MalformedKeyTime(_)
            | PolicyViolation::InvalidSuccessActionStatus(_) => "InvalidArgument",
            PolicyViolation::PolicyNotBase64
            | PolicyViolation::MalformedPolicy(_)
            | PolicyViolation::MissingCondition(_) => "InvalidPolicyDocument",
            PolicyViolation::UnknownSecretId(_) => "InvalidAccessKeyId",
            PolicyViolation::SignatureMismatch { .. } => "SignatureDoesNotMatch",
            PolicyViolation::InvalidSecurityToken
            | PolicyViolation::KeyTimeNotValid { .. }
            | PolicyViolation::Expired { .. }
            | PolicyViolation::ConditionFailed { .. } => "AccessDenied",
            PolicyViolation::ContentLength { len, max, .. } if len > max => "EntityTooLarge",
            PolicyViolation::ContentLength { .. } => "EntityTooSmall",
            PolicyViolation::KeyTooLong(_) => "KeyTooLong",
            PolicyViolation::InvalidKey { .. } => "InvalidArgument",
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyViolation::MalformedForm(r) => {
                write!(f, "malformed multipart/form-data body: {r}")
            }
            PolicyViolation::MissingField(n) => write!(f, "form field {n} is required"),
            PolicyViolation::DuplicateField(n) => {
                write!(f, "form field {n} appears more than once")
            }
            PolicyViolation::UnsupportedAlgorithm(a) => {
                write!(f, "q-sign-algorithm {a:?}: only sha1 is supported")
            }
            PolicyViolation::MalformedKeyTime(k) => {
                write!(f, "q-key-time {k:?}: expected <start>;<end>")
            }
            PolicyViolation::PolicyNotBase64 => {
                f.write_str("the policy field is not base64 of UTF-8 text")
            }
            PolicyViolation::MalformedPolicy(r) => write!(f, "invalid policy document: {r}"),
            PolicyViolation::MissingCondition(n) => {
                write!(f, "the policy must have a condition on {n}")
            }
            PolicyViolation::UnknownSecretId(id) => write!(f, "unknown SecretId {id:?}"),
            PolicyViolation::InvalidSecurityToken => f.write_str(
                "x-cos-security-token is missing or does not match the temporary credentials",
            ),
            PolicyViolation::SignatureMismatch { string_to_sign } => write!(
                f,
                "q-signature does not match the policy (StringToSign {string_to_sign})"
            ),
            PolicyViolation::KeyTimeNotValid { key_time } => {
                write!(f, "request time is outside q-key-time {key_time}")
            }
            PolicyViolation::Expired { expiration } => write!(f, "policy expired at {expiration}"),
            PolicyViolation::ConditionFailed {
                field,
                condition,
                actual,
            } => match actual {
                Some(v) => write!(
                    f,
                    "form field {field} = {v:?} fails policy condition {condition}"
                ),
                None => write!(
                    f,
                    "form field {field} is absent but policy condition {condition} needs it"
                ),
            },
            PolicyViolation::ContentLength { len, min, max } => {
                write!(
                    f,
                    "file length {len} is outside content-length-range {min}..={max}"
                )
            }
            PolicyViolation::InvalidSuccessActionStatus(s) => {
                write!(f, "success_action_status {s:?}: expected 200, 201 or 204")
            }
            PolicyViolation::KeyTooLong(n) => {
                write!(f, "key is {n} bytes: COS accepts at most 850")
            }
            PolicyViolation::InvalidKey { key, reason } => write!(f, "key {key:?}: {reason}"),
        }
    }
}

impl std::error::Error for PolicyViolation {}

/// A parsed policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPolicy {
    /// `expiration` as written.
    pub expiration: String,
    /// `expiration` in milliseconds since the Unix epoch.
    pub expiration_ms: u64,
    /// The conditions, in order.
    pub conditions: Vec<Condition>,
}

/// Parses policy JSON text: an object with `expiration` (ISO-8601 UTC, `YYYY-MM-DDTHH:MM:SS[.fff]Z`) and
/// `conditions`, an array of `{"field": "value", …}` objects (each member an exact match),
/// `["eq", "$field", "value"]`, `["starts-with", "$field", "prefix"]` and
/// `["content-length-range", min, max]`. Operators compare case-insensitively, the `$` is optional,
/// numbers are accepted where strings are (and numeric strings in `content-length-range`); other
/// top-level members are ignored.
///
/// ```
/// use cos_core::post_policy::Condition;
/// use cos_testkit::policy::parse_policy_json;
/// let p = parse_policy_json(r#"{"expiration": "2030-01-01T00:00:00.000Z",
///     "conditions": [{"bucket": "b-1"}, ["starts-with", "$key", "a/"], ["content-length-range", 0, 10]]}"#)?;
/// assert_eq!(p.expiration_ms, 1_893_456_000_000);
/// assert_eq!(p.conditions[2], Condition::ContentLengthRange { min: 0, max: 10 });
/// # Ok::<(), cos_testkit::policy::PolicyViolation>(())
/// ```
pub fn parse_policy_json(text: &str) -> Result<ParsedPolicy, PolicyViolation> {
    let bad = |r: &str| PolicyViolation::MalformedPolicy(r.to_string());
    let doc = json::parse(text)
        .map_err(|e| PolicyViolation::MalformedPolicy(format!("not JSON: {e}")))?;
    let json::Value::Object(members) = doc else {
        return Err(bad("the policy is not a JSON object"));
    };
    let get = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let expiration = match get("expiration") {
        Some(json::Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("expiration is not a string")),
        None => return Err(bad("expiration is missing")),
    };
    let expiration_ms = parse_iso8601(&expiration).ok_or_else(|| {
        PolicyViolation::MalformedPolicy(format!("expiration {expiration:?} is not ISO-8601 UTC"))
    })?;
    let items = match get("conditions") {
        Some(json::Value::Array(items)) => items,
        Some(_) => return Err(bad("conditions is not an array")),
        None => return Err(bad("conditions is missing")),
    };
    let mut conditions = Vec::new();
    for item in items {
        match item {
            json::Value::Object(m) => {
                for (field, v) in m {
                    let value = v.as_text().ok_or_else(|| {
                        PolicyViolation::MalformedPolicy(format!(
                            "condition {field}: value is not a string"
                        ))
                    })?;
                    conditions.push(Condition::Eq {
                        field: field.trim_start_matches('$').to_string(),
                        value,
                    });
                }
            }
            json::Value::Array(a) => {
                let op = match a.first() {
                    Some(json::Value::String(s)) => s.to_ascii_lowercase(),
                    _ => return Err(bad("a condition array must start with an operator")),
                };
                if a.len() != 3 {
                    return Err(PolicyViolation::MalformedPolicy(format!(
                        "condition {op}: expected 3 elements"
                    )));
                }
                match op.as_str() {
                    "eq" | "starts-with" => {
                        let field = match &a[1] {
                            json::Value::String(s) => s.trim_start_matches('$').to_string(),
                            _ => {
                                return Err(PolicyViolation::MalformedPolicy(format!(
                                    "condition {op}: field is not a string"
                                )))
                            }
                        };
                        let value = a[2].as_text().ok_or_else(|| {
                            PolicyViolation::MalformedPolicy(format!(
                                "condition {op} {field}: value is not a string"
                            ))
                        })?;
                        conditions.push(if op == "eq" {
                            Condition::Eq { field, value }
                        } else {
                            Condition::StartsWith {
                                field,
                                prefix: value,
                            }
                        });
                    }
                    "content-length-range" => {
                        let num = |v: &json::Value| {
                            v.as_text().and_then(|t| t.trim().parse::<u64>().ok())
                        };
                        let (Some(min), Some(max)) = (num(&a[1]), num(&a[2])) else {
                            return Err(bad(
                                "content-length-range bounds must be non-negative integers",
                            ));
                        };
                        if min > max {
                            return Err(bad("content-length-range min is larger than max"));
                        }
                        conditions.push(Condition::ContentLengthRange { min, max });
                    }
                    other => {
                        return Err(PolicyViolation::MalformedPolicy(format!(
                            "unsupported condition operator {other:?}"
                        )))
                    }
                }
            }
            _ => return Err(bad("a condition must be an object or an array")),
        }
    }
    Ok(ParsedPolicy {
        expiration,
        expiration_ms,
        conditions,
    })
}

/// A received POST form, as a server sees it after parsing the body.
#[derive(Clone, Copy, Debug)]
pub struct FormSubmission<'a> {
    /// The non-file fields, in the order received, names as sent.
    pub fields: &'a [(String, String)],
    /// The `filename` of the file part (replaces `${filename}` in the key).
    pub filename: &'a str,
    /// The file length in bytes.
    pub file_len: u64,
    /// The bucket the request is addressed to (checked against the `bucket` condition).
    pub bucket: &'a str,
}

impl FormSubmission<'_> {
    /// A field's value, names compared case-insensitively (the first, if repeated).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl ParsedPolicy {
    /// True when the policy has expired at `now` (after its expiration instant).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        now_ms > u128::from(self.expiration_ms)
    }

    /// Checks every condition against the form, with `key` the object key after `${filename}` is
    /// replaced; also that `q-sign-algorithm`, `q-ak` and `q-sign-time` are pinned exactly and that `bucket`
    /// and `key` have a condition (exact or `starts-with`), as the COS protocol requires.
    ///
    /// Field names compare case-insensitively. `bucket` is checked against [`FormSubmission::bucket`],
    /// `key` against `key`, `q-sign-time` against the form's `q-sign-time` or, when absent, `q-key-time`;
    /// every other field against the form field of that name. An exact condition needs the field present
    /// and equal; a `starts-with` needs it present and prefixed (an empty prefix also admits an absent
    /// field). Form fields without a condition are accepted, as COS does.
    pub fn check_conditions(
        &self,
        form: &FormSubmission<'_>,
        key: &str,
    ) -> Result<(), PolicyViolation> {
        for pinned in ["q-sign-algorithm", "q-ak", "q-sign-time"] {
            let present = self.conditions.iter().any(
                |c| matches!(c, Condition::Eq { field, .. } if field.eq_ignore_ascii_case(pinned)),
            );
            if !present {
                return Err(PolicyViolation::MissingCondition(pinned));
            }
        }
        for constrained in ["bucket", "key"] {
            let present = self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                    field.eq_ignore_ascii_case(constrained)
                }
                _ => false,
            });
            if !present {
                return Err(PolicyViolation::MissingCondition(constrained));
            }
        }
        let value_of = |field: &str| -> Option<String> {
            let lower = field.to_ascii_lowercase();
            match lower.as_str() {
                "bucket" => Some(form.bucket.to_string()),
                "key" => Some(key.to_string()),
                "q-sign-time" => form
                    .field("q-sign-time")
                    .or_else(|| form.field("q-key-time"))
                    .map(str::to_string),
                _ => form.field(field).map(str::to_string),
            }
        };
        for c in &self.conditions {
            let ok = match c {
                Condition::ContentLengthRange { min, max } => {
                    if !(*min..=*max).contains(&form.file_len) {
                        return Err(PolicyViolation::ContentLength {
                            len: form.file_len,
                            min: *min,
                            max: *max,
                        });
                    }
                    continue;
                }
                Condition::Eq { field, value } => {
                    value_of(field).as_deref() == Some(value.as_str())
                }
                Condition::StartsWith { field, prefix } => {
                    prefix.is_empty()
                        || value_of(field).is_some_and(|v| v.starts_with(prefix.as_str()))
                }
                // parse_policy_json makes no other kind.
                _ => continue,
            };
            if !ok {
                let field = match c {
                    Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                        field.clone()
                    }
                    _ => unreachable!("handled above"),
                };
                return Err(PolicyViolation::ConditionFailed {
                    actual: value_of(&field),
                    field,
                    condition: c.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// A form that passed [`verify_form`]: what the server needs to store the object and answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPost {
    /// The object key, with `${filename}` replaced by the file name.
    pub key: String,
    /// `q-ak`.
    pub secret_id: String,
    /// The policy.
    pub policy: ParsedPolicy,
    /// The status to answer with: `success_action_status`, 204 by default.
    pub success_action_status: u16,
    /// `success_action_redirect`, if given: answer 303 with [`redirect_location`].
    pub success_action_redirect: Option<String>,
    /// The object headers the form sets, names lower-cased: `cache-control`, `content-type`,
    /// `content-disposition`, `content-encoding`, `expires`, every `x-cos-*` field except
    /// `x-cos-security-token`, and `acl` as `x-cos-acl`.
    pub object_headers: Vec<(String, String)>,
}

/// Verifies a received POST form at `now`; `lookup` maps a SecretId (`q-ak`) to its credentials.
///
/// Order of checks (the first failure is returned): no duplicate fields; required fields (`key`, `policy`,
/// `q-sign-algorithm`, `q-ak`, `q-key-time`, `q-signature`); algorithm `sha1`; key time syntax; policy
/// base64 and JSON; known SecretId; security token (when the credentials have one); signature; `now` within
/// `q-key-time`; expiration; `success_action_status`; the key (after `${filename}`); then
/// [`ParsedPolicy::check_conditions`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cos_core::post_policy::PostPolicy;
/// use cos_testkit::policy::{verify_form, FormSubmission};
/// use cos_core::{Config, Credentials};
/// let creds = Credentials::new("AKID", "KEY");
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", creds.clone())?;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let form = PostPolicy::new(now + Duration::from_secs(60)).key_starts_with("in/").sign(&config, now)?;
/// let ok = verify_form(
///     &FormSubmission { fields: form.fields(), filename: "a.txt", file_len: 3, bucket: "examplebucket-1250000000" },
///     now + Duration::from_secs(5),
///     |id| (id == "AKID").then(|| creds.clone()),
/// ).unwrap();
/// assert_eq!((ok.key.as_str(), ok.success_action_status), ("in/a.txt", 204));
/// # Ok::<(), cos_core::Error>(())
/// ```
pub fn verify_form(
    form: &FormSubmission<'_>,
    now: SystemTime,
    lookup: impl FnOnce(&str) -> Option<Credentials>,
) -> Result<VerifiedPost, PolicyViolation> {
    for (i, (name, _)) in form.fields.iter().enumerate() {
        if form.fields[..i]
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Err(PolicyViolation::DuplicateField(name.clone()));
        }
    }
    let required = |name: &'static str| form.field(name).ok_or(PolicyViolation::MissingField(name));
    let key_template = required("key")?;
    let policy_b64 = required("policy")?;
    let algorithm = required("q-sign-algorithm")?;
    let secret_id = required("q-ak")?;
    let key_time_text = required("q-key-time")?;
    let signature = required("q-signature")?;
    if !algorithm.eq_ignore_ascii_case("sha1") {
        return Err(PolicyViolation::UnsupportedAlgorithm(algorithm.to_string()));
    }
    let key_time = KeyTime::parse(key_time_text)
        .filter(|k| k.start <= k.end)
        .ok_or_else(|| PolicyViolation::MalformedKeyTime(key_time_text.to_string()))?;
    let compact: String = policy_b64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let policy_text = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(PolicyViolation::PolicyNotBase64)?;
    let policy = parse_policy_json(&policy_text)?;
    let creds =
        lookup(secret_id).ok_or_else(|| PolicyViolation::UnknownSecretId(secret_id.to_string()))?;
    if let Some(token) = creds.security_token() {
        if form.field("x-cos-security-token") != Some(token) {
            return Err(PolicyViolation::InvalidSecurityToken);
        }
    }
    let expected = sign_policy(creds.secret_key(), &key_time, &policy_text);
    if !constant_time_eq(
        expected.as_bytes(),
        signature.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(PolicyViolation::SignatureMismatch {
            string_to_sign: hex(&Sha1::digest(policy_text.as_bytes())),
        });
    }
    if !key_time.contains(now) {
        return Err(PolicyViolation::KeyTimeNotValid {
            key_time: key_time_text.to_string(),
        });
    }
    if policy.is_expired(now) {
        return Err(PolicyViolation::Expired {
            expiration: policy.expiration.clone(),
        });
    }
    let success_action_status = match form.field("success_action_status") {
        None => 204,
        Some(s) => match s.trim().parse::<u16>() {
            Ok(n @ (200 | 201 | 204)) => n,
            _ => return Err(PolicyViolation::InvalidSuccessActionStatus(s.to_string())),
        },
    };
    let key = key_template.replace("${filename}", form.filename);
    if key.len() > MAX_KEY_BYTES {
        return Err(PolicyViolation::KeyTooLong(key.len()));
    }
    validate_key(&key).map_err(|e| PolicyViolation::InvalidKey {
        key: key.chars().take(100).collect(),
        reason: match e {
            InvalidInput::Key { reason, .. } => reason,
            _ => "is not a valid key",
        },
    })?;
    policy.check_conditions(form, &key)?;
    let object_headers = form
        .fields
        .iter()
        .filter_map(|(n, v)| {
            let n = n.to_ascii_lowercase();
            let keep = matches!(
                n.as_str(),
                "cache-control"
                    | "content-type"
                    | "content-disposition"
                    | "content-encoding"
                    | "expires"
            ) || (n.starts_with("x-cos-") && n != "x-cos-security-token");
            if n == "acl" {
                Some(("x-cos-acl".to_string(), v.clone()))
            } else {
                keep.then(|| (n, v.clone()))
            }
        })
        .collect();
    Ok(VerifiedPost {
        key,
        secret_id: secret_id.to_string(),
        policy,
        success_action_status,
        success_action_redirect: form.field("success_action_redirect").map(str::to_string),
        object_headers,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Location` of a 303 answer to a form with `success_action_redirect`: the URL with `bucket`, `key`
/// and `etag` query parameters appended (percent-encoded).
///
/// ```
/// let loc = cos_testkit::policy::redirect_location("https://a.example/done?x=1", "b-1", "k 1", "\"e\"");
/// assert_eq!(loc, "https://a.example/done?x=1&bucket=b-1&key=k%201&etag=%22e%22");
/// ```
pub fn redirect_location(redirect: &str, bucket: &str, key: &str, etag: &str) -> String {
    let sep = if redirect.contains('?') { '&' } else { '?' };
    format!(
        "{redirect}{sep}bucket={}&key={}&etag={}",
        auth::encode(bucket),
        auth::encode(key),
        auth::encode(etag)
    )
}

/// The XML body of a 201 answer: `<PostResponse>` with `Location`, `Bucket`, `Key` and `ETag`.
pub fn post_response_xml(location: &str, bucket: &str, key: &str, etag: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket>\
         <Key>{}</Key><ETag>{}</ETag></PostResponse>",
        xml_escape(location),
        xml_escape(bucket),
        xml_escape(key),
        xml_escape(etag)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartPart {
    /// The `name` parameter of `Content-Disposition`.
    pub name: String,
    /// The `filename` parameter, for file parts.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The part's content.
    pub data: Bytes,
}

/// Splits a `multipart/form-data` body (`content_type` is the request's `Content-Type` header, which
/// carries the boundary). Parts keep their order; the data of each is a slice of `body`.
///
/// ```
/// use cos_testkit::policy::parse_multipart;
/// let body = bytes::Bytes::from_static(b"--XY\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\na.txt\r\n--XY\r\n\
///     Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XY--\r\n");
/// let parts = parse_multipart("multipart/form-data; boundary=XY", &body)?;
/// assert_eq!((parts[0].name.as_str(), &parts[0].data[..]), ("key", &b"a.txt"[..]));
/// assert_eq!((parts[1].filename.as_deref(), &parts[1].data[..]), (Some("a.txt"), &b"hi"[..]));
/// # Ok::<(), cos_testkit::policy::PolicyViolation>(())
/// ```
pub fn parse_multipart(
    content_type: &str,
    body: &Bytes,
) -> Result<Vec<MultipartPart>, PolicyViolation> {
    let bad = |r: &str| PolicyViolation::MalformedForm(r.to_string());
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(bad("Content-Type is not multipart/form-data"));
    }
    let boundary = header_params(params)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("no boundary in Content-Type"))?;
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let b = &body[..];
    let mut pos = find(b, delimiter.as_bytes(), 0).ok_or_else(|| bad("no opening boundary"))?
        + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if b[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then CRLF.
        while matches!(b.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        if !b[pos..].starts_with(b"\r\n") {
            return Err(bad("boundary not followed by CRLF"));
        }
        pos += 2;
        let headers_end =
            find(b, b"\r\n\r\n", pos).ok_or_else(|| bad("part headers do not end"))?;
        let headers = std::str::from_utf8(&b[pos..headers_end])
            .map_err(|_| bad("part headers are not UTF-8"))?;
        let (mut name, mut filename, mut part_type) = (None, None, None);
        for line in headers.split("\r\n").filter(|l| !l.is_empty()) {
            let (h, v) = line
                .split_once(':')
                .ok_or_else(|| bad("part header without ':'"))?;
            if h.trim().eq_ignore_ascii_case("content-disposition") {
                let (kind, params) = v.split_once(';').unwrap_or((v, ""));
                if !kind.trim().eq_ignore_ascii_case("form-data") {
                    return Err(bad("part is not form-data"));
                }
                for (k, v) in header_params(params) {
                    if k.eq_ignore_ascii_case("name") {
                        name = Some(v);
                    } else if k.eq_ignore_ascii_case("filename") {
                        filename = Some(v);
                    }
                }
            } else if h.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(v.trim().to_string());
            }
        }
        let data_start = headers_end + 4;
        let data_end = find(b, next_delimiter.as_bytes(), data_start)
            .ok_or_else(|| bad("part does not end"))?;
        parts.push(MultipartPart {
            name: name.ok_or_else(|| bad("part without a name"))?,
            filename,
            content_type: part_type,
            data: body.slice(data_start..data_end),
        });
        pos = data_end + next_delimiter.len();
    }
}

/// `; a=b; c="d"` → `[(a, b), (c, d)]`.
fn header_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_string();
        rest = &rest[eq + 1..];
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
    }
    out
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Policy JSON read through serde_json into a value that keeps object members in document order (the
/// conditions of a `{"a": "1", "b": "2"}` item are checked in that order) and numbers as
/// text (integers as written, others in Rust's `f64` `Debug` form, which always has a `.` or an exponent).
mod json {
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    /// A JSON value. Numbers are text; objects keep their members in order (repeats included).
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(String),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        /// A string's value, or a number's text.
        pub fn as_text(&self) -> Option<String> {
            match self {
                Value::String(s) | Value::Number(s) => Some(s.clone()),
                _ => None,
            }
        }
    }

    /// Parses one JSON document (serde_json's grammar and nesting limit).
    pub fn parse(text: &str) -> Result<Value, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ValueVisitor)
        }
    }

    struct ValueVisitor;

    impl<'de> Visitor<'de> for ValueVisitor {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
            Ok(Value::Bool(b))
        }

        fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
            Ok(Value::Number(n.to_string()))
        }

        fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
            Ok(Value::Number(n.to_string()))
        }

        fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
            // Debug keeps a fraction (`6e0` → `6.0`), so a non-integer never reads as an integer bound.
            Ok(Value::Number(format!("{n:?}")))
        }

        fn visit_str<E>(self, s: &str) -> Result<Value, E> {
            Ok(Value::String(s.to_string()))
        }

        fn visit_string<E>(self, s: String) -> Result<Value, E> {
            Ok(Value::String(s))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(v) = seq.next_element()? {
                items.push(v);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut members = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                members.push((k, v));
            }
            Ok(Value::Object(members))
        }
    }
}

#[cfg(test)]
mod tests;
