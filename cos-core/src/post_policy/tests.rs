use super::*;
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

fn invalid(e: Result<PostForm, Error>) -> InvalidInput {
    match e {
        Err(Error::InvalidInput(i)) => i,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

// ----- The published example (COS API documentation, "POST Object", signature protection) -----

const DOC_POLICY_B64: &str = "ewogICAgImV4cGlyYXRpb24iOiAiMjAxOS0wOC0zMFQwOTozODoxMi40MTRaIiwKICAgICJjb25kaXRpb25zIjogWwogICAgICAgIHsgImFjbCI6ICJkZWZhdWx0IiB9LAogICAgICAgIHsgImJ1Y2tldCI6ICJleGFtcGxlYnVja2V0LTEyNTAwMDAwMDAiIH0sCiAgICAgICAgWyAic3RhcnRzLXdpdGgiLCAiJGtleSIsICJmb2xkZXIvc3ViZm9sZGVyLyIgXSwKICAgICAgICBbICJzdGFydHMtd2l0aCIsICIkQ29udGVudC1UeXBlIiwgImltYWdlLyIgXSwKICAgICAgICBbICJzdGFydHMtd2l0aCIsICIkc3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiLCAiaHR0cHM6Ly9teS53ZWJzaXRlLyIgXSwKICAgICAgICBbICJlcSIsICIkeC1jb3Mtc2VydmVyLXNpZGUtZW5jcnlwdGlvbiIsICJBRVMyNTYiIF0sCiAgICAgICAgeyAicS1zaWduLWFsZ29yaXRobSI6ICJzaGExIiB9LAogICAgICAgIHsgInEtYWsiOiAiQUtJRFFqejNsdG9tcFZqQm5pNUxpdGtXSEZsRnB3a245VTVxIiB9LAogICAgICAgIHsgInEtc2lnbi10aW1lIjogIjE1NjcxNTA2OTI7MTU2NzE1Nzg5MiIgfQogICAgXQp9";
const DOC_SECRET_KEY: &str = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz";
const DOC_KEY_TIME: KeyTime = KeyTime {
    start: 1_567_150_692,
    end: 1_567_157_892,
};

fn doc_policy_text() -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(DOC_POLICY_B64)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn signature_matches_published_example() {
    let text = doc_policy_text();
    assert_eq!(
        sign_key(DOC_SECRET_KEY, &DOC_KEY_TIME),
        "39acc8c9f34ba5b19bce4e965b370cd3f62d2fba"
    );
    assert_eq!(
        hex(&Sha1::digest(text.as_bytes())),
        "d5d903b8360468bc81c1311f134989bc8c8b5b89"
    );
    assert_eq!(
        sign_policy(DOC_SECRET_KEY, &DOC_KEY_TIME, &text),
        "7758dc9a832e9d301dca704cacbf9d9f8172fdef"
    );
}

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
fn policy_json_and_fields() {
    let form = full_policy().sign(&config(), t(NOW)).unwrap();
    let kt = format!("{};{}", NOW - 60, NOW + 3600);
    let expected = format!(
        concat!(
            r#"{{"expiration":"2023-11-14T23:13:20.000Z","conditions":["#,
            r#"{{"q-sign-algorithm":"sha1"}},{{"q-ak":"AKIDEXAMPLE"}},{{"q-sign-time":"{kt}"}},"#,
            r#"{{"bucket":"examplebucket-1250000000"}},["starts-with","$key","uploads/"],"#,
            r#"["content-length-range",1,1000],{{"Content-Type":"image/png"}},"#,
            r#"{{"success_action_status":"201"}},{{"success_action_redirect":"https://app.example/done"}},"#,
            r#"{{"x-cos-meta-owner":"alice"}},{{"x-cos-storage-class":"STANDARD_IA"}},{{"acl":"private"}},"#,
            r#"{{"Cache-Control":"max-age=60"}}]}}"#
        ),
        kt = kt
    );
    assert_eq!(form.policy_json(), expected);
    // Valid JSON, per an independent parser.
    let v: serde_json::Value = serde_json::from_str(form.policy_json()).unwrap();
    assert_eq!(v["conditions"].as_array().unwrap().len(), 13);
    let names: Vec<&str> = form.fields().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "key",
            "policy",
            "q-sign-algorithm",
            "q-ak",
            "q-key-time",
            "q-signature",
            "Content-Type",
            "success_action_status",
            "success_action_redirect",
            "x-cos-meta-owner",
            "x-cos-storage-class",
            "acl",
            "Cache-Control"
        ]
    );
    assert_eq!(form.field("key"), Some("uploads/${filename}"));
    assert_eq!(form.field("q-key-time"), Some(kt.as_str()));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(form.field("policy").unwrap())
            .unwrap(),
        form.policy_json().as_bytes()
    );
    assert_eq!(
        form.field("q-signature").unwrap(),
        sign_policy(
            "secret-key",
            &KeyTime {
                start: NOW - 60,
                end: NOW + 3600
            },
            form.policy_json()
        )
    );
    assert_eq!(
        form.url(),
        "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/"
    );
    assert_eq!(form.expiration(), "2023-11-14T23:13:20.000Z");
    assert_eq!(form.content_length_range(), Some((1, 1000)));
}

#[test]
fn clock_offset_moves_key_time() {
    let mut c = config();
    c.clock_offset_secs = 30;
    let form = PostPolicy::new(t(NOW + 100))
        .key("a")
        .sign(&c, t(NOW))
        .unwrap();
    assert_eq!(
        form.field("q-key-time"),
        Some(format!("{};{}", NOW - 30, NOW + 100).as_str())
    );
    c.clock_offset_secs = 1000;
    assert!(matches!(
        invalid(PostPolicy::new(t(NOW + 100)).key("a").sign(&c, t(NOW))),
        InvalidInput::Parameter {
            name: "expiration",
            ..
        }
    ));
}

#[test]
fn iso8601() {
    assert_eq!(format_iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_iso8601(951_782_400), "2000-02-29T00:00:00.000Z");
    assert_eq!(format_iso8601(4_102_444_799), "2099-12-31T23:59:59.000Z");
    for secs in (0..5_000_000_000u64).step_by(12_345_679) {
        assert_eq!(
            parse_iso8601(&format_iso8601(secs)),
            Some(secs * 1000),
            "{secs}"
        );
    }
    assert_eq!(
        parse_iso8601("2019-08-30T09:38:12.4Z"),
        Some(1_567_157_892_400)
    );
    assert_eq!(
        parse_iso8601("2019-08-30T09:38:12.41499Z"),
        Some(1_567_157_892_414)
    );
    for bad in [
        "2019-08-30T09:38:12",
        "2019-08-30T09:38:12.Z",
        "2019-08-30T09:38:12+08:00",
        "2019-13-30T09:38:12Z",
        "2019-08-30T24:38:12Z",
        "1969-12-31T23:59:59Z",
        "2019-8-30T09:38:12.000Z",
        "２019-08-30T09:38:12Z",
    ] {
        assert_eq!(parse_iso8601(bad), None, "{bad}");
    }
}

// ----- The form as data: serde, multipart -----

#[test]
fn serializes_for_browsers() {
    let form = PostPolicy::new(t(NOW + 10))
        .key("a.txt")
        .content_type_starts_with("text/")
        .content_length_range(0, 9)
        .sign(&config(), t(NOW))
        .unwrap();
    let v = serde_json::to_value(&form).unwrap();
    assert_eq!(v["url"], form.url());
    assert_eq!(v["fields"][0], serde_json::json!(["key", "a.txt"]));
    assert_eq!(v["fields"].as_array().unwrap().len(), form.fields().len());
    assert_eq!(
        v["starts_with"],
        serde_json::json!([["Content-Type", "text/"]])
    );
    assert_eq!(v["expiration"], form.expiration());
    assert_eq!(v["content_length_range"], serde_json::json!([0, 9]));
    assert!(v.get("policy_json").is_none());
    let plain = PostPolicy::new(t(NOW + 10))
        .key("a")
        .sign(&config(), t(NOW))
        .unwrap();
    assert!(serde_json::to_value(&plain)
        .unwrap()
        .get("content_length_range")
        .is_none());
}

#[test]
fn request_size_checks() {
    let form = PostPolicy::new(t(NOW + 100))
        .key("k")
        .content_length_range(2, 4)
        .sign(&config(), t(NOW))
        .unwrap();
    let post = PostObject::new(form, "B", "f", "t/p").unwrap();
    for len in [2, 4] {
        assert!(post.request(len).is_ok());
    }
    for len in [1, 5] {
        assert!(matches!(
            post.request(len),
            Err(Error::InvalidInput(InvalidInput::Size { .. }))
        ));
    }
    let open = PostPolicy::new(t(NOW + 100))
        .key("k")
        .sign(&config(), t(NOW))
        .unwrap();
    let post = PostObject::new(open, "B", "f", "t/p").unwrap();
    assert!(post.request(MAX_POST_SIZE).is_ok());
    assert!(post.request(MAX_POST_SIZE + 1).is_err());
}

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
fn parses_errors() {
    let post = post_object();
    let err = "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy</Message>\
               <RequestId>r1</RequestId></Error>";
    let e = post
        .parse_response(&response(403, &[], err), None)
        .unwrap_err();
    assert_eq!(
        (e.code(), e.status(), e.request_id()),
        (Some("AccessDenied"), Some(403), Some("r1"))
    );
    // An <Error> under 200 is still an error.
    let e = post
        .parse_response(&response(200, &[], err), None)
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"));
    // A proxy's HTML page.
    let e = post
        .parse_response(&response(502, &[], "<html>bad gateway</html>"), None)
        .unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse(_)));
    assert!(e.is_retryable());
    // A 201 whose body is not a PostResponse.
    let e = post
        .parse_response(&response(201, &[], "<Other/>"), None)
        .unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse(_)));
}

#[test]
fn condition_json_text_is_pinned() {
    // The signature covers the exact text: compact, members in order, only `"`, `\` and control
    // characters escaped, non-ASCII as is.
    let eq = Condition::Eq {
        field: "x-cos-meta-a".into(),
        value: "q\"b\\s\tn雪😀/".into(),
    };
    assert_eq!(eq.to_string(), r#"{"x-cos-meta-a":"q\"b\\s\tn雪😀/"}"#);
    let sw = Condition::StartsWith {
        field: "key".into(),
        prefix: "in/\u{1}".into(),
    };
    assert_eq!(sw.to_string(), r#"["starts-with","$key","in/\u0001"]"#);
    let r = Condition::ContentLengthRange { min: 0, max: 10 };
    assert_eq!(r.to_string(), r#"["content-length-range",0,10]"#);
    // Every character class round-trips.
    let s: String = (0u32..0x300)
        .filter_map(char::from_u32)
        .chain("雪😀".chars())
        .collect();
    let c = Condition::Eq {
        field: "f".into(),
        value: s.clone(),
    };
    let v: serde_json::Value = serde_json::from_str(&c.to_string()).unwrap();
    assert_eq!(v["f"], serde_json::Value::String(s));
}

fn plan_error(policy: PostPolicy) -> InvalidInput {
    invalid(policy.sign(&config(), t(NOW)))
}

fn keyed() -> PostPolicy {
    PostPolicy::new(t(NOW + 100)).key("k")
}

#[test]
fn the_key_condition_is_checked_like_a_key() {
    // An empty prefix allows any key; a prefix must itself be a valid key.
    let any = PostPolicy::new(t(NOW + 100))
        .key_starts_with("")
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(any.starts_with(), &[] as &[(String, String)]);
    assert_eq!(any.field("key"), Some("${filename}"));
    assert!(matches!(
        plan_error(PostPolicy::new(t(NOW + 100)).key_starts_with("/abs")),
        InvalidInput::Key { .. }
    ));
    assert!(matches!(
        plan_error(PostPolicy::new(t(NOW + 100)).key("dir/")),
        InvalidInput::Key { .. }
    ));
}

#[test]
fn a_content_length_range_may_be_a_single_size() {
    let form = keyed()
        .content_length_range(5, 5)
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(form.content_length_range(), Some((5, 5)));
    assert!(matches!(
        plan_error(keyed().content_length_range(6, 5)),
        InvalidInput::Parameter {
            name: "content-length-range",
            ..
        }
    ));
    // A POST Object takes at most 5 GiB.
    let post = PostObject::new(keyed().sign(&config(), t(NOW)).unwrap(), "B", "f", "t/p").unwrap();
    assert!(post.request(5 << 30).is_ok());
    assert!(post.request((5 << 30) + 1).is_err());
}

#[test]
fn a_redirect_must_be_an_http_url() {
    for bad in ["https://a b", "ftp://h/x", "/relative"] {
        assert!(
            matches!(
                plan_error(keyed().success_action_redirect(bad)),
                InvalidInput::Parameter {
                    name: "success_action_redirect",
                    ..
                }
            ),
            "{bad}"
        );
    }
    for good in ["http://h/x", "https://h/x?y=1"] {
        assert!(keyed()
            .success_action_redirect(good)
            .sign(&config(), t(NOW))
            .is_ok());
    }
}

#[test]
fn policy_metadata_names_are_checked_and_counted_like_headers() {
    for bad in ["", "x-cos-meta-", "a b", "a.b"] {
        assert!(
            matches!(
                plan_error(keyed().metadata(bad, "v")),
                InvalidInput::MetadataName(_)
            ),
            "{bad:?}"
        );
    }
    let form = keyed()
        .metadata("A-b_9", "v")
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(form.field("x-cos-meta-a-b_9"), Some("v"));
    // "x-cos-meta-a" (12 bytes) + the value: 2,048 bytes pass, 2,049 do not.
    let value = "v".repeat(2048 - 12);
    assert!(keyed()
        .metadata("a", &value)
        .sign(&config(), t(NOW))
        .is_ok());
    assert_eq!(
        plan_error(keyed().metadata("a", format!("{value}v"))),
        InvalidInput::MetadataTooLarge(2049)
    );
    let half = "v".repeat(1100);
    assert_eq!(
        plan_error(keyed().metadata("ab", &half).metadata("cd", &half)),
        InvalidInput::MetadataTooLarge(2 * (13 + 1100))
    );
}

#[test]
fn extra_fields_need_a_plain_name_that_no_method_owns() {
    for bad in [
        "",
        "a b",
        "a$b",
        "a\"b",
        "a\\b",
        "policy",
        "Key",
        "x-cos-meta-a",
        "X-Cos-Meta-B",
    ] {
        assert!(
            matches!(
                plan_error(keyed().field(bad, "v")),
                InvalidInput::Parameter { name: "field", .. }
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        plan_error(keyed().field("a", "1").field("A", "2")),
        InvalidInput::Parameter { name: "field", .. }
    ));
    let form = keyed()
        .field("x-cos-traffic-limit", "1048576")
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(form.field("x-cos-traffic-limit"), Some("1048576"));
}

#[test]
fn condition_values_may_hold_a_tab_but_no_other_control_character() {
    let form = keyed()
        .content_type("text/plain;\tcharset=utf-8")
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(
        form.field("Content-Type"),
        Some("text/plain;\tcharset=utf-8")
    );
    assert_eq!(
        plan_error(keyed().metadata("a", "x\ny")),
        InvalidInput::HeaderValue("x-cos-meta-a".into())
    );
    assert_eq!(
        plan_error(keyed().field_starts_with("x-cos-tag", "\u{7f}")),
        InvalidInput::HeaderValue("x-cos-tag".into())
    );
    assert_eq!(
        plan_error(keyed().content_type("a\rb")),
        InvalidInput::HeaderValue("Content-Type".into())
    );
}

#[test]
fn the_form_is_framed_field_by_field_then_the_file_header() {
    let mut form = keyed()
        .content_type_starts_with("image/")
        .sign(&config(), t(NOW))
        .unwrap();
    assert_eq!(
        form.starts_with(),
        &[("Content-Type".to_string(), "image/".to_string())]
    );
    form.set("Content-Type", "image/png");
    let boundary = PostForm::boundary(255);
    assert_eq!(boundary, format!("----cos-rs-{}ff", "0".repeat(30)));
    assert_eq!(
        PostForm::multipart_content_type(&boundary),
        format!("multipart/form-data; boundary={boundary}")
    );
    let head = form
        .multipart_head(&boundary, "a\"b\r\n.png", "image/png")
        .unwrap();
    let mut want = String::new();
    for (name, value) in form.fields() {
        want += &format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        );
    }
    want += &format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b%0D%0A.png\"\r\nContent-Type: image/png\r\n\r\n"
    );
    assert_eq!(String::from_utf8(head.to_vec()).unwrap(), want);
    assert_eq!(
        form.multipart_tail(&boundary),
        format!("\r\n--{boundary}--\r\n")
    );
    let post =
        PostObject::new(form.clone(), boundary.clone(), "a\"b\r\n.png", "image/png").unwrap();
    assert_eq!(post.head(), &head);
    assert_eq!(post.boundary(), boundary);
    assert_eq!(
        post.content_length(10),
        head.len() as u64 + 10 + post.tail().len() as u64
    );
}

#[test]
fn framing_refuses_what_would_break_the_multipart_body() {
    let form = keyed().sign(&config(), t(NOW)).unwrap();
    let b = "B0undary";
    let head = |form: &PostForm, boundary: &str, file: &str, ct: &str| {
        form.multipart_head(boundary, file, ct).unwrap_err()
    };
    // The boundary: 1..=70 characters of a restricted set.
    assert!(form.multipart_head(&"b".repeat(70), "f", "t/p").is_ok());
    assert!(form.multipart_head("'()+_,-./:=?", "f", "t/p").is_ok());
    for bad in [
        String::new(),
        "b".repeat(71),
        "a b".into(),
        "a;b".into(),
        "ä".into(),
    ] {
        assert!(
            matches!(
                head(&form, &bad, "f", "t/p"),
                Error::InvalidInput(InvalidInput::Parameter {
                    name: "boundary",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        head(&form, b, "", "t/p"),
        Error::InvalidInput(InvalidInput::Parameter {
            name: "filename",
            ..
        })
    ));
    for ct in ["", "text/plain\r\nX: y"] {
        assert_eq!(
            head(&form, b, "f", ct),
            Error::InvalidInput(InvalidInput::HeaderValue("file Content-Type".into()))
        );
    }
    for name in ["", "a\"b", "a\nb"] {
        let mut f = form.clone();
        f.set(name, "v");
        assert!(
            matches!(
                head(&f, b, "f", "t/p"),
                Error::InvalidInput(InvalidInput::Parameter { name: "field", .. })
            ),
            "{name:?}"
        );
    }
    let mut f = form.clone();
    f.set("x-cos-tag", format!("a--{b}z"));
    assert!(matches!(
        head(&f, b, "f", "t/p"),
        Error::InvalidInput(InvalidInput::Parameter {
            name: "boundary",
            ..
        })
    ));
    assert!(matches!(
        head(&form, b, &format!("--{b}.png"), "t/p"),
        Error::InvalidInput(InvalidInput::Parameter {
            name: "boundary",
            ..
        })
    ));
    // The signature never shows in Debug.
    let debug = format!("{form:?}");
    let sig = form.field("q-signature").unwrap();
    assert!(
        !debug.contains(sig) && debug.contains("<redacted>"),
        "{debug}"
    );
}

#[test]
fn a_redirect_names_the_bucket_key_and_etag_it_stored() {
    let post = post_object();
    assert_eq!(post.tail(), format!("\r\n--B--\r\n"));
    let location =
        "https://app.example/done?x=1&bucket=examplebucket-1250000000&key=a%2Fb.png&etag=%22e1%22";
    let out = post
        .parse_response(&response(303, &[("location", location)], ""), None)
        .unwrap();
    assert_eq!(out.status, 303);
    assert_eq!(out.bucket.as_deref(), Some(BUCKET));
    assert_eq!(out.key.as_deref(), Some("a/b.png"));
    assert_eq!(out.etag.as_deref(), Some("\"e1\""));
    assert_eq!(out.location.as_deref(), Some(location));
    assert!(matches!(
        post.parse_response(&response(303, &[], ""), None),
        Err(Error::UnexpectedResponse(_))
    ));
}
