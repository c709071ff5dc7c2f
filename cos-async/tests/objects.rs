//! Delete, Delete Multiple, List Objects (pages, delimiter, encoding-type=url), PUT Object - Copy and
//! Upload Part - Copy through the async driver against the cos-testkit server over loopback TCP.

use cos_async::ops::{
    CompleteMultipartUpload, CompletedPart, CopyObject, CopySource, DeleteObjects, GetObject,
    InitiateMultipartUpload, ListObjects, MetadataDirective, PutObject, UploadPartCopy,
};
use cos_async::{Client, Config, Credentials, Endpoint, Error, InvalidInput};
use cos_testkit::Server;

async fn start() -> (Server, Client) {
    let server = Server::builder().start().await.unwrap();
    let config = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    (server, Client::new(config))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

#[tokio::test]
async fn delete_object_and_delete_objects() {
    let (server, client) = start().await;
    for k in ["a", "b", "c&d <e>"] {
        client
            .put_object(PutObject::new(k), k.as_bytes())
            .await
            .unwrap();
    }
    client.delete_object("a").await.unwrap();
    assert!(server.object("a").is_none());
    let e = client.head_object("a").await.unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
    // Deleting a key that does not exist succeeds, as on COS.
    client.delete_object("a").await.unwrap();

    let out = client
        .delete_objects(DeleteObjects::new(["b", "c&d <e>", "missing"]))
        .await
        .unwrap();
    let mut deleted: Vec<&str> = out.deleted.iter().map(|d| d.key.as_str()).collect();
    deleted.sort();
    assert_eq!(deleted, vec!["b", "c&d <e>", "missing"]);
    assert!(out.errors.is_empty());
    assert!(server.keys().is_empty());

    client.put_object(PutObject::new("q"), "q").await.unwrap();
    let out = client
        .delete_objects(DeleteObjects::new(["q"]).quiet())
        .await
        .unwrap();
    assert!(out.deleted.is_empty() && out.errors.is_empty());
    assert!(server.object("q").is_none());

    // Bad input is refused before anything is sent.
    let sent = server.counters().get("DeleteMultipleObjects");
    let none: [&str; 0] = [];
    for op in [
        DeleteObjects::new(none),
        DeleteObjects::new(["ok", ""]),
        DeleteObjects::new((0..1001).map(|i| format!("k{i}"))),
    ] {
        let e = client.delete_objects(op).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }
    assert_eq!(server.counters().get("DeleteMultipleObjects"), sent);
}

#[tokio::test]
async fn list_objects_pages_delimiter_and_url_encoding() {
    let (server, client) = start().await;
    let keys = [
        "d/a b&c.txt",
        "d/b",
        "d/sub/x",
        "d/sub/y",
        "d/z%41",
        "d/é",
        "e",
    ];
    for k in keys {
        client
            .put_object(PutObject::new(k), k.as_bytes())
            .await
            .unwrap();
    }
    // Every page of two keys, in order, through next_page and through the Stream.
    let before = server.counters().get("GetBucket");
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut stream = client.list_objects_pages(ListObjects::new().prefix("d/").max_keys(2));
    while let Some(page) = stream.next_page().await {
        let page = page.unwrap();
        pages += 1;
        for o in page.contents {
            assert_eq!(o.size, o.key.len() as u64);
            listed.push(o.key);
        }
    }
    assert_eq!(listed, keys[..6].to_vec());
    assert_eq!(pages, 3);
    assert_eq!(server.counters().get("GetBucket") - before, 3);

    // The same with encoding-type=url, polled as a futures Stream: keys come back decoded.
    let mut stream = client.list_objects_pages(ListObjects::new().encoding_type_url().max_keys(3));
    let mut all = Vec::new();
    while let Some(page) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
    })
    .await
    {
        all.extend(page.unwrap().contents.into_iter().map(|o| o.key));
    }
    assert_eq!(all, keys.to_vec());

    // A delimiter groups d/sub/ into one common prefix, across pages too.
    let first = client
        .list_objects(ListObjects::new().prefix("d/").delimiter("/").max_keys(3))
        .await
        .unwrap();
    assert!(first.is_truncated);
    assert_eq!(first.common_prefixes, vec!["d/sub/".to_string()]);
    assert_eq!(first.next_marker.as_deref(), Some("d/sub/"));
    let rest = client
        .list_objects(
            ListObjects::new()
                .prefix("d/")
                .delimiter("/")
                .marker("d/sub/"),
        )
        .await
        .unwrap();
    let rest_keys: Vec<&str> = rest.contents.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(rest_keys, vec!["d/z%41", "d/é"]);
    assert!(rest.common_prefixes.is_empty() && !rest.is_truncated);

    let e = client
        .list_objects(ListObjects::new().max_keys(0))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidInput(InvalidInput::Parameter { .. })
    ));
}

#[tokio::test]
async fn copy_object_with_and_across_keys() {
    let (server, client) = start().await;
    let body = pattern(100_000, 7);
    let put = client
        .put_object(
            PutObject::new("src/a b.bin")
                .content_type("application/x-test")
                .metadata("origin", "one"),
            body.clone(),
        )
        .await
        .unwrap();

    // Copy keeps the source's metadata.
    let out = client
        .copy_object(CopyObject::new(
            "dst/copy.bin",
            CopySource::key("src/a b.bin"),
        ))
        .await
        .unwrap();
    assert_eq!(out.etag, put.etag);
    let head = client.head_object("dst/copy.bin").await.unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(
        head.metadata
            .iter()
            .find(|(k, _)| k == "origin")
            .map(|(_, v)| v.as_str()),
        Some("one")
    );
    assert_eq!(
        client
            .get_object(GetObject::new("dst/copy.bin"))
            .await
            .unwrap()
            .body,
        body
    );
    assert_eq!(out.crc64, Some(server.object("src/a b.bin").unwrap().crc64));

    // Replaced takes this request's metadata, also onto the object itself.
    client
        .copy_object(
            CopyObject::new("src/a b.bin", CopySource::key("src/a b.bin"))
                .metadata_directive(MetadataDirective::Replaced)
                .content_type("text/plain")
                .metadata("origin", "two"),
        )
        .await
        .unwrap();
    let head = client.head_object("src/a b.bin").await.unwrap();
    assert_eq!(head.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        head.metadata
            .iter()
            .find(|(k, _)| k == "origin")
            .map(|(_, v)| v.as_str()),
        Some("two")
    );
    assert_eq!(server.object("src/a b.bin").unwrap().data.unwrap(), body);

    // Onto itself without Replaced: refused before sending.
    let sent = server.counters().get("PutObjectCopy");
    let e = client
        .copy_object(CopyObject::new("x", CopySource::key("x")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert_eq!(server.counters().get("PutObjectCopy"), sent);

    // Service errors: a missing source, a failed source condition.
    let e = client
        .copy_object(CopyObject::new("y", CopySource::key("missing")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
    let e = client
        .copy_object(
            CopyObject::new("y", CopySource::key("src/a b.bin")).source_if_match("\"0000\""),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("PreconditionFailed"));
    assert!(server.object("y").is_none());
}

#[tokio::test]
async fn upload_part_copy_assembles_ranges() {
    let (server, client) = start().await;
    let body = pattern(3 << 20, 11);
    client
        .put_object(PutObject::new("big-src"), body.clone())
        .await
        .unwrap();
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("big-dst"))
        .await
        .unwrap();
    let split = (2 << 20) as u64;
    let total = body.len() as u64;
    let mut parts = Vec::new();
    for (n, (first, last)) in [(0, split - 1), (split, total - 1)].into_iter().enumerate() {
        let out = client
            .upload_part_copy(
                UploadPartCopy::new(
                    "big-dst",
                    &init.upload_id,
                    n as u32 + 1,
                    CopySource::key("big-src"),
                )
                .range(first, last),
            )
            .await
            .unwrap();
        parts.push(CompletedPart {
            part_number: n as u32 + 1,
            etag: out.etag,
        });
    }
    client
        .complete_multipart_upload(CompleteMultipartUpload::new(
            "big-dst",
            &init.upload_id,
            parts,
        ))
        .await
        .unwrap();
    assert_eq!(server.object("big-dst").unwrap().data.unwrap(), body);

    // A range past the source's end is the server's InvalidArgument; a reversed one never leaves.
    let e = client
        .upload_part_copy(
            UploadPartCopy::new("big-dst", "nope", 1, CopySource::key("big-src")).range(0, 1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchUpload"));
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("k"))
        .await
        .unwrap();
    let e = client
        .upload_part_copy(
            UploadPartCopy::new("k", &init.upload_id, 1, CopySource::key("big-src"))
                .range(0, total),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidArgument"));
    let e = client
        .upload_part_copy(
            UploadPartCopy::new("k", &init.upload_id, 1, CopySource::key("big-src")).range(9, 3),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
}
