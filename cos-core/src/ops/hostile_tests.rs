//! What hostile or broken answers do to the parsers: typed errors, honest messages, limits.

use bytes::Bytes;

use super::test_util::{config, response};
use super::*;
use crate::body::{BodyTruncated, ResponseLimits};
use crate::error::{IntegrityError, TransportErrorKind};

const HELLO_MD5: &str = "\"5d41402abc4b2a76b9719d911017c592\"";

fn crc_hello() -> String {
    crate::checksum::Crc64::checksum(b"hello").to_string()
}

#[test]
fn upload_answers_say_what_was_verified() {
    let put = || PutObject::new("a").with_bytes("hello").verify_md5(true);
    let crc = crc_hello();
    let cases: [(&[(&str, &str)], Verified); 3] = [
        (
            &[("etag", HELLO_MD5), ("x-cos-hash-crc64ecma", &crc)],
            Verified::Both,
        ),
        (&[("etag", HELLO_MD5)], Verified::Md5),
        (
            &[("etag", "\"kms-etag\""), ("x-cos-hash-crc64ecma", &crc)],
            Verified::Crc64,
        ),
    ];
    for (headers, verified) in cases {
        let out = put()
            .parse_response(&response(200, headers, ""), None)
            .unwrap();
        assert_eq!(out.verified, verified, "{headers:?}");
    }
    // By default only the CRC-64 is checked: an MD5 ETag is not compared, and an answer without a CRC-64
    // cannot be verified.
    let out = PutObject::new("a")
        .with_bytes("hello")
        .parse_response(
            &response(
                200,
                &[
                    ("etag", "\"00000000000000000000000000000000\""),
                    ("x-cos-hash-crc64ecma", &crc),
                ],
                "",
            ),
            None,
        )
        .unwrap();
    assert_eq!(out.verified, Verified::Crc64);
    let err = PutObject::new("a")
        .with_bytes("hello")
        .parse_response(&response(200, &[("etag", HELLO_MD5)], ""), None)
        .unwrap_err();
    assert!(
        matches!(err, Error::Integrity(IntegrityError::Unverified { .. })),
        "{err:?}"
    );
}

#[test]
fn an_unverifiable_put_is_an_integrity_error_unless_accepted() {
    for headers in [
        &[][..],
        &[("etag", "\"not-an-md5\"")][..],
        &[("etag", "\"zz\""), ("x-cos-hash-crc64ecma", "not a number")][..],
        &[("x-cos-hash-crc64ecma", "-1")][..],
    ] {
        let r = response(200, headers, "");
        let err = PutObject::new("a")
            .with_bytes("hello")
            .parse_response(&r, None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Integrity(IntegrityError::Unverified { part: None, .. })
            ),
            "{headers:?}: {err:?}"
        );
        assert!(err.to_string().contains("cannot be verified"), "{err}");
        let ok = PutObject::new("a")
            .with_bytes("hello")
            .accept_unverified()
            .parse_response(&r, None)
            .unwrap();
        assert_eq!(ok.verified, Verified::Nothing);
    }
    // A part answered with a non-MD5 ETag and no CRC-64 likewise.
    let r = response(200, &[("etag", "\"abc\"")], "");
    let err = UploadPart::new("a", "u", 3)
        .with_bytes("hello")
        .parse_response(&r, None)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Integrity(IntegrityError::Unverified { part: Some(3), .. })
    ));
}

#[test]
fn server_text_is_escaped_and_cut_in_display() {
    let message = format!("\x1b[2K\rupload ok\n{}", "m".repeat(100_000));
    let body = format!(
        "<Error><Code>AccessDenied\u{7}</Code><Message>{message}</Message><RequestId>r\u{202e}id</RequestId></Error>"
    );
    let r = response(403, &[], &body);
    let err = error_from_response(&r);
    let shown = err.to_string();
    assert!(shown.len() < 1500, "{} chars", shown.len());
    assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
    assert!(shown.contains("\\u{1b}[2K\\rupload ok\\n"), "{shown}");
    assert!(shown.contains("more bytes)"), "{shown}");
    assert!(shown.contains("\\u{202e}"), "{shown}");
    // The full text stays in the typed error.
    let Error::Service(e) = err else { panic!() };
    assert_eq!(e.message, message.trim_end_matches('\n'));
}

#[test]
fn unexpected_and_transport_text_is_escaped() {
    let r = response(502, &[], "\x1b]0;owned\x07<html>");
    let shown = error_from_response(&r).to_string();
    assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
    let t = crate::error::TransportError::new(TransportErrorKind::Other, "a\rb".repeat(3000));
    let shown = Error::Transport(t).to_string();
    assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
    assert!(
        shown.len() < 6000 && shown.ends_with("more bytes)"),
        "{shown:?}"
    );
}

#[test]
fn a_truncated_error_document_says_so() {
    let mut r = response(403, &[], "<Error><Code>AccessDenied</Code><Message>xxxx");
    r.extensions_mut().insert(BodyTruncated { at: 65_536 });
    let err = error_from_response(&r);
    assert!(matches!(err, Error::UnexpectedResponse(_)));
    assert!(
        err.to_string().contains("body cut after 65536 bytes"),
        "{err}"
    );
}

#[test]
fn every_request_carries_its_response_limits() {
    let c = config();
    let put = PutObject::new("a").with_bytes("x").to_request(&c).unwrap();
    assert_eq!(ResponseLimits::of(&put), ResponseLimits::default());
    let list = ListParts::new("a", "u").to_request(&c).unwrap();
    assert_eq!(ResponseLimits::of(&list).success, MAX_LISTING_BODY);
    let uploads = ListMultipartUploads::new().to_request(&c).unwrap();
    assert_eq!(ResponseLimits::of(&uploads).success, MAX_LISTING_BODY);
    let get = GetObject::new("a")
        .range(10, Some(19))
        .to_request(&c)
        .unwrap();
    assert_eq!(ResponseLimits::of(&get).success, 10);
    let get = GetObject::new("a")
        .range(0, Some(u64::MAX))
        .to_request(&c)
        .unwrap();
    assert_eq!(ResponseLimits::of(&get).success, u64::MAX);
    let get = GetObject::new("a").max_len(5).to_request(&c).unwrap();
    assert_eq!(ResponseLimits::of(&get).success, 5);
    for limits in [ResponseLimits::of(&put), ResponseLimits::of(&list)] {
        assert_eq!(limits.error, ResponseLimits::ERROR_BODY);
        let cut = limits.for_status(http::StatusCode::FORBIDDEN);
        assert_eq!((cut.max, cut.cut), (limits.error, true));
        let fail = limits.for_status(http::StatusCode::OK);
        assert_eq!((fail.max, fail.cut), (limits.success, false));
        assert_eq!(fail.too_large().kind, TransportErrorKind::TooLarge);
    }
    let _ = Bytes::new();
}

/// XML bombs and deep nesting: quick-xml does not expand user entities, so a bomb is a parse error.
#[test]
fn xml_bombs_do_not_expand() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><Error><Code>&lol4;</Code><Message>&lol4;</Message></Error>"#;
    let err = error_from_response(&response(500, &[], bomb));
    assert!(err.to_string().len() < 2000);
    let deep = format!("{}{}", "<a>".repeat(20_000), "</a>".repeat(20_000));
    let r = response(
        200,
        &[],
        &format!("<ListPartsResult>{deep}</ListPartsResult>"),
    );
    let _ = ListParts::new("a", "u").parse_response(&r, None);
    let r = response(200, &[], &format!("<InitiateMultipartUploadResult>{deep}"));
    assert!(InitiateMultipartUpload::new("a")
        .parse_response(&r, None)
        .is_err());
}

/// Found by `tests/fuzz.rs`: a DOCTYPE inside element text made quick-xml 0.37 hit `unreachable!()`.
#[test]
fn a_doctype_inside_text_is_refused_not_a_panic() {
    let r = response(403, &[], "<Error><Code>a<!DOCTYPE x>b</Code></Error>");
    assert!(matches!(
        error_from_response(&r),
        Error::UnexpectedResponse(_)
    ));
    let r = response(
        200,
        &[],
        "<ListPartsResult><Bucket>1<!DOCTYPE x>2</Bucket></ListPartsResult>",
    );
    let err = ListParts::new("k", "u")
        .parse_response(&r, None)
        .unwrap_err();
    assert!(err.to_string().contains("markup declarations"), "{err}");
}
