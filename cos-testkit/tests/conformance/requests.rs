//! One request at a time: every operation, bodies of bytes, files, file ranges and readers, service errors
//! typed, and retries on injected faults.

use super::*;
use cos_core::error::TransportErrorKind;
use cos_core::ops::{
    AbortMultipartUpload, AppendObject, CompleteMultipartUpload, CompletedPart,
    InitiateMultipartUpload, ListMultipartUploads, ListParts, PutObject, UploadPart,
};

pub fn every_operation_through_the_driver<D: Driver>() {
    let (server, client) = start::<D>();

    // PUT (bytes, then a streamed file), HEAD, GET with a range.
    let put = client
        .put_object(
            PutObject::new("docs/a b.txt").content_type("text/plain"),
            "hello world",
        )
        .unwrap();
    assert_eq!(put.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    let data = pattern(3 * 1024 * 1024 + 17, 1);
    let d = TempDir::new::<D>("every");
    let file = d.file("every", &data);
    client
        .put_object(PutObject::new("big.bin"), Payload::file(&file))
        .unwrap();
    assert_eq!(server.object("big.bin").unwrap().data.unwrap(), data);

    let info = client.head_object("docs/a b.txt").unwrap();
    assert_eq!(info.content_length, 11);
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    let got = client
        .get_object(GetObject::new("docs/a b.txt").range(6, Some(10)))
        .unwrap();
    assert_eq!(&got.body[..], b"world");
    let whole = client.get_object(GetObject::new("big.bin")).unwrap();
    assert_eq!(whole.body.len(), data.len());
    assert!(whole.body == data);

    // Append: create at 0 from bytes, continue from a file range.
    let a = client
        .append_object(AppendObject::new("log.txt", 0), "line 1\n")
        .unwrap();
    assert_eq!(a.next_position, 7);
    let b = client
        .append_object(
            AppendObject::new("log.txt", a.next_position),
            Payload::file_range(&file, 0, 1000),
        )
        .unwrap();
    assert_eq!(b.next_position, 1007);
    let log = server.object("log.txt").unwrap().data.unwrap();
    assert_eq!(&log[..7], b"line 1\n");
    assert_eq!(&log[7..], &data[..1000]);

    // Multipart: initiate, two parts (a file range and bytes), list, list uploads, complete.
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("multi.bin"))
        .unwrap();
    let id = init.upload_id.clone();
    let p1 = client
        .upload_part(
            UploadPart::new("multi.bin", &id, 1),
            Payload::file_range(&file, 0, 2 * 1024 * 1024),
        )
        .unwrap();
    let tail = data[2 * 1024 * 1024..].to_vec();
    let p2 = client
        .upload_part(UploadPart::new("multi.bin", &id, 2), tail)
        .unwrap();
    let parts = client.list_parts(ListParts::new("multi.bin", &id)).unwrap();
    assert_eq!(parts.parts.len(), 2);
    assert_eq!(parts.parts[0].etag, p1.etag);
    let uploads = client
        .list_multipart_uploads(ListMultipartUploads::new())
        .unwrap();
    assert!(uploads.uploads.iter().any(|u| u.upload_id == id));
    client
        .complete_multipart_upload(CompleteMultipartUpload::new(
            "multi.bin",
            &id,
            vec![
                CompletedPart {
                    part_number: 1,
                    etag: p1.etag,
                },
                CompletedPart {
                    part_number: 2,
                    etag: p2.etag,
                },
            ],
        ))
        .unwrap();
    assert!(server.object("multi.bin").unwrap().data.unwrap() == data);

    // Abort: the upload is gone afterwards.
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("aborted.bin"))
        .unwrap();
    client
        .abort_multipart_upload(AbortMultipartUpload::new("aborted.bin", &init.upload_id))
        .unwrap();
    let err = client
        .list_parts(ListParts::new("aborted.bin", &init.upload_id))
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
}

pub fn service_errors_reach_the_caller_typed<D: Driver>() {
    let (server, client) = start::<D>();
    let err = client.head_object("missing").unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("NoSuchKey")));
    let err = client.get_object(GetObject::new("missing")).unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("NoSuchKey")));
    assert!(err.request_id().is_some());
    let err = client
        .list_parts(ListParts::new("k", "no-such-upload-id"))
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));

    client
        .append_object(AppendObject::new("app", 0), "abc")
        .unwrap();
    let err = client
        .append_object(AppendObject::new("app", 1), "def")
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");

    let mut wrong = config(&server, 4);
    wrong.credentials = Credentials::new(server.secret_id(), "not-the-secret");
    let wrong = D::build(wrong, None);
    let err = wrong.put_object(PutObject::new("x"), "x").unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err}");
    assert_eq!(
        server.counters().get("PutObject"),
        1,
        "a 403 is not retried"
    );
}

pub fn injected_500_503_and_reset_are_retried_to_success<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("faults");
    let file = d.file("faults", &pattern(200_000, 2));
    server.faults().fail_nth("PutObject", 1, Fault::Status(500));
    server.faults().fail_nth("PutObject", 2, Fault::Status(503));
    server.faults().fail_nth("PutObject", 3, Fault::Reset);
    client
        .put_object(PutObject::new("f"), Payload::file(&file))
        .unwrap();
    assert_eq!(server.counters().get("PutObject"), 4);
    assert_eq!(
        server.object("f").unwrap().data.unwrap(),
        std::fs::read(&file).unwrap()
    );

    server.faults().fail_nth("UploadPart", 1, Fault::Reset);
    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("m"))
        .unwrap();
    client
        .upload_part(
            UploadPart::new("m", &init.upload_id, 1),
            Payload::file(&file),
        )
        .unwrap();
    assert_eq!(server.counters().get("UploadPart"), 2);
    let got = client.get_object(GetObject::new("f")).unwrap();
    assert_eq!(got.body.len(), 200_000);
}

pub fn a_reader_body_is_sent_once<D: Driver>() {
    let (server, client) = start::<D>();
    server.faults().fail_nth("PutObject", 1, Fault::Status(500));
    let err = client
        .put_object(
            PutObject::new("r"),
            Payload::reader(b"only once".to_vec(), 9),
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(server.counters().get("PutObject"), 1);
}

pub fn a_reset_that_outlasts_the_retries_is_a_transport_error<D: Driver>() {
    let (server, client) = start::<D>();
    for n in 1..=4 {
        server.faults().fail_nth("PutObject", n, Fault::Reset);
    }
    let err = client.put_object(PutObject::new("r"), "x").unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Reset),
        "{err:?}"
    );
    assert_eq!(server.counters().get("PutObject"), 4);
}
