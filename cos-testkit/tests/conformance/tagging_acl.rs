//! Object tagging and ACL calls, and the typed `x-cos-tagging` option.

use super::*;
use cos_core::ops::{
    Acl, CompleteMultipartUpload, CompletedPart, Grant, Grantee, InitiateMultipartUpload,
    Permission, PutObject, PutObjectAcl, Tags, UploadPart,
};

pub fn object_tagging_calls_and_typed_option<D: Driver>() {
    let (server, client) = start::<D>();
    let tags = Tags::new().tag("project", "alpha").tag("team", "a&b c");
    client
        .put_object(PutObject::new("t.txt").tagging(tags.clone()), "hello")
        .unwrap();
    assert_eq!(client.get_object_tagging("t.txt").unwrap(), tags);

    // Multipart: tags given on Initiate reach the object.
    let init = client
        .initiate_multipart_upload(
            InitiateMultipartUpload::new("m.bin").tagging(Tags::new().tag("k", "v")),
        )
        .unwrap();
    let part = client
        .upload_part(UploadPart::new("m.bin", &init.upload_id, 1), "part")
        .unwrap();
    client
        .complete_multipart_upload(CompleteMultipartUpload::new(
            "m.bin",
            &init.upload_id,
            vec![CompletedPart {
                part_number: 1,
                etag: part.etag,
            }],
        ))
        .unwrap();
    assert_eq!(
        client.get_object_tagging("m.bin").unwrap(),
        Tags::new().tag("k", "v")
    );

    let replaced = Tags::new().tag("only", "one");
    client
        .put_object_tagging("t.txt", replaced.clone())
        .unwrap();
    assert_eq!(client.get_object_tagging("t.txt").unwrap(), replaced);
    client.delete_object_tagging("t.txt").unwrap();
    assert!(client.get_object_tagging("t.txt").unwrap().is_empty());
    assert_eq!(
        server.object("t.txt").unwrap().data.as_deref(),
        Some(&b"hello"[..])
    );

    // Bad tags are refused before anything is sent.
    let before = server.counters().total;
    let err = client
        .put_object(PutObject::new("x").tagging(Tags::new().tag("", "v")), "x")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let err = client
        .put_object_tagging("t.txt", Tags::new().tag("k", "1").tag("k", "2"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(server.counters().total, before);
    let err = client.get_object_tagging("missing").unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
}

pub fn object_acl_calls<D: Driver>() {
    let (_server, client) = start::<D>();
    client.put_object(PutObject::new("a.txt"), "x").unwrap();
    let acl = client.get_object_acl("a.txt").unwrap();
    let owner = acl.owner.clone().unwrap();
    assert_eq!(
        acl.grants,
        vec![Grant {
            grantee: Grantee::User {
                id: owner.id.clone(),
                display_name: owner.display_name.clone()
            },
            permission: Permission::FullControl
        }]
    );
    let user = "qcs::cam::uin/100000000001:uin/100000000011";
    client
        .put_object_acl(
            PutObjectAcl::new("a.txt")
                .acl(Acl::PublicRead)
                .grant_read(format!("id=\"{user}\"")),
        )
        .unwrap();
    let acl = client.get_object_acl("a.txt").unwrap();
    assert!(acl.grants.contains(&Grant {
        grantee: Grantee::Group {
            uri: "http://cam.qcloud.com/groups/global/AllUsers".into()
        },
        permission: Permission::Read
    }));
    assert!(acl.grants.iter().any(|g| g.permission == Permission::Read
        && matches!(&g.grantee, Grantee::User { id, .. } if id == user)));
    let err = client.get_object_acl("missing").unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    let err = client
        .put_object_acl(PutObjectAcl::new("a.txt"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}
