use super::*;
use cos_core::auth::KeyTime;
use cos_core::checksum::BodyDigest;
use cos_core::error::{Error, IntegrityError, InvalidInput};
use cos_core::ops::{Acl, StorageClass};
use cos_core::post_policy::{PostForm, PostObject, PostPolicy};
use cos_core::{Config, Credentials};
use std::time::Duration;

const BUCKET: &str = "examplebucket-1250000000";
const NOW: u64 = 1_700_000_000;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn config() -> Config {
    Config::new(
        BUCKET,
        "ap-guangzhou",
        Credentials::new("AKIDEXAMPLE", "secret-key"),
    )
    .unwrap()
}

fn lookup(creds: &Credentials) -> impl FnOnce(&str) -> Option<Credentials> + '_ {
    move |id| (id == creds.secret_id()).then(|| creds.clone())
}

fn submission<'a>(
    fields: &'a [(String, String)],
    filename: &'a str,
    len: u64,
) -> FormSubmission<'a> {
    FormSubmission {
        fields,
        filename,
        file_len: len,
        bucket: BUCKET,
    }
}

fn verify(
    fields: &[(String, String)],
    filename: &str,
    len: u64,
    now: u64,
) -> Result<VerifiedPost, PolicyViolation> {
    let creds = config().credentials;
    verify_form(&submission(fields, filename, len), t(now), lookup(&creds))
}

fn invalid(e: Result<PostForm, Error>) -> InvalidInput {
    match e {
        Err(Error::InvalidInput(i)) => i,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn set(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut f = fields.to_vec();
    match f.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => f.push((name.to_string(), value.to_string())),
    }
    f
}

// ----- The published example (COS API documentation, "POST Object", signature protection) -----

const DOC_POLICY_B64: &str = "ewogICAgImV4cGlyYXRpb24iOiAiMjAxOS0wOC0zMFQwOTozODoxMi40MTRaIiwKICAgICJjb25kaXRpb25zIjogWwogICAgICAgIHsgImFjbCI6ICJkZWZhdWx0IiB9LAogICAgICAgIHsgImJ1Y2tldCI6ICJleGFtcGxlYnVja2V0LTEyNTAwMDAwMDAiIH0sCiAgICAgICAgWyAic3RhcnRzLXdpdGgiLCAiJGtleSIsICJmb2xkZXIvc3ViZm9sZGVyLyIgXSwKICAgICAgICBbICJzdGFydHMtd2l0aCIsICIkQ29udGVudC1UeXBlIiwgImltYWdlLyIgXSwKICAgICAgICBbICJzdGFydHMtd2l0aCIsICIkc3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiLCAiaHR0cHM6Ly9teS53ZWJzaXRlLyIgXSwKICAgICAgICBbICJlcSIsICIkeC1jb3Mtc2VydmVyLXNpZGUtZW5jcnlwdGlvbiIsICJBRVMyNTYiIF0sCiAgICAgICAgeyAicS1zaWduLWFsZ29yaXRobSI6ICJzaGExIiB9LAogICAgICAgIHsgInEtYWsiOiAiQUtJRFFqejNsdG9tcFZqQm5pNUxpdGtXSEZsRnB3a245VTVxIiB9LAogICAgICAgIHsgInEtc2lnbi10aW1lIjogIjE1NjcxNTA2OTI7MTU2NzE1Nzg5MiIgfQogICAgXQp9";
const DOC_SECRET_ID: &str = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q";
const DOC_SECRET_KEY: &str = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz";

fn doc_fields() -> Vec<(String, String)> {
    [
        ("key", "folder/subfolder/${filename}"),
        ("Content-Type", "image/png"),
        ("success_action_redirect", "https://my.website/done"),
        ("x-cos-server-side-encryption", "AES256"),
        ("acl", "default"),
        ("policy", DOC_POLICY_B64),
        ("q-sign-algorithm", "sha1"),
        ("q-ak", DOC_SECRET_ID),
        ("q-key-time", "1567150692;1567157892"),
        ("q-signature", "7758dc9a832e9d301dca704cacbf9d9f8172fdef"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn verify_doc(
    fields: &[(String, String)],
    now: SystemTime,
) -> Result<VerifiedPost, PolicyViolation> {
    let creds = Credentials::new(DOC_SECRET_ID, DOC_SECRET_KEY);
    verify_form(&submission(fields, "cat.png", 1000), now, lookup(&creds))
}

#[test]
fn published_example_verifies() {
    let ok = verify_doc(&doc_fields(), t(1_567_150_700)).unwrap();
    assert_eq!(ok.key, "folder/subfolder/cat.png");
    assert_eq!(ok.secret_id, DOC_SECRET_ID);
    assert_eq!(ok.success_action_status, 204);
    assert_eq!(
        ok.success_action_redirect.as_deref(),
        Some("https://my.website/done")
    );
    assert_eq!(ok.policy.expiration, "2019-08-30T09:38:12.414Z");
    assert_eq!(ok.policy.conditions.len(), 9);
    assert_eq!(
        ok.object_headers,
        vec![
            ("content-type".to_string(), "image/png".to_string()),
            (
                "x-cos-server-side-encryption".to_string(),
                "AES256".to_string()
            ),
            ("x-cos-acl".to_string(), "default".to_string()),
        ]
    );
}

#[test]
fn published_example_condition_failures() {
    let now = t(1_567_150_700);
    let e = verify_doc(&set(&doc_fields(), "Content-Type", "text/plain"), now).unwrap_err();
    assert_eq!(
        e,
        PolicyViolation::ConditionFailed {
            field: "Content-Type".into(),
            condition: r#"["starts-with","$Content-Type","image/"]"#.into(),
            actual: Some("text/plain".into()),
        }
    );
    assert_eq!((e.status(), e.code()), (403, "AccessDenied"));
    let e = verify_doc(&set(&doc_fields(), "key", "other/${filename}"), now).unwrap_err();
    assert!(
        matches!(&e, PolicyViolation::ConditionFailed { field, actual: Some(a), .. } if field == "key" && a == "other/cat.png")
    );
    let e = verify_doc(
        &set(&doc_fields(), "x-cos-server-side-encryption", "cos/kms"),
        now,
    )
    .unwrap_err();
    assert!(
        matches!(&e, PolicyViolation::ConditionFailed { field, .. } if field == "x-cos-server-side-encryption")
    );
    let without_acl: Vec<_> = doc_fields()
        .into_iter()
        .filter(|(k, _)| k != "acl")
        .collect();
    let e = verify_doc(&without_acl, now).unwrap_err();
    assert!(
        matches!(&e, PolicyViolation::ConditionFailed { field, actual: None, .. } if field == "acl")
    );
    // Another bucket.
    let creds = Credentials::new(DOC_SECRET_ID, DOC_SECRET_KEY);
    let fields = doc_fields();
    let mut sub = submission(&fields, "cat.png", 1);
    sub.bucket = "other-1250000000";
    let e = verify_form(&sub, now, lookup(&creds)).unwrap_err();
    assert!(matches!(&e, PolicyViolation::ConditionFailed { field, .. } if field == "bucket"));
}

#[test]
fn published_example_time_window() {
    // Last second of the key time, before the expiration's .414.
    assert!(verify_doc(&doc_fields(), t(1_567_157_892) + Duration::from_millis(200)).is_ok());
    assert!(matches!(
        verify_doc(&doc_fields(), t(1_567_157_893)),
        Err(PolicyViolation::KeyTimeNotValid { .. })
    ));
    assert!(matches!(
        verify_doc(&doc_fields(), t(1_567_150_691)),
        Err(PolicyViolation::KeyTimeNotValid { .. })
    ));
}

// ----- Signing -----

fn full_policy() -> PostPolicy {
    PostPolicy::new(t(NOW + 3600))
        .key_starts_with("uploads/")
        .content_length_range(1, 1000)
        .content_type("image/png")
        .success_action_status(201)
        .success_action_redirect("https://app.example/done")
        .metadata("Owner", "alice")
        .storage_class(StorageClass::StandardIa)
        .acl(Acl::Private)
        .field("Cache-Control", "max-age=60")
}

#[test]
fn signed_form_verifies_and_tampering_fails() {
    let form = full_policy().sign(&config(), t(NOW)).unwrap();
    let fields = form.fields();
    let ok = verify(fields, "a.png", 10, NOW + 5).unwrap();
    assert_eq!(ok.key, "uploads/a.png");
    assert_eq!(ok.success_action_status, 201);
    assert!(ok
        .object_headers
        .contains(&("x-cos-meta-owner".into(), "alice".into())));
    assert!(ok
        .object_headers
        .contains(&("x-cos-storage-class".into(), "STANDARD_IA".into())));
    assert!(ok
        .object_headers
        .contains(&("cache-control".into(), "max-age=60".into())));

    // Each tampered form fails for its own reason.
    let e = |fields: Vec<(String, String)>| verify(&fields, "a.png", 10, NOW + 5).unwrap_err();
    assert!(matches!(
        e(set(fields, "Content-Type", "image/gif")),
        PolicyViolation::ConditionFailed { .. }
    ));
    assert!(matches!(
        e(set(fields, "x-cos-meta-owner", "mallory")),
        PolicyViolation::ConditionFailed { .. }
    ));
    assert!(matches!(
        e(set(fields, "key", "elsewhere/a.png")),
        PolicyViolation::ConditionFailed { .. }
    ));
    let sig = e(set(fields, "q-signature", &"0".repeat(40)));
    assert!(
        matches!(&sig, PolicyViolation::SignatureMismatch { string_to_sign } if string_to_sign.len() == 40)
    );
    assert_eq!((sig.status(), sig.code()), (403, "SignatureDoesNotMatch"));
    // A different policy under the original signature.
    let other = full_policy()
        .content_length_range(0, u64::MAX)
        .sign(&config(), t(NOW))
        .unwrap();
    assert!(matches!(
        e(set(fields, "policy", other.field("policy").unwrap())),
        PolicyViolation::SignatureMismatch { .. }
    ));
    // A wider key time than signed.
    assert!(matches!(
        e(set(
            fields,
            "q-key-time",
            &format!("{};{}", NOW - 60, NOW + 99999)
        )),
        PolicyViolation::SignatureMismatch { .. }
    ));
    let u = e(set(fields, "q-ak", "AKIDOTHER"));
    assert_eq!(u, PolicyViolation::UnknownSecretId("AKIDOTHER".into()));
    assert_eq!(u.code(), "InvalidAccessKeyId");
    // Wrong secret on the server side.
    let wrong = Credentials::new("AKIDEXAMPLE", "not-the-key");
    assert!(matches!(
        verify_form(&submission(fields, "a.png", 10), t(NOW + 5), lookup(&wrong)),
        Err(PolicyViolation::SignatureMismatch { .. })
    ));
}

#[test]
fn content_length_range_is_enforced() {
    let form = full_policy().sign(&config(), t(NOW)).unwrap();
    assert!(verify(form.fields(), "a.png", 1, NOW).is_ok());
    assert!(verify(form.fields(), "a.png", 1000, NOW).is_ok());
    let big = verify(form.fields(), "a.png", 1001, NOW).unwrap_err();
    assert_eq!(
        big,
        PolicyViolation::ContentLength {
            len: 1001,
            min: 1,
            max: 1000
        }
    );
    assert_eq!((big.status(), big.code()), (400, "EntityTooLarge"));
    assert_eq!(
        verify(form.fields(), "a.png", 0, NOW).unwrap_err().code(),
        "EntityTooSmall"
    );
}

#[test]
fn expiry_and_key_time() {
    let form = PostPolicy::new(t(NOW + 100))
        .key("a.txt")
        .sign(&config(), t(NOW))
        .unwrap();
    assert!(verify(form.fields(), "x", 1, NOW + 100).is_ok());
    // Within the key time's last second but past the expiration instant.
    let e = verify_form(
        &submission(form.fields(), "x", 1),
        t(NOW + 100) + Duration::from_millis(500),
        lookup(&config().credentials),
    )
    .unwrap_err();
    assert_eq!(
        e,
        PolicyViolation::Expired {
            expiration: "2023-11-14T22:15:00.000Z".into()
        }
    );
    assert!(matches!(
        verify(form.fields(), "x", 1, NOW + 101),
        Err(PolicyViolation::KeyTimeNotValid { .. })
    ));
    // The key time starts a minute early.
    assert!(verify(form.fields(), "x", 1, NOW - 60).is_ok());
    assert!(verify(form.fields(), "x", 1, NOW - 61).is_err());
}

#[test]
fn temporary_credentials_token() {
    let creds = Credentials::new("tmpid", "tmpkey").with_security_token("tok+/=");
    let form = PostPolicy::new(t(NOW + 100))
        .key("a")
        .sign_with(&config(), &creds, t(NOW))
        .unwrap();
    assert_eq!(
        form.fields()[6],
        ("x-cos-security-token".to_string(), "tok+/=".to_string())
    );
    assert!(!form.policy_json().contains("tok+/="));
    let run = |fields: &[(String, String)]| {
        verify_form(&submission(fields, "f", 1), t(NOW), lookup(&creds))
    };
    assert!(run(form.fields()).is_ok());
    assert_eq!(
        run(&set(form.fields(), "x-cos-security-token", "other")),
        Err(PolicyViolation::InvalidSecurityToken)
    );
    let without: Vec<_> = form
        .fields()
        .iter()
        .filter(|(k, _)| k != "x-cos-security-token")
        .cloned()
        .collect();
    assert_eq!(run(&without), Err(PolicyViolation::InvalidSecurityToken));
    // Debug redacts the token and the signature.
    let shown = format!("{form:?}");
    assert!(!shown.contains("tok+/="), "{shown}");
    assert!(
        !shown.contains(form.field("q-signature").unwrap()),
        "{shown}"
    );
    assert!(shown.contains("tmpid"));
}

#[test]
fn exact_key_and_escaping() {
    let key = "dir/\"quoted\" \\ 雪.txt";
    let form = PostPolicy::new(t(NOW + 10))
        .key(key)
        .metadata("note", "tab\there")
        .sign(&config(), t(NOW))
        .unwrap();
    assert!(form
        .policy_json()
        .contains(r#"{"key":"dir/\"quoted\" \\ 雪.txt"}"#));
    assert!(form
        .policy_json()
        .contains(r#"{"x-cos-meta-note":"tab\there"}"#));
    let v: serde_json::Value = serde_json::from_str(form.policy_json()).unwrap();
    assert_eq!(v["conditions"][4]["key"], key);
    let parsed = parse_policy_json(form.policy_json()).unwrap();
    assert!(parsed.conditions.contains(&Condition::Eq {
        field: "key".into(),
        value: key.into()
    }));
    assert_eq!(verify(form.fields(), "ignored", 1, NOW).unwrap().key, key);
}

#[test]
fn sign_rejects_bad_input() {
    let base = || PostPolicy::new(t(NOW + 10)).key("a");
    let c = config();
    let name = |p: PostPolicy| match invalid(p.sign(&c, t(NOW))) {
        InvalidInput::Parameter { name, .. } => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(name(PostPolicy::new(t(NOW + 10))), "key");
    assert_eq!(
        name(base().content_length_range(10, 9)),
        "content-length-range"
    );
    assert_eq!(name(PostPolicy::new(t(NOW)).key("a")), "expiration");
    assert_eq!(name(PostPolicy::new(t(NOW - 5)).key("a")), "expiration");
    // Sub-second expirations round down to the second.
    assert_eq!(
        name(PostPolicy::new(t(NOW) + Duration::from_millis(900)).key("a")),
        "expiration"
    );
    assert_eq!(
        name(base().success_action_status(202)),
        "success_action_status"
    );
    assert_eq!(
        name(base().success_action_redirect("ftp://x/")),
        "success_action_redirect"
    );
    assert_eq!(
        name(base().success_action_redirect("not a url")),
        "success_action_redirect"
    );
    assert_eq!(name(base().field("policy", "x")), "field");
    assert_eq!(name(base().field("Content-Type", "x")), "field");
    assert_eq!(name(base().field("x-cos-meta-a", "x")), "field");
    assert_eq!(name(base().field("bad\"name", "x")), "field");
    assert_eq!(
        name(base().field("Expires", "x").field("expires", "y")),
        "field"
    );
    assert_eq!(
        name(base().metadata("a", "1").metadata("A", "2")),
        "metadata"
    );
    assert!(base().content_length_range(5, 5).sign(&c, t(NOW)).is_ok());
    assert!(matches!(
        invalid(PostPolicy::new(t(NOW + 10)).key("dir/").sign(&c, t(NOW))),
        InvalidInput::Key { .. }
    ));
    assert!(matches!(
        invalid(
            PostPolicy::new(t(NOW + 10))
                .key("a/${filename}")
                .sign(&c, t(NOW))
        ),
        InvalidInput::Key { .. }
    ));
    assert!(matches!(
        invalid(
            PostPolicy::new(t(NOW + 10))
                .key_starts_with("/abs")
                .sign(&c, t(NOW))
        ),
        InvalidInput::Key { .. }
    ));
    assert!(matches!(
        invalid(base().metadata("a b", "x").sign(&c, t(NOW))),
        InvalidInput::MetadataName(_)
    ));
    assert!(matches!(
        invalid(base().metadata("a", "x".repeat(2100)).sign(&c, t(NOW))),
        InvalidInput::MetadataTooLarge(_)
    ));
    assert!(matches!(
        invalid(base().content_type("text/plain\r\nX: y").sign(&c, t(NOW))),
        InvalidInput::HeaderValue(_)
    ));
    assert_eq!(
        invalid(base().sign_with(&c, &Credentials::new("id", ""), t(NOW))),
        InvalidInput::MissingCredentials
    );
    // An empty key prefix admits any key.
    let form = PostPolicy::new(t(NOW + 10))
        .key_starts_with("")
        .sign(&c, t(NOW))
        .unwrap();
    assert_eq!(form.field("key"), Some("${filename}"));
    assert_eq!(verify(form.fields(), "x.bin", 1, NOW).unwrap().key, "x.bin");
}

// ----- Server-side checks -----

#[test]
fn verify_form_field_errors() {
    let form = PostPolicy::new(t(NOW + 100))
        .key_starts_with("k/")
        .sign(&config(), t(NOW))
        .unwrap();
    let f = form.fields();
    let e = |fields: Vec<(String, String)>| verify(&fields, "x", 1, NOW).unwrap_err();
    for name in [
        "key",
        "policy",
        "q-sign-algorithm",
        "q-ak",
        "q-key-time",
        "q-signature",
    ] {
        let without: Vec<_> = f.iter().filter(|(k, _)| k != name).cloned().collect();
        assert_eq!(e(without), PolicyViolation::MissingField(name));
    }
    let mut dup = f.to_vec();
    dup.push(("KEY".into(), "k/other".into()));
    assert_eq!(e(dup), PolicyViolation::DuplicateField("KEY".into()));
    assert_eq!(
        e(set(f, "q-sign-algorithm", "sha256")),
        PolicyViolation::UnsupportedAlgorithm("sha256".into())
    );
    assert_eq!(
        e(set(f, "q-key-time", "12")),
        PolicyViolation::MalformedKeyTime("12".into())
    );
    assert_eq!(
        e(set(f, "q-key-time", "20;10")),
        PolicyViolation::MalformedKeyTime("20;10".into())
    );
    assert_eq!(e(set(f, "policy", "!!!")), PolicyViolation::PolicyNotBase64);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert!(matches!(
        e(set(f, "policy", &b64("{"))),
        PolicyViolation::MalformedPolicy(_)
    ));
    assert_eq!(
        e(set(f, "success_action_status", "302")),
        PolicyViolation::InvalidSuccessActionStatus("302".into())
    );
    let long = verify(f, &"x".repeat(900), 1, NOW).unwrap_err();
    assert_eq!((long.code(), long.status()), ("KeyTooLong", 400));
    assert!(matches!(
        verify(f, "a\u{7}b", 1, NOW).unwrap_err(),
        PolicyViolation::InvalidKey { .. }
    ));
    // Field names compare case-insensitively.
    let upper: Vec<_> = f
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect();
    assert!(verify(&upper, "x", 1, NOW).is_ok());
    // Whitespace in the base64 policy (line-wrapped encoders) is tolerated.
    let wrapped = form
        .field("policy")
        .unwrap()
        .as_bytes()
        .chunks(20)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    assert!(verify(&set(f, "policy", &wrapped), "x", 1, NOW).is_ok());
}

/// Signs an arbitrary policy text the way a third-party client would.
fn third_party_form(policy: &str, key: &str) -> Vec<(String, String)> {
    let kt = KeyTime {
        start: NOW - 10,
        end: NOW + 100,
    };
    vec![
        ("key".into(), key.into()),
        (
            "policy".into(),
            base64::engine::general_purpose::STANDARD.encode(policy),
        ),
        ("q-sign-algorithm".into(), "sha1".into()),
        ("q-ak".into(), "AKIDEXAMPLE".into()),
        ("q-key-time".into(), kt.to_string()),
        (
            "q-signature".into(),
            sign_policy("secret-key", &kt, policy).to_uppercase(),
        ),
    ]
}

#[test]
fn policies_missing_pins_are_refused() {
    let kt = format!("{};{}", NOW - 10, NOW + 100);
    let full = format!(
        r#"{{"expiration":"2023-11-14T22:15:00Z","conditions":[["eq","$q-sign-algorithm","sha1"],{{"q-ak":"AKIDEXAMPLE"}},{{"q-sign-time":"{kt}"}},["eq","$bucket","{BUCKET}"],["starts-with","$key",""]]}}"#
    );
    assert!(verify(&third_party_form(&full, "a"), "f", 1, NOW).is_ok());
    for (pin, missing) in [
        (
            "q-sign-algorithm",
            r#"["eq","$q-sign-algorithm","sha1"],"#.to_string(),
        ),
        ("q-ak", r#"{"q-ak":"AKIDEXAMPLE"},"#.to_string()),
        ("q-sign-time", format!(r#",{{"q-sign-time":"{kt}"}}"#)),
        // The protocol also requires a condition on the bucket and on the key (exact or starts-with).
        ("bucket", format!(r#",["eq","$bucket","{BUCKET}"]"#)),
        ("key", r#",["starts-with","$key",""]"#.to_string()),
    ] {
        let policy = full.replace(&missing, "");
        assert_ne!(policy, full);
        let e = verify(&third_party_form(&policy, "a"), "f", 1, NOW).unwrap_err();
        assert_eq!(e, PolicyViolation::MissingCondition(pin));
        assert_eq!(e.code(), "InvalidPolicyDocument");
    }
    // A pinned q-sign-time that differs from q-key-time fails.
    let shifted = full.replace(&kt, &format!("{};{}", NOW - 10, NOW + 200));
    assert!(matches!(
        verify(&third_party_form(&shifted, "a"), "f", 1, NOW),
        Err(PolicyViolation::ConditionFailed { field, .. }) if field == "q-sign-time"
    ));
}

#[test]
fn parse_policy_variants() {
    let p = parse_policy_json(
        r#" { "expiration" : "2030-01-01T00:00:00Z", "extra": [1, {"a": null}, true],
            "conditions": [ {"a": "1", "$b": 2}, ["EQ", "$c", "x"], ["Starts-With", "d", ""],
            ["content-length-range", "5", 6e0] ] } "#,
    );
    // 6e0 is not an integer: refused.
    assert!(matches!(p, Err(PolicyViolation::MalformedPolicy(_))));
    let p = parse_policy_json(
        r#" { "expiration" : "2030-01-01T00:00:00Z", "extra": [1, {"a": null}, true, -2.5e3],
            "conditions": [ {"a": "1", "$b": 2}, ["EQ", "$c", "x"], ["Starts-With", "d", ""],
            ["content-length-range", "5", 6] ] } "#,
    )
    .unwrap();
    assert_eq!(p.expiration_ms, 1_893_456_000_000);
    assert_eq!(
        p.conditions,
        vec![
            Condition::Eq {
                field: "a".into(),
                value: "1".into()
            },
            Condition::Eq {
                field: "b".into(),
                value: "2".into()
            },
            Condition::Eq {
                field: "c".into(),
                value: "x".into()
            },
            Condition::StartsWith {
                field: "d".into(),
                prefix: "".into()
            },
            Condition::ContentLengthRange { min: 5, max: 6 },
        ]
    );
    for bad in [
        "",
        "[]",
        r#"{"conditions":[]}"#,
        r#"{"expiration":5,"conditions":[]}"#,
        r#"{"expiration":"2030-01-01","conditions":[]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z"}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":{}}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":["x"]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["in","$a",["x"]]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","$a"]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq",1,"x"]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"a":null}]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",-1,5]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",6,5]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]} x"#,
    ] {
        assert!(
            matches!(
                parse_policy_json(bad),
                Err(PolicyViolation::MalformedPolicy(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn multipart_round_trip_through_server_checks() {
    let mut form = PostPolicy::new(t(NOW + 100))
        .key_starts_with("in/")
        .content_type_starts_with("image/")
        .metadata_starts_with("tag", "t-")
        .content_length_range(1, 100)
        .success_action_status(201)
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(
        form.starts_with(),
        [
            ("Content-Type".to_string(), "image/".to_string()),
            ("x-cos-meta-tag".to_string(), "t-".to_string())
        ]
    );
    let boundary = PostForm::boundary(0x1234_5678_9abc_def0_1122_3344_5566_7788);
    assert_eq!(boundary, "----cos-rs-123456789abcdef01122334455667788");
    // Unset starts-with fields are refused before anything is sent…
    assert!(matches!(
        PostObject::new(form.clone(), boundary.clone(), "a.png", "image/png"),
        Err(Error::InvalidInput(InvalidInput::Parameter {
            name: "form field",
            ..
        }))
    ));
    form.set("Content-Type", "text/plain")
        .set("x-cos-meta-tag", "t-1");
    assert!(PostObject::new(form.clone(), boundary.clone(), "a.png", "image/png").is_err());
    form.set("content-type", "image/png");
    assert_eq!(form.field("Content-Type"), Some("image/png"));
    let post = PostObject::new(form, boundary.clone(), "a \"b\".png", "image/png").unwrap();

    let file = b"\x89PNG\r\n--not-the-boundary\r\n\x00\xff";
    let req = post.request_with_bytes(file).unwrap();
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(
        req.uri(),
        "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/"
    );
    assert_eq!(
        req.headers()["host"],
        "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
    );
    let ct = req.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, format!("multipart/form-data; boundary={boundary}"));
    assert_eq!(
        req.headers()["content-length"],
        req.body().len().to_string()
    );
    assert_eq!(
        post.content_length(file.len() as u64),
        req.body().len() as u64
    );
    let head_only = post.request(file.len() as u64).unwrap();
    assert_eq!(head_only.headers(), req.headers());
    assert!(req.body().starts_with(post.head()));
    assert!(req.body().ends_with(&post.tail()));

    // The server's view.
    let parts = parse_multipart(&ct, req.body()).unwrap();
    let file_part = parts.last().unwrap();
    assert_eq!(file_part.name, "file");
    assert_eq!(file_part.filename.as_deref(), Some("a %22b%22.png"));
    assert_eq!(file_part.content_type.as_deref(), Some("image/png"));
    assert_eq!(&file_part.data[..], file);
    let fields: Vec<(String, String)> = parts[..parts.len() - 1]
        .iter()
        .map(|p| (p.name.clone(), String::from_utf8(p.data.to_vec()).unwrap()))
        .collect();
    assert_eq!(fields, post.form().fields());
    let ok = verify_form(
        &submission(
            &fields,
            file_part.filename.as_deref().unwrap(),
            file_part.data.len() as u64,
        ),
        t(NOW + 1),
        lookup(&config().credentials),
    )
    .unwrap();
    assert_eq!(ok.key, "in/a %22b%22.png");
    assert_eq!(ok.success_action_status, 201);
}

#[test]
fn multipart_framing_is_exact() {
    let form = PostPolicy::new(t(NOW + 100))
        .key("k")
        .sign(&config(), t(NOW))
        .unwrap();
    let head = form.multipart_head("B", "f.txt", "text/plain").unwrap();
    let text = std::str::from_utf8(&head).unwrap();
    assert!(
        text.starts_with("--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--B\r\n")
    );
    assert!(text.ends_with(
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    ));
    assert_eq!(&form.multipart_tail("B")[..], b"\r\n--B--\r\n");
    // Empty file.
    let post = PostObject::new(form.clone(), "B", "f.txt", "text/plain").unwrap();
    let req = post.request_with_bytes(b"").unwrap();
    let parts = parse_multipart("multipart/form-data; boundary=\"B\"", req.body()).unwrap();
    assert_eq!(parts.last().unwrap().data.len(), 0);

    for b in ["", "has space", &"x".repeat(71), "ü"] {
        assert!(form.multipart_head(b, "f", "t/p").is_err(), "{b:?}");
    }
    assert!(form.multipart_head("B", "", "t/p").is_err());
    assert!(form.multipart_head("B", "f", "").is_err());
    assert!(form.multipart_head("B", "f", "a\r\nb").is_err());
    let mut evil = form.clone();
    evil.set("x-cos-meta-a", "--B");
    assert!(matches!(
        evil.multipart_head("B", "f", "t/p"),
        Err(Error::InvalidInput(InvalidInput::Parameter {
            name: "boundary",
            ..
        }))
    ));
    assert!(form.multipart_head("B", "x--By", "t/p").is_err());
    let mut bad_name = form.clone();
    bad_name.set("a\"b", "v");
    assert!(bad_name.multipart_head("B", "f", "t/p").is_err());
}

#[test]
fn multipart_parser_rejects_garbage() {
    let body = |s: &'static str| Bytes::from_static(s.as_bytes());
    let ct = "multipart/form-data; boundary=B";
    assert!(parse_multipart("text/plain; boundary=B", &body("--B--")).is_err());
    assert!(parse_multipart("multipart/form-data", &body("--B--")).is_err());
    assert_eq!(
        parse_multipart(ct, &body("preamble\r\n--B--\r\n")).unwrap(),
        vec![]
    );
    for bad in [
        "nothing",
        "--Bx",
        "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
        "--B\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line",
        "--B\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--B--",
        "--B\r\nContent-Disposition: form-data\r\n\r\nv\r\n--B--",
        "--B\r\nbroken header\r\n\r\nv\r\n--B--",
    ] {
        let e = parse_multipart(ct, &body(bad)).unwrap_err();
        assert_eq!(
            (e.code(), e.status()),
            ("MalformedPOSTRequest", 400),
            "{bad:?}"
        );
    }
}

// ----- Responses -----

fn post_object() -> PostObject {
    let form = PostPolicy::new(t(NOW + 100))
        .key("k")
        .success_action_redirect("https://app.example/done?x=1")
        .sign(&config(), t(NOW))
        .unwrap();
    PostObject::new(form, "B", "f", "t/p").unwrap()
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Bytes> {
    let mut r = http::Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Bytes::from(body.to_string())).unwrap()
}

#[test]
fn parses_success_responses() {
    let plain = {
        let form = PostPolicy::new(t(NOW + 100))
            .key("k")
            .sign(&config(), t(NOW))
            .unwrap();
        PostObject::new(form, "B", "f", "t/p").unwrap()
    };
    let sent = BodyDigest::of(b"hello");
    let etag = "\"5d41402abc4b2a76b9719d911017c592\"";
    let crc = sent.crc64.to_string();
    let out = plain
        .parse_response(
            &response(
                204,
                &[
                    ("etag", etag),
                    ("location", "https://b/k"),
                    ("x-cos-request-id", "rid"),
                    ("x-cos-hash-crc64ecma", &crc),
                    ("x-cos-version-id", "v1"),
                ],
                "",
            ),
            Some(&sent),
        )
        .unwrap();
    assert_eq!(out.status, 204);
    assert_eq!(out.etag.as_deref(), Some(etag));
    assert_eq!(out.location.as_deref(), Some("https://b/k"));
    assert_eq!(out.request_id.as_deref(), Some("rid"));
    assert_eq!(out.crc64, Some(sent.crc64));
    assert_eq!(out.version_id.as_deref(), Some("v1"));
    assert!(plain.parse_response(&response(200, &[], ""), None).is_ok());

    let xml = post_response_xml("https://b/a&b", BUCKET, "a&b <c>", etag);
    let out = plain
        .parse_response(&response(201, &[], &xml), Some(&sent))
        .unwrap();
    assert_eq!(out.status, 201);
    assert_eq!(out.key.as_deref(), Some("a&b <c>"));
    assert_eq!(out.bucket.as_deref(), Some(BUCKET));
    assert_eq!(out.location.as_deref(), Some("https://b/a&b"));
    assert_eq!(out.etag.as_deref(), Some(etag));

    // A wrong ETag or CRC-64 is an integrity error.
    let other = BodyDigest::of(b"other");
    assert!(matches!(
        plain.parse_response(&response(204, &[("etag", etag)], ""), Some(&other)),
        Err(Error::Integrity(IntegrityError::Etag { .. }))
    ));
    assert!(matches!(
        plain.parse_response(
            &response(204, &[("x-cos-hash-crc64ecma", "1")], ""),
            Some(&sent)
        ),
        Err(Error::Integrity(IntegrityError::Crc64 { .. }))
    ));
}

#[test]
fn parses_redirects() {
    let post = post_object();
    let loc = redirect_location("https://app.example/done?x=1", BUCKET, "k", "\"abc\"");
    let out = post
        .parse_response(&response(303, &[("location", &loc)], ""), None)
        .unwrap();
    assert_eq!(out.status, 303);
    assert_eq!(out.bucket.as_deref(), Some(BUCKET));
    assert_eq!(out.key.as_deref(), Some("k"));
    assert_eq!(out.etag.as_deref(), Some("\"abc\""));
    assert!(matches!(
        post.parse_response(&response(303, &[], ""), None),
        Err(Error::UnexpectedResponse(_))
    ));
    // Without a redirect in the form, a 303 is not success.
    let plain = PostObject::new(
        PostPolicy::new(t(NOW + 100))
            .key("k")
            .sign(&config(), t(NOW))
            .unwrap(),
        "B",
        "f",
        "t/p",
    )
    .unwrap();
    assert!(plain
        .parse_response(&response(303, &[("location", &loc)], ""), None)
        .is_err());
}

#[test]
fn violations_display_without_secrets() {
    let form = PostPolicy::new(t(NOW + 100))
        .key("k")
        .sign(&config(), t(NOW))
        .unwrap();
    let e = verify(&set(form.fields(), "q-signature", "0"), "f", 1, NOW).unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("secret-key"));
    assert!(!shown.contains(form.field("q-signature").unwrap()));
    assert!(shown.contains("StringToSign"));
}

#[test]
fn json_reader() {
    use super::json::{parse, Value};
    assert_eq!(
        parse(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#),
        Ok(Value::String("a\"\\/\u{8}\u{c}\n\r\té😀".into()))
    );
    assert_eq!(parse(" [ ] "), Ok(Value::Array(vec![])));
    assert_eq!(parse("{}"), Ok(Value::Object(vec![])));
    assert_eq!(parse("-12"), Ok(Value::Number("-12".into())));
    assert_eq!(parse("0.5"), Ok(Value::Number("0.5".into())));
    // Members keep document order, repeats included.
    assert_eq!(
        parse(r#"{"b": "1", "a": 2, "b": null}"#),
        Ok(Value::Object(vec![
            ("b".into(), Value::String("1".into())),
            ("a".into(), Value::Number("2".into())),
            ("b".into(), Value::Null),
        ]))
    );
    for bad in [
        "\"\\ud83d\"",
        "\"\\x\"",
        "\"a",
        "\"\u{1}\"",
        "[1,]",
        "{\"a\"}",
        "{\"a\":1,}",
        "01x",
        "-",
        "1.",
        "tru",
        "nul",
        "[1 2]",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    assert!(parse(&"[".repeat(200_000)).is_err());
    assert!(parse(&format!("{}{}", "[".repeat(20), "]".repeat(20))).is_ok());
    // Conditions of one object are checked in document order.
    let p = parse_policy_json(
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"z":"1","a":"2"}]}"#,
    )
    .unwrap();
    assert_eq!(
        p.conditions,
        vec![
            Condition::Eq {
                field: "z".into(),
                value: "1".into()
            },
            Condition::Eq {
                field: "a".into(),
                value: "2".into()
            }
        ]
    );
}
