//! Bad input through the client against a real server: each call is a typed `Error::InvalidInput`, and the
//! server's counters show that not one request reached it.

use cos_blocking::ops::*;
use cos_blocking::{Client, Config, Credentials, Endpoint, Error, InvalidInput, UploadOptions};
use cos_testkit::Server;

fn client(server: &Server) -> Client {
    let config = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    Client::new(config)
}

#[test]
fn invalid_inputs_are_typed_errors_and_nothing_is_sent() {
    let server = Server::builder().start_blocking().unwrap();
    let c = client(&server);
    let long_key = "k".repeat(851);
    let big_meta = "v".repeat(2100);
    let dir = std::env::temp_dir().join(format!("cos-rs-badinput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("f.bin");
    std::fs::write(&file, vec![1u8; 2048]).unwrap();
    let part = || {
        vec![CompletedPart {
            part_number: 1,
            etag: "\"00\"".into(),
        }]
    };

    type Case<'a> = (&'a str, Box<dyn Fn() -> Result<(), Error> + 'a>);
    let cases: Vec<Case> = vec![
        (
            "empty key",
            Box::new(|| c.put_object(PutObject::new(""), "x").map(drop)),
        ),
        (
            "851-byte key",
            Box::new(|| {
                c.put_object(PutObject::new(long_key.as_str()), "x")
                    .map(drop)
            }),
        ),
        (
            "key with leading /",
            Box::new(|| c.put_object(PutObject::new("/abs"), "x").map(drop)),
        ),
        (
            "key with a control character",
            Box::new(|| c.put_object(PutObject::new("a\nb"), "x").map(drop)),
        ),
        (
            "traffic limit too low",
            Box::new(|| {
                c.put_object(PutObject::new("a").traffic_limit(819_199), "x")
                    .map(drop)
            }),
        ),
        (
            "traffic limit too high",
            Box::new(|| {
                c.put_object(PutObject::new("a").traffic_limit(838_860_801), "x")
                    .map(drop)
            }),
        ),
        (
            "metadata over 2 KB",
            Box::new(|| {
                c.put_object(PutObject::new("a").metadata("big", big_meta.as_str()), "x")
                    .map(drop)
            }),
        ),
        (
            "bad metadata name",
            Box::new(|| {
                c.put_object(PutObject::new("a").metadata("a b", "v"), "x")
                    .map(drop)
            }),
        ),
        (
            "header value with a newline",
            Box::new(|| {
                c.put_object(PutObject::new("a").content_type("text/plain\r\nX: y"), "x")
                    .map(drop)
            }),
        ),
        (
            "append: empty key",
            Box::new(|| c.append_object(AppendObject::new("", 0), "x").map(drop)),
        ),
        (
            "append: traffic limit",
            Box::new(|| {
                c.append_object(AppendObject::new("a", 0).traffic_limit(1), "x")
                    .map(drop)
            }),
        ),
        (
            "part number 0",
            Box::new(|| c.upload_part(UploadPart::new("a", "id", 0), "x").map(drop)),
        ),
        (
            "part number 10001",
            Box::new(|| {
                c.upload_part(UploadPart::new("a", "id", 10_001), "x")
                    .map(drop)
            }),
        ),
        (
            "part: empty upload id",
            Box::new(|| c.upload_part(UploadPart::new("a", "", 1), "x").map(drop)),
        ),
        (
            "part: traffic limit",
            Box::new(|| {
                c.upload_part(UploadPart::new("a", "id", 1).traffic_limit(5), "x")
                    .map(drop)
            }),
        ),
        ("head: empty key", Box::new(|| c.head_object("").map(drop))),
        (
            "get: range start > end",
            Box::new(|| {
                c.get_object(GetObject::new("a").range(10, Some(5)))
                    .map(drop)
            }),
        ),
        (
            "get: 851-byte key",
            Box::new(|| c.get_object(GetObject::new(long_key.as_str())).map(drop)),
        ),
        (
            "initiate: metadata over 2 KB",
            Box::new(|| {
                c.initiate_multipart_upload(
                    InitiateMultipartUpload::new("a").metadata("m", big_meta.as_str()),
                )
                .map(drop)
            }),
        ),
        (
            "initiate: empty key",
            Box::new(|| {
                c.initiate_multipart_upload(InitiateMultipartUpload::new(""))
                    .map(drop)
            }),
        ),
        (
            "list parts: max-parts 0",
            Box::new(|| {
                c.list_parts(ListParts::new("a", "id").max_parts(0))
                    .map(drop)
            }),
        ),
        (
            "list parts: max-parts 1001",
            Box::new(|| {
                c.list_parts(ListParts::new("a", "id").max_parts(1001))
                    .map(drop)
            }),
        ),
        (
            "list parts: empty upload id",
            Box::new(|| c.list_parts(ListParts::new("a", "")).map(drop)),
        ),
        (
            "complete: no parts",
            Box::new(|| {
                c.complete_multipart_upload(CompleteMultipartUpload::new("a", "id", vec![]))
                    .map(drop)
            }),
        ),
        (
            "complete: part number 0",
            Box::new(|| {
                c.complete_multipart_upload(CompleteMultipartUpload::new(
                    "a",
                    "id",
                    vec![CompletedPart {
                        part_number: 0,
                        etag: "\"00\"".into(),
                    }],
                ))
                .map(drop)
            }),
        ),
        (
            "complete: empty upload id",
            Box::new(|| {
                c.complete_multipart_upload(CompleteMultipartUpload::new("a", "", part()))
                    .map(drop)
            }),
        ),
        (
            "abort: empty key",
            Box::new(|| {
                c.abort_multipart_upload(AbortMultipartUpload::new("", "id"))
                    .map(drop)
            }),
        ),
        (
            "list uploads: max-uploads 0",
            Box::new(|| {
                c.list_multipart_uploads(ListMultipartUploads::new().max_uploads(0))
                    .map(drop)
            }),
        ),
        (
            "list uploads: max-uploads 1001",
            Box::new(|| {
                c.list_multipart_uploads(ListMultipartUploads::new().max_uploads(1001))
                    .map(drop)
            }),
        ),
        (
            "upload_file: folder key",
            Box::new(|| {
                c.upload_file(&file, "dir/", &UploadOptions::default())
                    .map(drop)
            }),
        ),
        (
            "upload_file: part size under 1 MiB",
            Box::new(|| {
                c.upload_file(
                    &file,
                    "a",
                    &UploadOptions {
                        part_size: Some(1000),
                        threshold: 0,
                        ..Default::default()
                    },
                )
                .map(drop)
            }),
        ),
        (
            "upload_file: empty key",
            Box::new(|| {
                c.upload_file(&file, "", &UploadOptions::default())
                    .map(drop)
            }),
        ),
        (
            "presigned URL: empty key",
            Box::new(|| {
                c.presigned_url(
                    http::Method::PUT,
                    "",
                    std::time::Duration::from_secs(60),
                    &[],
                    &[],
                )
                .map(drop)
            }),
        ),
    ];
    assert!(cases.len() >= 30);
    let mut wrong = Vec::new();
    for (name, call) in &cases {
        match call() {
            Err(Error::InvalidInput(_)) => {}
            other => wrong.push(format!("{name}: expected InvalidInput, got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let counters = server.counters();
    assert_eq!(
        counters.total, 0,
        "the server saw requests: {:?}",
        counters.by_operation
    );

    // Missing credentials and bad configuration never get as far as a client.
    assert!(matches!(
        Config::new(server.bucket(), "ap-guangzhou", Credentials::new("", "")),
        Err(Error::InvalidInput(InvalidInput::MissingCredentials))
    ));
    assert!(matches!(
        Config::new("Bad_Bucket", "ap-guangzhou", Credentials::new("a", "b")),
        Err(Error::InvalidInput(InvalidInput::Bucket { .. }))
    ));
    assert!(matches!(
        Config::new("b-1", "AP GZ", Credentials::new("a", "b")),
        Err(Error::InvalidInput(InvalidInput::Region(_)))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
