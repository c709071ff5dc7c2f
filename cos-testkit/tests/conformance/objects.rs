//! Objects: Delete, Delete Multiple, List Objects (pages, delimiter, encoding-type=url), PUT Object - Copy
//! and Upload Part - Copy.

use super::*;
use cos_core::ops::{
    CompleteMultipartUpload, CompletedPart, CopyObject, CopySource, DeleteObjects,
    InitiateMultipartUpload, ListMultipartUploads, MetadataDirective, PutObject, UploadPartCopy,
};

pub fn delete_object_and_delete_objects<D: Driver>() {
    let (server, client) = start::<D>();
    for k in ["a", "b", "c&d <e>"] {
        client.put_object(PutObject::new(k), k.as_bytes()).unwrap();
    }
    client.delete_object("a").unwrap();
    assert!(server.object("a").is_none());
    let e = client.head_object("a").unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
    // Deleting a key that does not exist succeeds, as on COS.
    client.delete_object("a").unwrap();

    let out = client
        .delete_objects(DeleteObjects::new(["b", "c&d <e>", "missing"]))
        .unwrap();
    let mut deleted: Vec<&str> = out.deleted.iter().map(|d| d.key.as_str()).collect();
    deleted.sort();
    assert_eq!(deleted, vec!["b", "c&d <e>", "missing"]);
    assert!(out.errors.is_empty());
    assert!(server.keys().is_empty());

    client.put_object(PutObject::new("q"), "q").unwrap();
    let out = client
        .delete_objects(DeleteObjects::new(["q"]).quiet())
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
        let e = client.delete_objects(op).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }
    assert_eq!(server.counters().get("DeleteMultipleObjects"), sent);
}

pub fn list_objects_pages_delimiter_and_url_encoding<D: Driver>() {
    let (server, client) = start::<D>();
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
        client.put_object(PutObject::new(k), k.as_bytes()).unwrap();
    }
    // Every page of two keys, in order, through the iterator.
    let before = server.counters().get("GetBucket");
    let mut listed = Vec::new();
    let mut pages = 0;
    for page in client.list_objects_pages(ListObjects::new().prefix("d/").max_keys(2)) {
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

    // The same with encoding-type=url: keys come back decoded.
    let all: Vec<String> = client
        .list_objects_pages(ListObjects::new().encoding_type_url().max_keys(3))
        .flat_map(|p| p.unwrap().contents)
        .map(|o| o.key)
        .collect();
    assert_eq!(all, keys.to_vec());

    // A delimiter groups d/sub/ into one common prefix, across pages too.
    let first = client
        .list_objects(ListObjects::new().prefix("d/").delimiter("/").max_keys(3))
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
        .unwrap();
    let rest_keys: Vec<&str> = rest.contents.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(rest_keys, vec!["d/z%41", "d/é"]);
    assert!(rest.common_prefixes.is_empty() && !rest.is_truncated);

    let e = client
        .list_objects(ListObjects::new().max_keys(0))
        .unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidInput(InvalidInput::Parameter { .. })
    ));
}

pub fn copy_object_with_and_across_keys<D: Driver>() {
    let (server, client) = start::<D>();
    let body = pattern(100_000, 7);
    let put = client
        .put_object(
            PutObject::new("src/a b.bin")
                .content_type("application/x-test")
                .metadata("origin", "one"),
            body.clone(),
        )
        .unwrap();

    // Copy keeps the source's metadata.
    let out = client
        .copy_object(CopyObject::new(
            "dst/copy.bin",
            CopySource::key("src/a b.bin"),
        ))
        .unwrap();
    assert_eq!(out.etag, put.etag);
    let head = client.head_object("dst/copy.bin").unwrap();
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
        .unwrap();
    let head = client.head_object("src/a b.bin").unwrap();
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
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert_eq!(server.counters().get("PutObjectCopy"), sent);

    // Service errors: a missing source, a failed source condition.
    let e = client
        .copy_object(CopyObject::new("y", CopySource::key("missing")))
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
    let e = client
        .copy_object(
            CopyObject::new("y", CopySource::key("src/a b.bin")).source_if_match("\"0000\""),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("PreconditionFailed"));
    assert!(server.object("y").is_none());
}

pub fn upload_part_copy_assembles_ranges<D: Driver>() {
    let (server, client) = start::<D>();
    let body = pattern(3 << 20, 11);
    client
        .put_object(PutObject::new("big-src"), body.clone())
        .unwrap();
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("big-dst"))
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
        .unwrap();
    assert_eq!(server.object("big-dst").unwrap().data.unwrap(), body);

    // A range past the source's end is the server's InvalidArgument; a reversed one never leaves.
    let e = client
        .upload_part_copy(
            UploadPartCopy::new("big-dst", "nope", 1, CopySource::key("big-src")).range(0, 1),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchUpload"));
    let init = client
        .initiate_multipart_upload(InitiateMultipartUpload::new("k"))
        .unwrap();
    let e = client
        .upload_part_copy(
            UploadPartCopy::new("k", &init.upload_id, 1, CopySource::key("big-src"))
                .range(0, total),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidArgument"));
    let e = client
        .upload_part_copy(
            UploadPartCopy::new("k", &init.upload_id, 1, CopySource::key("big-src")).range(9, 3),
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
}

/// `Client::copy`: a 12 MiB source above a 5 MiB threshold is copied as three parallel Upload Part - Copy
/// ranges and reads back byte-identical with the source's content type; a small one is one PUT Object -
/// Copy; no upload is left behind.
pub fn copy_of_a_large_object_is_multipart_and_byte_identical<D: Driver>() {
    use cos_core::copy::CopyOptions;
    let (server, client) = start::<D>();
    let body = pattern(12 << 20, 23);
    client
        .put_object(
            PutObject::new("src/big").content_type("application/x-test"),
            body.clone(),
        )
        .unwrap();
    let options = CopyOptions::default()
        .threshold(5 << 20)
        .part_size(5 << 20)
        .concurrency(3);
    let (parts, single) = (
        server.counters().get("UploadPartCopy"),
        server.counters().get("PutObjectCopy"),
    );
    let out = client
        .copy(CopySource::key("src/big"), "dst/big", &options)
        .unwrap();
    assert_eq!((out.parts, out.size), (3, 12 << 20));
    assert_eq!(server.counters().get("UploadPartCopy") - parts, 3);
    assert_eq!(server.counters().get("PutObjectCopy"), single);
    let got = client.get_object(GetObject::new("dst/big")).unwrap();
    assert!(got.body.as_ref() == body.as_slice(), "copied bytes differ");
    let head = client.head_object("dst/big").unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(head.crc64, client.head_object("src/big").unwrap().crc64);
    assert_eq!(out.crc64, head.crc64);

    client
        .put_object(PutObject::new("src/small"), body[..1000].to_vec())
        .unwrap();
    let out = client
        .copy(CopySource::key("src/small"), "dst/small", &options)
        .unwrap();
    assert_eq!(out.parts, 0);
    assert_eq!(server.counters().get("PutObjectCopy"), single + 1);
    assert_eq!(
        server.object("dst/small").unwrap().data.unwrap(),
        &body[..1000]
    );

    // A missing source fails at the HEAD; bad options fail before anything is sent.
    let e = client
        .copy(CopySource::key("nope"), "dst/x", &options)
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"), "{e:?}");
    let total = server.counters().total;
    let e = client
        .copy(
            CopySource::key("src/big"),
            "dst/x",
            &options.clone().part_size(1),
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert_eq!(server.counters().total, total);
    let left = client
        .list_multipart_uploads(ListMultipartUploads::new())
        .unwrap();
    assert!(left.uploads.is_empty());
    assert!(server.object("dst/x").is_none());
}

/// A source replaced while its multipart copy runs fails the next part's `x-cos-copy-source-If-Match`: the
/// copy ends with `PreconditionFailed`, its upload is aborted and no destination object appears.
pub fn a_source_changed_during_a_multipart_copy_fails_and_leaves_nothing<D: Driver>() {
    use cos_core::copy::CopyOptions;
    let (server, client) = start::<D>();
    client
        .put_object(PutObject::new("src"), pattern(3 << 20, 5))
        .unwrap();
    // The second part copy waits at the server while another writer replaces the source.
    server.faults().fail_nth(
        "UploadPartCopy",
        2,
        Fault::Stall(Duration::from_millis(1500)),
    );
    let writer = cos_blocking::Client::new(config(&server, 1));
    let options = CopyOptions::default()
        .threshold(1 << 20)
        .part_size(1 << 20)
        .concurrency(1);
    let before = server.counters().get("UploadPartCopy");
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while server.counters().get("UploadPartCopy") < before + 2 {
                assert!(std::time::Instant::now() < deadline, "part 2 never sent");
                std::thread::sleep(Duration::from_millis(5));
            }
            writer
                .put_object(PutObject::new("src"), pattern(3 << 20, 6))
                .unwrap();
        });
        client.copy(CopySource::key("src"), "dst", &options)
    });
    let e = result.unwrap_err();
    assert_eq!(e.code(), Some("PreconditionFailed"), "{e:?}");
    assert_eq!(server.counters().get("UploadPartCopy") - before, 2);
    assert_eq!(server.counters().get("AbortMultipartUpload"), 1);
    assert!(server.multipart_uploads().is_empty());
    assert!(server.object("dst").is_none());
}

/// A server that answers every request with the same truncated page, whose marker never advances.
fn stuck_lister() -> (std::net::SocketAddr, std::thread::JoinHandle<usize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let page = "<ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated>\
                    <NextMarker>a</NextMarker><Contents><Key>a</Key><Size>1</Size><ETag>\"e\"</ETag>\
                    </Contents></ListBucketResult>";
        let mut served = 0;
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        loop {
            let mut line = String::new();
            // Request head (GETs carry no body); a closed connection ends the server.
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return served;
                }
                if line == "\r\n" {
                    break;
                }
            }
            served += 1;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{page}",
                page.len()
            );
        }
    });
    (addr, handle)
}

pub fn a_listing_whose_marker_does_not_advance_ends_with_an_error<D: Driver>() {
    let (addr, server) = stuck_lister();
    let config = Config::new(
        "b-1250000000",
        "ap-guangzhou",
        Credentials::new("id", "key"),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&format!("http://{addr}")).unwrap())
    .unwrap();
    let client = D::build(config, None);
    let mut pages = client.list_objects_pages(ListObjects::new());
    assert_eq!(pages.next().unwrap().unwrap().contents[0].key, "a");
    let e = pages.next().unwrap().unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
    assert!(e.to_string().contains("does not advance"), "{e}");
    assert!(pages.next().is_none(), "the listing has ended");
    drop(pages);
    drop(client);
    assert_eq!(server.join().unwrap(), 2, "two requests, no more");
}
