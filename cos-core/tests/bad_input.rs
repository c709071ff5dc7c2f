//! Bad input is refused with a specific `InvalidInput` before anything could be sent: every operation case
//! goes through `OneShot::new`, which builds (and so validates) the request; a task that fails there never
//! exists, so it cannot emit a `Transmit`.

use cos_core::ops::{
    AbortMultipartUpload, AppendObject, CompleteMultipartUpload, CompletedPart, GetObject,
    HeadObject, InitiateMultipartUpload, ListMultipartUploads, ListParts, Operation, PutObject,
    UploadPart,
};
use cos_core::task::OneShot;
use cos_core::{Config, Credentials, Endpoint, Error, InvalidInput};

const BUCKET: &str = "examplebucket-1250000000";
const REGION: &str = "ap-guangzhou";

fn config() -> Config {
    Config::new(BUCKET, REGION, Credentials::new("AKIDEXAMPLE", "secret")).unwrap()
}

/// The error `OneShot::new` gives for an operation (panics if it accepts it).
fn refused<O: Operation>(op: O) -> Error {
    match OneShot::new(op, config()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

fn config_error(bucket: &str, region: &str, id: &str, key: &str) -> Error {
    Config::new(bucket, region, Credentials::new(id, key)).unwrap_err()
}

fn endpoint_error(url: &str) -> Error {
    Endpoint::custom(url)
        .map(|e| config().with_endpoint(e).map(|_| ()))
        .map_err(Error::from)
        .and_then(|r| r)
        .unwrap_err()
}

fn part(n: u32) -> CompletedPart {
    CompletedPart {
        part_number: n,
        etag: "\"5d41402abc4b2a76b9719d911017c592\"".into(),
    }
}

type Check = fn(&InvalidInput) -> bool;

#[test]
fn every_bad_input_gets_its_specific_error() {
    let long_key = "k".repeat(851);
    let big_meta = "v".repeat(2100);
    let five_gib = 5u64 << 30;
    let cases: Vec<(&str, Error, Check)> = vec![
        // Buckets.
        (
            "bucket with upper case",
            config_error("Example-1250000000", REGION, "id", "key"),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        (
            "bucket without appid",
            config_error("examplebucket", REGION, "id", "key"),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        (
            "bucket appid not digits",
            config_error("examplebucket-12a", REGION, "id", "key"),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        (
            "bucket name starts with -",
            config_error("-example-1250000000", REGION, "id", "key"),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        (
            "bucket with underscore",
            config_error("example_bucket-1250000000", REGION, "id", "key"),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        ("bucket empty", config_error("", REGION, "id", "key"), |e| {
            matches!(e, InvalidInput::Bucket { .. })
        }),
        (
            "bucket too long",
            config_error(
                &format!("{}-1250000000", "a".repeat(45)),
                REGION,
                "id",
                "key",
            ),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        (
            "host over 60 chars",
            config_error(
                &format!("{}-1250000000", "a".repeat(30)),
                "ap-southeast-northwest-1",
                "id",
                "key",
            ),
            |e| matches!(e, InvalidInput::Bucket { .. }),
        ),
        // Regions.
        ("region empty", config_error(BUCKET, "", "id", "key"), |e| {
            matches!(e, InvalidInput::Region(_))
        }),
        (
            "region upper case",
            config_error(BUCKET, "AP-Guangzhou", "id", "key"),
            |e| matches!(e, InvalidInput::Region(_)),
        ),
        (
            "region with space",
            config_error(BUCKET, "ap guangzhou", "id", "key"),
            |e| matches!(e, InvalidInput::Region(_)),
        ),
        (
            "region with dot",
            config_error(BUCKET, "evil.com/x", "id", "key"),
            |e| matches!(e, InvalidInput::Region(_)),
        ),
        // Credentials.
        (
            "empty secret id",
            config_error(BUCKET, REGION, "", "key"),
            |e| matches!(e, InvalidInput::MissingCredentials),
        ),
        (
            "empty secret key",
            config_error(BUCKET, REGION, "id", ""),
            |e| matches!(e, InvalidInput::MissingCredentials),
        ),
        // Endpoints.
        (
            "endpoint ftp scheme",
            endpoint_error("ftp://127.0.0.1:9000"),
            |e| matches!(e, InvalidInput::Endpoint(_)),
        ),
        (
            "endpoint without scheme",
            endpoint_error("127.0.0.1:9000"),
            |e| matches!(e, InvalidInput::Endpoint(_)),
        ),
        ("endpoint without host", endpoint_error("http://"), |e| {
            matches!(e, InvalidInput::Endpoint(_))
        }),
        (
            "endpoint with path",
            endpoint_error("http://127.0.0.1:9000/bucket"),
            |e| matches!(e, InvalidInput::Endpoint(_)),
        ),
        (
            "endpoint with user info",
            endpoint_error("http://user@127.0.0.1"),
            |e| matches!(e, InvalidInput::Endpoint(_)),
        ),
        (
            "endpoint with bad port",
            endpoint_error("http://127.0.0.1:port"),
            |e| matches!(e, InvalidInput::Endpoint(_)),
        ),
        (
            "endpoint port out of range",
            endpoint_error("http://127.0.0.1:99999"),
            |e| matches!(e, InvalidInput::Endpoint(_)),
        ),
        ("endpoint port 0", endpoint_error("https://[::1]:0"), |e| {
            matches!(e, InvalidInput::Endpoint(_))
        }),
        // Keys, across operations.
        (
            "PUT empty key",
            refused(PutObject::new("").with_bytes("x")),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        (
            "PUT 851-byte key",
            refused(PutObject::new(long_key.clone())),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        (
            "HEAD leading slash",
            refused(HeadObject::new("/etc/passwd")),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        ("GET newline in key", refused(GetObject::new("a\nb")), |e| {
            matches!(e, InvalidInput::Key { .. })
        }),
        (
            "Append DEL in key",
            refused(AppendObject::new("a\u{7f}", 0)),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        (
            "Initiate tab in key",
            refused(InitiateMultipartUpload::new("a\tb")),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        (
            "ListParts empty key",
            refused(ListParts::new("", "u")),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        (
            "Abort 851-byte key",
            refused(AbortMultipartUpload::new(long_key.clone(), "u")),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        (
            "Complete leading slash",
            refused(CompleteMultipartUpload::new("/a", "u", vec![part(1)])),
            |e| matches!(e, InvalidInput::Key { .. }),
        ),
        // Part numbers.
        (
            "UploadPart part 0",
            refused(UploadPart::new("a", "u", 0)),
            |e| *e == InvalidInput::PartNumber(0),
        ),
        (
            "UploadPart part 10001",
            refused(UploadPart::new("a", "u", 10_001)),
            |e| *e == InvalidInput::PartNumber(10_001),
        ),
        (
            "Complete part 0",
            refused(CompleteMultipartUpload::new(
                "a",
                "u",
                vec![part(1), part(0)],
            )),
            |e| *e == InvalidInput::PartNumber(0),
        ),
        (
            "Complete part 10001",
            refused(CompleteMultipartUpload::new("a", "u", vec![part(10_001)])),
            |e| *e == InvalidInput::PartNumber(10_001),
        ),
        (
            "Complete duplicate part",
            refused(CompleteMultipartUpload::new(
                "a",
                "u",
                vec![part(1), part(1)],
            )),
            |e| matches!(e, InvalidInput::Parameter { name: "parts", .. }),
        ),
        (
            "Complete without parts",
            refused(CompleteMultipartUpload::new("a", "u", vec![])),
            |e| *e == InvalidInput::NoParts,
        ),
        // Upload ids.
        (
            "UploadPart empty upload id",
            refused(UploadPart::new("a", "", 1)),
            |e| {
                matches!(
                    e,
                    InvalidInput::Parameter {
                        name: "uploadId",
                        ..
                    }
                )
            },
        ),
        (
            "Abort empty upload id",
            refused(AbortMultipartUpload::new("a", "")),
            |e| {
                matches!(
                    e,
                    InvalidInput::Parameter {
                        name: "uploadId",
                        ..
                    }
                )
            },
        ),
        // Traffic limits.
        (
            "PUT traffic limit 819199",
            refused(PutObject::new("a").traffic_limit(819_199)),
            |e| *e == InvalidInput::TrafficLimit(819_199),
        ),
        (
            "UploadPart traffic limit 838860801",
            refused(UploadPart::new("a", "u", 1).traffic_limit(838_860_801)),
            |e| *e == InvalidInput::TrafficLimit(838_860_801),
        ),
        (
            "GET traffic limit 819199",
            refused(GetObject::new("a").traffic_limit(819_199)),
            |e| *e == InvalidInput::TrafficLimit(819_199),
        ),
        (
            "Append traffic limit 838860801",
            refused(AppendObject::new("a", 0).traffic_limit(838_860_801)),
            |e| *e == InvalidInput::TrafficLimit(838_860_801),
        ),
        // Metadata.
        (
            "PUT metadata over 2 KB",
            refused(PutObject::new("a").metadata("big", big_meta.clone())),
            |e| matches!(e, InvalidInput::MetadataTooLarge(n) if *n > 2048),
        ),
        (
            "Initiate metadata over 2 KB",
            refused(InitiateMultipartUpload::new("a").metadata("big", big_meta.clone())),
            |e| matches!(e, InvalidInput::MetadataTooLarge(_)),
        ),
        (
            "metadata name with space",
            refused(PutObject::new("a").metadata("bad name", "v")),
            |e| matches!(e, InvalidInput::MetadataName(_)),
        ),
        (
            "metadata name empty",
            refused(InitiateMultipartUpload::new("a").metadata("", "v")),
            |e| matches!(e, InvalidInput::MetadataName(_)),
        ),
        (
            "metadata name non-ASCII",
            refused(AppendObject::new("a", 0).metadata("名字", "v")),
            |e| matches!(e, InvalidInput::MetadataName(_)),
        ),
        (
            "header value with newline",
            refused(PutObject::new("a").content_type("text/plain\r\nx-evil: 1")),
            |e| matches!(e, InvalidInput::HeaderValue(_)),
        ),
        // Listing limits.
        (
            "max-uploads 0",
            refused(ListMultipartUploads::new().max_uploads(0)),
            |e| {
                matches!(
                    e,
                    InvalidInput::Parameter {
                        name: "max-uploads",
                        ..
                    }
                )
            },
        ),
        (
            "max-uploads 1001",
            refused(ListMultipartUploads::new().max_uploads(1001)),
            |e| {
                matches!(
                    e,
                    InvalidInput::Parameter {
                        name: "max-uploads",
                        ..
                    }
                )
            },
        ),
        (
            "max-parts 0",
            refused(ListParts::new("a", "u").max_parts(0)),
            |e| {
                matches!(
                    e,
                    InvalidInput::Parameter {
                        name: "max-parts",
                        ..
                    }
                )
            },
        ),
        (
            "max-parts 1001",
            refused(ListParts::new("a", "u").max_parts(1001)),
            |e| {
                matches!(
                    e,
                    InvalidInput::Parameter {
                        name: "max-parts",
                        ..
                    }
                )
            },
        ),
        // Ranges and sizes.
        (
            "GET range start after end",
            refused(GetObject::new("a").range(10, Some(9))),
            |e| matches!(e, InvalidInput::Parameter { name: "range", .. }),
        ),
        (
            "PUT over 5 GiB",
            refused(PutObject::new("a").with_source(five_gib + 1)),
            |e| matches!(e, InvalidInput::Size { .. }),
        ),
        (
            "part over 5 GiB",
            refused(UploadPart::new("a", "u", 1).with_source(0, five_gib + 1)),
            |e| matches!(e, InvalidInput::Size { what: "part", .. }),
        ),
        (
            "append past 5 GiB",
            refused(AppendObject::new("a", five_gib).with_source(1)),
            |e| matches!(e, InvalidInput::Size { .. }),
        ),
    ];
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for (name, error, check) in &cases {
        match error {
            Error::InvalidInput(e) if check(e) => {
                // The message is meant for people: it must say something.
                assert!(!error.to_string().is_empty());
            }
            other => failures.push(format!("{name}: got {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The boundaries just inside the limits are accepted, so the table above does not pass by refusing
/// everything.
#[test]
fn limits_themselves_are_accepted() {
    let c = config;
    assert!(OneShot::new(PutObject::new("k".repeat(850)), c()).is_ok());
    assert!(OneShot::new(PutObject::new("a").traffic_limit(819_200), c()).is_ok());
    assert!(OneShot::new(PutObject::new("a").traffic_limit(838_860_800), c()).is_ok());
    assert!(OneShot::new(UploadPart::new("a", "u", 1), c()).is_ok());
    assert!(OneShot::new(
        UploadPart::new("a", "u", 10_000).with_source(0, 5 << 30),
        c()
    )
    .is_ok());
    assert!(OneShot::new(
        CompleteMultipartUpload::new("a", "u", vec![part(10_000), part(1)]),
        c()
    )
    .is_ok());
    assert!(OneShot::new(ListMultipartUploads::new().max_uploads(1), c()).is_ok());
    assert!(OneShot::new(ListMultipartUploads::new().max_uploads(1000), c()).is_ok());
    assert!(OneShot::new(ListParts::new("a", "u").max_parts(1000), c()).is_ok());
    assert!(OneShot::new(GetObject::new("a").range(9, Some(9)), c()).is_ok());
    assert!(OneShot::new(AppendObject::new("a", (5 << 30) - 1).with_source(1), c()).is_ok());
    // Metadata exactly at 2048 bytes (11 for "x-cos-meta-", 1 for the name).
    assert!(OneShot::new(
        PutObject::new("a").metadata("m", "v".repeat(2048 - 12)),
        c()
    )
    .is_ok());
    assert!(Endpoint::custom("http://127.0.0.1:9000/").is_ok());
    assert!(Endpoint::custom("http://[::1]:9000").is_ok());
    assert!(Endpoint::custom("https://[::1]").is_ok());
    assert!(Endpoint::custom("https://cdn.example.com").is_ok());
    assert!(Config::new("a-1", "ap-beijing", Credentials::new("i", "k")).is_ok());
}
