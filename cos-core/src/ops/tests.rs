//! The helpers every operation shares: error answers, excerpts, metadata headers, ETag checks.

use bytes::Bytes;

use super::test_util::{config, response};
use super::*;
use crate::error::{IntegrityError, RequestContext};

fn with_context(mut r: http::Response<Bytes>) -> http::Response<Bytes> {
    r.extensions_mut().insert(RequestContext {
        operation: "HeadObject",
        method: "HEAD".into(),
        key: "k".into(),
        attempt: 2,
    });
    r
}

fn service(e: Error) -> ServiceError {
    match e {
        Error::Service(s) => *s,
        other => panic!("not a service error: {other:?}"),
    }
}

/// The error a body-less answer with request id `rid` and trace id `tid` stands for.
fn body_less(status: u16, code: &str, context: Option<RequestContext>) -> ServiceError {
    ServiceError {
        status,
        code: code.into(),
        message: "no error body (HEAD or empty answer)".into(),
        request_id: Some("rid".into()),
        trace_id: Some("tid".into()),
        context,
        ..ServiceError::default()
    }
}

#[test]
fn a_body_less_cos_error_is_named_from_its_status() {
    let cases = [
        (404, "NoSuchKey"),
        (403, "AccessDenied"),
        (412, "PreconditionFailed"),
        (500, "InternalServerError"),
        (409, "Conflict"),
    ];
    for (status, code) in cases {
        let r = with_context(response(
            status,
            &[("x-cos-request-id", "rid"), ("x-cos-trace-id", "tid")],
            "",
        ));
        let e = service(error_from_response(&r));
        assert_eq!(e, body_less(status, code, response_context(&r)));
        assert_eq!(e.context.unwrap().attempt, 2);
    }
    // Without a request id, with a body, or with a success status it is not a COS error.
    for r in [
        response(404, &[], ""),
        response(
            502,
            &[("x-cos-request-id", "rid")],
            super::test_util::HTML_502,
        ),
        response(200, &[("x-cos-request-id", "rid")], ""),
        response(304, &[("x-cos-request-id", "rid")], ""),
    ] {
        let e = error_from_response(&r);
        assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
    }
}

#[test]
fn an_unexpected_answer_keeps_a_trimmed_redacted_excerpt_and_its_request() {
    let body = format!("  \n<html>x-cos-security-token=TOKEN {}", "y".repeat(400));
    let r = with_context(response(502, &[("x-cos-request-id", "rid")], &body));
    let Error::UnexpectedResponse(u) = error_from_response(&r) else {
        panic!("not unexpected");
    };
    assert!(
        u.excerpt
            .starts_with("<html>x-cos-security-token=<redacted> yyy"),
        "{}",
        u.excerpt
    );
    assert!(!u.excerpt.contains("TOKEN"));
    // 256 bytes of the body, less the white space trimmed at the start and the token's length change.
    assert_eq!(
        u.excerpt.len(),
        256 - 3 - "TOKEN".len() + "<redacted>".len()
    );
    assert_eq!(u.request_id.as_deref(), Some("rid"));
    assert_eq!(u.context.as_ref().map(|c| c.operation), Some("HeadObject"));
    assert_eq!(excerpt(b" short "), "short");
    assert_eq!(response_context(&response(200, &[], "")), None);
}

#[test]
fn comments_and_cdata_are_xml_but_declarations_are_refused() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Doc {
        #[serde(rename = "B")]
        b: String,
    }
    let ok = |text: &str| from_xml::<Doc>(text);
    assert_eq!(
        ok("<A><!-- a comment --><B>1</B></A>").unwrap(),
        Doc { b: "1".into() }
    );
    assert_eq!(
        ok("<A><B><![CDATA[<x>]]></B><!--c--></A>").unwrap(),
        Doc { b: "<x>".into() }
    );
    let refused = ok("<A><!-- c --><B><!DOCTYPE x></B></A>").unwrap_err();
    assert!(refused.contains("markup declarations"), "{refused}");
    assert!(ok("<!ENTITY e \"x\"><A><B>1</B></A>").is_err());
}

#[test]
fn a_listing_may_answer_up_to_8_mib() {
    let req = ListParts::new("k", "up-1").to_request(&config()).unwrap();
    let limits = req
        .extensions()
        .get::<crate::body::ResponseLimits>()
        .unwrap();
    assert_eq!(limits.success, 8 * 1024 * 1024);
    assert_eq!(MAX_LISTING_BODY, 8_388_608);
}

fn meta(pairs: &[(&str, &str)]) -> Result<HeaderMap, Error> {
    let options = ObjectOptions {
        metadata: pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        ..ObjectOptions::default()
    };
    let mut h = HeaderMap::new();
    options.apply(&mut h).map(|()| h)
}

#[test]
fn metadata_names_are_letters_digits_dash_and_underscore_within_2_kb() {
    let h = meta(&[("x-cos-meta-Project", "p"), ("a-b_9", "v")]).unwrap();
    assert_eq!(h["x-cos-meta-project"], "p");
    assert_eq!(h["x-cos-meta-a-b_9"], "v");
    for bad in ["", "x-cos-meta-", "a b", "a.b", "ä"] {
        assert_eq!(
            meta(&[(bad, "v")]).unwrap_err(),
            Error::InvalidInput(InvalidInput::MetadataName(
                bad.strip_prefix("x-cos-meta-").unwrap_or(bad).into()
            )),
            "{bad:?}"
        );
    }
    // Counted as the full header name plus the value: "x-cos-meta-" (11) + 1 + value.
    let value = "v".repeat(2048 - 12);
    assert!(meta(&[("a", &value)]).is_ok());
    let over = format!("{value}v");
    assert_eq!(
        meta(&[("a", &over)]).unwrap_err(),
        Error::InvalidInput(InvalidInput::MetadataTooLarge(2049))
    );
    assert_eq!(
        meta(&[("ab", "12"), ("c", "3")]).map(|h| h.len()),
        Ok(2),
        "two small fields"
    );
    let two = "v".repeat(1100);
    assert_eq!(
        meta(&[("ab", &two), ("cd", &two)]).unwrap_err(),
        Error::InvalidInput(InvalidInput::MetadataTooLarge(2 * (11 + 2 + 1100)))
    );
}

#[test]
fn an_etag_that_is_not_an_md5_is_not_compared() {
    let sent = crate::checksum::SentDigest {
        md5: Some([0; 16]),
        crc64: 0,
        len: 1,
    };
    let zeros = "0".repeat(32);
    assert_eq!(
        check_etag(Some(1), &format!("\"{zeros}\""), Some(&sent)),
        Ok(())
    );
    assert_eq!(check_etag(Some(1), &"z".repeat(32), Some(&sent)), Ok(()));
    assert_eq!(check_etag(Some(1), &"1".repeat(31), Some(&sent)), Ok(()));
    assert_eq!(check_etag(Some(1), &"1".repeat(32), None), Ok(()));
    assert_eq!(
        check_etag(Some(1), &"1".repeat(32), Some(&sent)),
        Err(Error::Integrity(IntegrityError::Etag {
            part: Some(1),
            expected: zeros,
            actual: "1".repeat(32),
        }))
    );
    assert_eq!(Verified::Both.to_string(), "ETag/MD5 and CRC-64 verified");
    assert_eq!(Verified::Md5.to_string(), "ETag/MD5 verified");
    assert_eq!(Verified::Crc64.to_string(), "CRC-64 verified");
    assert_eq!(Verified::Nothing.to_string(), "not verified");
}

#[test]
fn the_documented_limits() {
    const GIB: u64 = 1024 * 1024 * 1024;
    assert_eq!(MAX_COPY_OBJECT_SIZE, 5 * GIB);
    assert_eq!(MAX_APPEND_OBJECT_SIZE, 5 * GIB);
    assert_eq!(MAX_PART_SIZE, 5 * GIB);
    assert_eq!(MAX_PART_NUMBER, 10_000);
    assert_eq!(crate::post_policy::MAX_POST_SIZE, 5 * GIB);
    assert_eq!(MAX_CORS_XML_BYTES, 65_536);
    assert_eq!(MAX_CORS_RULES, 100);
    assert_eq!(MAX_ERROR_BODY, 65_536);
}

#[test]
fn an_append_says_what_it_appends_where() {
    let op = AppendObject::new("logs/a", 7).with_bytes("xyz");
    assert_eq!((op.key(), op.position(), op.body().len()), ("logs/a", 7, 3));
}

#[test]
fn a_copy_source_says_what_it_reads() {
    let same = CopySource::key("src/a");
    assert_eq!(
        (
            same.source_key(),
            same.source_bucket(),
            same.source_version_id()
        ),
        ("src/a", None, None)
    );
    let other = CopySource::key("b")
        .bucket("other-1250000000", "ap-beijing")
        .version_id("v1");
    assert_eq!(
        (other.source_bucket(), other.source_version_id()),
        (Some(("other-1250000000", "ap-beijing")), Some("v1"))
    );
    assert_eq!(
        CopySource::key("b").version_id("").source_version_id(),
        None
    );
}

#[test]
fn a_copied_part_is_one_byte_up_to_5_gib() {
    let part = |first: u64, last: u64| {
        UploadPartCopy::new("big", "u1", 2, CopySource::key("s"))
            .range(first, last)
            .to_request(&config())
    };
    assert_eq!(
        UploadPartCopy::new("big", "u1", 2, CopySource::key("s")).part_number(),
        2
    );
    let one = part(7, 7).unwrap();
    assert_eq!(one.headers()["x-cos-copy-source-range"], "bytes=7-7");
    let five_gib = 5u64 << 30;
    assert!(part(10, 10 + five_gib - 1).is_ok());
    assert_eq!(
        part(10, 10 + five_gib).unwrap_err(),
        Error::InvalidInput(InvalidInput::Size {
            what: "copied part",
            size: five_gib + 1,
            limit: "at most 5 GiB",
        })
    );
}

#[test]
fn deletes_name_a_version_and_take_1_to_1000_keys() {
    let req = DeleteObject::new("a")
        .version_id("v1")
        .to_request(&config())
        .unwrap();
    assert_eq!(req.uri().query(), Some("versionId=v1"));
    let req = DeleteObject::new("a")
        .version_id("")
        .to_request(&config())
        .unwrap();
    assert_eq!(req.uri().query(), None);
    let keys = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
    assert!(DeleteObjects::new(keys(MAX_DELETE_KEYS))
        .to_request(&config())
        .is_ok());
    assert!(DeleteObjects::new(keys(1001))
        .to_request(&config())
        .is_err());
    assert_eq!(MAX_DELETE_KEYS, 1000);
}

#[test]
fn a_cors_configuration_may_hold_100_rules_and_64_kib_of_xml() {
    let rule = || CorsRule::new().allowed_origin("*").allowed_method("GET");
    assert!(CorsConfiguration::new(vec![rule(); 100]).validate().is_ok());
    // Pad one header name so that the document is exactly 64 KiB, then one byte more.
    let sized = |pad: usize| CorsConfiguration::new(vec![rule().allowed_header("h".repeat(pad))]);
    let base = sized(1).to_xml().len();
    let exact = sized(1 + 65_536 - base);
    assert_eq!(exact.to_xml().len(), 65_536);
    assert!(exact.validate().is_ok());
    let over = sized(2 + 65_536 - base);
    let err = over.validate().unwrap_err();
    assert!(err.contains("65537 bytes"), "{err}");
    let vary = |v: &str| {
        CorsConfiguration::from_xml(&format!(
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule><ResponseVary>{v}</ResponseVary></CORSConfiguration>"
        ))
        .map(|c| c.response_vary)
    };
    assert_eq!(vary("False"), Ok(Some(false)));
    assert_eq!(vary("true"), Ok(Some(true)));
    assert_eq!(vary(""), Ok(None));
    assert!(vary("maybe").is_err());
}

#[test]
fn a_whole_get_body_is_crc_checked_unless_transformed_skipped_or_partial() {
    let crc = crate::checksum::Crc64::checksum(b"hello").to_string();
    let answer = |status: u16, extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("content-length", "5"),
            ("x-cos-hash-crc64ecma", crc.as_str()),
        ];
        headers.extend_from_slice(extra);
        response(status, &headers, "hellO")
    };
    let parse = |get: GetObject, r: &http::Response<Bytes>| get.parse_response(r, None);
    assert!(matches!(
        parse(GetObject::new("a"), &answer(200, &[])),
        Err(Error::Integrity(IntegrityError::Crc64 { part: None, .. }))
    ));
    assert!(parse(
        GetObject::new("a").response_content_type("text/plain"),
        &answer(200, &[])
    )
    .is_err());
    assert!(parse(GetObject::new("a").skip_crc64_check(), &answer(200, &[])).is_ok());
    assert!(parse(
        GetObject::new("a").response_content_encoding("gzip"),
        &answer(200, &[])
    )
    .is_ok());
    assert!(parse(
        GetObject::new("a"),
        &answer(200, &[("content-encoding", "gzip")])
    )
    .is_ok());
    let partial = answer(206, &[("content-range", "bytes 0-4/10")]);
    assert_eq!(parse(GetObject::new("a"), &partial).unwrap().body, "hellO");
}

#[test]
fn an_object_type_is_read_in_any_case() {
    assert_eq!(ObjectType::parse(Some(" Normal ")), ObjectType::Normal);
    assert_eq!(
        ObjectType::parse(Some("APPENDABLE")),
        ObjectType::Appendable
    );
    assert_eq!(ObjectType::parse(None), ObjectType::Normal);
    assert_eq!(ObjectType::parse(Some("x")), ObjectType::Other("x".into()));
}

#[test]
fn a_body_less_head_error_keeps_its_ids() {
    let head = HeadObject::new("docs/a");
    assert_eq!(head.key(), "docs/a");
    for (status, code) in [
        (403, "AccessDenied"),
        (304, "NotModified"),
        (404, "NoSuchKey"),
    ] {
        let r = response(
            status,
            &[("x-cos-request-id", "rid"), ("x-cos-trace-id", "tid")],
            "",
        );
        let e = service(head.parse_response(&r, None).unwrap_err());
        assert_eq!(e, body_less(status, code, None));
    }
}

#[test]
fn multipart_operations_say_what_they_send() {
    let init = InitiateMultipartUpload::new("big").content_type("text/plain");
    assert_eq!(init.key(), "big");
    assert_eq!(
        init.object_options().content_type.as_deref(),
        Some("text/plain")
    );
    let part = UploadPart::new("big", "up-1", 3);
    assert_eq!(
        (part.key(), part.upload_id(), part.part_number()),
        ("big", "up-1", 3)
    );
    let parts = vec![CompletedPart {
        part_number: 1,
        etag: "\"e\"".into(),
    }];
    let complete = CompleteMultipartUpload::new("big", "up-1", parts.clone());
    assert_eq!(
        (complete.key(), complete.upload_id(), complete.parts()),
        ("big", "up-1", parts.as_slice())
    );
}

#[test]
fn a_part_or_a_put_holds_up_to_5_gib() {
    let five_gib = 5u64 << 30;
    let part = |len| {
        UploadPart::new("big", "up-1", 1)
            .with_source(0, len)
            .to_request(&config())
    };
    assert!(part(five_gib).is_ok());
    assert!(matches!(
        part(five_gib + 1),
        Err(Error::InvalidInput(InvalidInput::Size { what: "part", .. }))
    ));
    let put = |len| PutObject::new("a").with_source(len).to_request(&config());
    assert!(put(five_gib).is_ok());
    assert!(put(five_gib + 1).is_err());
    assert_eq!(super::put::MAX_PUT_SIZE, five_gib);
}

#[test]
fn an_owner_with_only_a_display_name_is_kept() {
    let page = |owner: &str| {
        response(
            200,
            &[],
            &format!("<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>{owner}<IsTruncated>false</IsTruncated></ListPartsResult>"),
        )
    };
    let out = ListParts::new("k", "u")
        .parse_response(
            &page("<Owner><ID></ID><DisplayName>d</DisplayName></Owner>"),
            None,
        )
        .unwrap();
    assert_eq!(
        out.owner,
        Some(Owner {
            id: String::new(),
            display_name: Some("d".into())
        })
    );
    let out = ListParts::new("k", "u")
        .parse_response(&page("<Owner><ID></ID></Owner>"), None)
        .unwrap();
    assert_eq!(out.owner, None);
}

#[test]
fn add_meta_md5_stores_the_body_md5() {
    let req = PutObject::new("a")
        .with_bytes("hello")
        .add_meta_md5()
        .to_request(&config())
        .unwrap();
    assert_eq!(
        req.headers()["x-cos-meta-md5"],
        "5d41402abc4b2a76b9719d911017c592"
    );
    assert_eq!(PutObject::new("a").key(), "a");
}

#[test]
fn a_lenient_abort_takes_only_no_such_upload_as_done() {
    let answer = |status: u16, code: &str| {
        response(
            status,
            &[("x-cos-request-id", "r-1")],
            &format!("<Error><Code>{code}</Code><Message>m</Message></Error>"),
        )
    };
    let lenient = AbortMultipartUpload::new("k", "u").missing_ok();
    let out = lenient
        .parse_response(&answer(404, "NoSuchUpload"), None)
        .unwrap();
    assert!(out.already_gone);
    assert_eq!(out.request_id.as_deref(), Some("r-1"));
    assert_eq!(
        lenient
            .parse_response(&answer(404, "NoSuchKey"), None)
            .unwrap_err()
            .code(),
        Some("NoSuchKey")
    );
    assert!(AbortMultipartUpload::new("k", "u")
        .parse_response(&answer(404, "NoSuchUpload"), None)
        .is_err());
}

#[test]
fn a_body_less_head_error_needs_no_request_id() {
    for (status, code) in [
        (403, "AccessDenied"),
        (404, "NoSuchKey"),
        (412, "PreconditionFailed"),
    ] {
        let e = HeadObject::new("k")
            .parse_response(&response(status, &[], ""), None)
            .unwrap_err();
        assert_eq!((e.code(), e.request_id()), (Some(code), None), "{status}");
    }
}

#[test]
fn a_content_md5_set_after_the_body_still_gets_the_etag_checked() {
    let streamed = PutObject::new("a")
        .with_source(5)
        .content_md5("XUFAKrxLKna5cZ2REBfFkg==")
        .to_request(&config())
        .unwrap();
    assert!(
        matches!(streamed.body(), RequestBody::Source { md5: true, .. }),
        "{:?}",
        streamed.body()
    );
    let put = PutObject::new("a")
        .with_bytes("hello")
        .content_md5("XUFAKrxLKna5cZ2REBfFkg==");
    let ok = response(200, &[("etag", "\"5d41402abc4b2a76b9719d911017c592\"")], "");
    assert_eq!(
        put.parse_response(&ok, None).unwrap().verified,
        Verified::Md5
    );
    let wrong = response(200, &[("etag", "\"00000000000000000000000000000000\"")], "");
    assert!(matches!(
        put.parse_response(&wrong, None),
        Err(Error::Integrity(IntegrityError::Etag { .. }))
    ));
}
