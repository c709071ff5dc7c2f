//! Cleanup aborts: `missing_ok` turns 404 NoSuchUpload into success, and nothing else.

use bytes::Bytes;
use cos_core::ops::{AbortMultipartUpload, Operation};

fn answer(status: u16, code: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header("x-cos-request-id", "r-1")
        .body(Bytes::from(format!(
            "<Error><Code>{code}</Code><Message>m</Message><RequestId>r-1</RequestId></Error>"
        )))
        .unwrap()
}

#[test]
fn missing_ok_accepts_only_no_such_upload() {
    let plain = AbortMultipartUpload::new("k", "u");
    let lenient = AbortMultipartUpload::new("k", "u").missing_ok();
    let gone = answer(404, "NoSuchUpload");
    assert_eq!(
        plain.parse_response(&gone, None).unwrap_err().code(),
        Some("NoSuchUpload")
    );
    let out = lenient.parse_response(&gone, None).unwrap();
    assert!(out.already_gone);
    assert_eq!(out.request_id.as_deref(), Some("r-1"));
    let denied = answer(403, "AccessDenied");
    assert_eq!(
        lenient.parse_response(&denied, None).unwrap_err().code(),
        Some("AccessDenied")
    );
    let ok = http::Response::builder()
        .status(204)
        .body(Bytes::new())
        .unwrap();
    assert!(!lenient.parse_response(&ok, None).unwrap().already_gone);
}
