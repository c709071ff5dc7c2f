//! The same calls through cos-blocking (ureq) and cos-async (hyper) put the same request on the wire:
//! method, path, query, signed header list and every header value except the time-dependent signature.

mod support;

use support::{MockServer, Recorded, Reply};

/// What must match between transports.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    method: String,
    path: String,
    query: String,
    signed: Vec<String>,
    /// All headers but `Authorization`, sorted, with the (per-server) host replaced.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn wire_shape(r: &Recorded) -> Shape {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| n != "authorization")
        .map(|(n, v)| {
            (
                n.clone(),
                if n == "host" {
                    "<host>".into()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    headers.sort();
    let mut signed = r.signed_headers();
    signed.sort();
    Shape {
        method: r.method.clone(),
        path: r.path().to_string(),
        query: r.query().to_string(),
        signed,
        headers,
        body: r.body.clone(),
    }
}

/// Answers every operation with a minimal valid COS response.
fn echo_server() -> MockServer {
    MockServer::start(|r, _| {
        let q = r.query();
        let xml = |body: String| Reply::new(200, &[("content-type", "application/xml")], body);
        match (r.method.as_str(), q) {
            ("PUT", _) => Reply::put_ok(&r.body),
            ("POST", q) if q.starts_with("append") => {
                let Reply::Respond { status, mut headers, body } = Reply::put_ok(&r.body) else {
                    unreachable!()
                };
                headers.push(("x-cos-next-append-position".into(), r.body.len().to_string()));
                Reply::Respond { status, headers, body }
            }
            ("POST", "uploads") => xml(
                "<InitiateMultipartUploadResult><Bucket>examplebucket-1250000000</Bucket>\
                 <Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
                    .into(),
            ),
            ("POST", _) => xml(
                "<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket><Key>k</Key>\
                 <ETag>\"aa-2\"</ETag></CompleteMultipartUploadResult>"
                    .into(),
            ),
            ("GET", q) if q.split('&').any(|kv| kv == "uploads") => xml(
                "<ListMultipartUploadsResult><Bucket>b</Bucket><MaxUploads>1000</MaxUploads>\
                 <IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"
                    .into(),
            ),
            ("GET", q) if q.starts_with("uploadId") => xml(
                "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId>\
                 <PartNumberMarker>0</PartNumberMarker><MaxParts>1000</MaxParts>\
                 <IsTruncated>false</IsTruncated></ListPartsResult>"
                    .into(),
            ),
            ("GET", _) | ("HEAD", _) => Reply::new(
                200,
                &[("etag", "\"5d41402abc4b2a76b9719d911017c592\""), ("x-cos-request-id", "r")],
                "hello",
            ),
            ("DELETE", _) => Reply::new(204, &[("x-cos-request-id", "r")], ""),
            _ => Reply::error(400, "InvalidRequest"),
        }
    })
}

/// Every other operation, once, through the blocking client.
fn other_ops_blocking(client: &cos_blocking::Client) {
    use cos_core::ops::*;
    client
        .append_object(AppendObject::new("app.log", 0), "abc")
        .unwrap();
    assert_eq!(
        client.head_object("dir/ü b+c.txt").unwrap().content_length,
        5
    );
    let got = client
        .get_object(GetObject::new("g").range(0, Some(4)))
        .unwrap();
    assert_eq!(&got.body[..], b"hello");
    let id = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("m").content_type("a/b"))
        .unwrap()
        .upload_id;
    let p = client
        .upload_part(UploadPart::new("m", &id, 1), "part")
        .unwrap();
    client.list_parts(ListParts::new("m", &id)).unwrap();
    client
        .list_multipart_uploads(ListMultipartUploads::new().prefix("m"))
        .unwrap();
    let part = CompletedPart {
        part_number: 1,
        etag: p.etag,
    };
    client
        .complete_multipart_upload(CompleteMultipartUpload::new("m", &id, vec![part]))
        .unwrap();
    client
        .abort_multipart_upload(AbortMultipartUpload::new("m", &id))
        .unwrap();
}

/// The same through the async client.
async fn other_ops_async(client: &cos_async::Client) {
    use cos_core::ops::*;
    client
        .append_object(AppendObject::new("app.log", 0), "abc")
        .await
        .unwrap();
    assert_eq!(
        client
            .head_object("dir/ü b+c.txt")
            .await
            .unwrap()
            .content_length,
        5
    );
    let got = client
        .get_object(GetObject::new("g").range(0, Some(4)))
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"hello");
    let id = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("m").content_type("a/b"))
        .await
        .unwrap()
        .upload_id;
    let p = client
        .upload_part(UploadPart::new("m", &id, 1), "part")
        .await
        .unwrap();
    client.list_parts(ListParts::new("m", &id)).await.unwrap();
    client
        .list_multipart_uploads(ListMultipartUploads::new().prefix("m"))
        .await
        .unwrap();
    let part = CompletedPart {
        part_number: 1,
        etag: p.etag,
    };
    client
        .complete_multipart_upload(CompleteMultipartUpload::new("m", &id, vec![part]))
        .await
        .unwrap();
    client
        .abort_multipart_upload(AbortMultipartUpload::new("m", &id))
        .await
        .unwrap();
}

#[test]
fn blocking_and_async_send_the_same_requests() {
    let file = std::env::temp_dir().join(format!("cos-cross-{}.bin", std::process::id()));
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();

    let put = || {
        cos_core::ops::PutObject::new("dir/ü b+c.txt")
            .content_type("text/plain")
            .metadata("project", "cos-rs")
            .forbid_overwrite()
    };

    let blocking_server = echo_server();
    let client = cos_blocking::Client::new(blocking_server.config());
    client.put_object(put(), "hello").unwrap();
    client
        .put_object(put(), cos_blocking::Body::file(&file).unwrap())
        .unwrap();
    client
        .put_object(put(), cos_blocking::Body::file_range(&file, 10, 0))
        .unwrap();
    other_ops_blocking(&client);

    let async_server = echo_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = cos_async::Client::new(async_server.config());
        client.put_object(put(), "hello").await.unwrap();
        client
            .put_object(put(), cos_async::Body::file(&file).unwrap())
            .await
            .unwrap();
        client
            .put_object(put(), cos_async::Body::file_range(&file, 10, 0))
            .await
            .unwrap();
        other_ops_async(&client).await;
    });
    std::fs::remove_file(&file).unwrap();

    let b = blocking_server.requests();
    let a = async_server.requests();
    assert_eq!(a.len(), b.len());
    assert_eq!(b.len(), 3 + 9);
    for (x, y) in b.iter().zip(&a) {
        assert_eq!(x.all("host").len(), 1);
        assert_eq!(y.all("host").len(), 1);
        assert_eq!(
            wire_shape(x),
            wire_shape(y),
            "\nureq:  {:?}\nhyper: {:?}",
            x.headers,
            y.headers
        );
    }
}
