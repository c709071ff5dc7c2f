//! List Multipart Uploads: `GET /?uploads`, the bucket's unfinished multipart uploads.

use bytes::Bytes;
use serde::Deserialize;

use super::multipart::{storage_class, OwnerXml};
use super::{
    non_empty, parse_bool, parse_number, parse_xml, request, url_decoded, validate_max, Operation,
    Owner, StorageClass,
};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::Config;
use crate::error::Error;

/// List Multipart Uploads (1000 per page at most), e.g. to find an unfinished upload of a key to resume.
///
/// ```
/// let list = cos_core::ops::ListMultipartUploads::new().prefix("videos/").max_uploads(100);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ListMultipartUploads {
    prefix: Option<String>,
    delimiter: Option<String>,
    key_marker: Option<String>,
    upload_id_marker: Option<String>,
    max_uploads: Option<u32>,
    encoding_type_url: bool,
}

impl ListMultipartUploads {
    /// Lists every unfinished upload of the bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// `prefix`: only keys starting with it.
    pub fn prefix(mut self, v: impl Into<String>) -> Self {
        self.prefix = Some(v.into());
        self
    }

    /// `delimiter`: group keys sharing a prefix up to it into `common_prefixes`.
    pub fn delimiter(mut self, v: impl Into<String>) -> Self {
        self.delimiter = Some(v.into());
        self
    }

    /// `key-marker`: start after this key (a page's `next_key_marker`).
    pub fn key_marker(mut self, v: impl Into<String>) -> Self {
        self.key_marker = Some(v.into());
        self
    }

    /// `upload-id-marker`: with `key-marker`, start after this upload (a page's `next_upload_id_marker`).
    pub fn upload_id_marker(mut self, v: impl Into<String>) -> Self {
        self.upload_id_marker = Some(v.into());
        self
    }

    /// `max-uploads` (1..=1000; COS's default is 1000).
    pub fn max_uploads(mut self, n: u32) -> Self {
        self.max_uploads = Some(n);
        self
    }

    /// `encoding-type=url`: COS percent-encodes keys, prefixes and markers; they are decoded in the output.
    pub fn encoding_type_url(mut self) -> Self {
        self.encoding_type_url = true;
        self
    }
}

/// One unfinished upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// `Key`.
    pub key: String,
    /// `UploadId`.
    pub upload_id: String,
    /// `StorageClass`.
    pub storage_class: Option<StorageClass>,
    /// `Initiator`.
    pub initiator: Option<Owner>,
    /// `Owner`.
    pub owner: Option<Owner>,
    /// `Initiated` (ISO 8601).
    pub initiated: Option<String>,
}

/// What List Multipart Uploads returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMultipartUploadsOutput {
    /// `Bucket`.
    pub bucket: String,
    /// `Encoding-Type`, when COS echoes it.
    pub encoding_type: Option<String>,
    /// `Prefix`.
    pub prefix: Option<String>,
    /// `Delimiter`.
    pub delimiter: Option<String>,
    /// `KeyMarker`.
    pub key_marker: Option<String>,
    /// `UploadIdMarker`.
    pub upload_id_marker: Option<String>,
    /// `NextKeyMarker`: pass it as `key_marker` for the next page.
    pub next_key_marker: Option<String>,
    /// `NextUploadIdMarker`: pass it as `upload_id_marker` for the next page.
    pub next_upload_id_marker: Option<String>,
    /// `MaxUploads`.
    pub max_uploads: u32,
    /// `IsTruncated`: more pages follow.
    pub is_truncated: bool,
    /// The uploads of this page.
    pub uploads: Vec<UploadInfo>,
    /// `CommonPrefixes/Prefix` (with a delimiter).
    pub common_prefixes: Vec<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListUploadsXml {
    #[serde(rename = "Bucket")]
    bucket: String,
    #[serde(
        rename = "Encoding-Type",
        alias = "Encoding-type",
        alias = "EncodingType"
    )]
    encoding_type: Option<String>,
    #[serde(rename = "KeyMarker")]
    key_marker: Option<String>,
    #[serde(rename = "UploadIdMarker", alias = "UploadIDMarker")]
    upload_id_marker: Option<String>,
    #[serde(rename = "NextKeyMarker")]
    next_key_marker: Option<String>,
    #[serde(rename = "NextUploadIdMarker", alias = "NextUploadIDMarker")]
    next_upload_id_marker: Option<String>,
    #[serde(rename = "MaxUploads")]
    max_uploads: Option<String>,
    #[serde(rename = "IsTruncated")]
    is_truncated: Option<String>,
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Delimiter")]
    delimiter: Option<String>,
    #[serde(rename = "Upload")]
    uploads: Vec<UploadXml>,
    #[serde(rename = "CommonPrefixes")]
    common_prefixes: Vec<PrefixXml>,
    #[serde(rename = "CommonPrefixs")]
    common_prefixs: Vec<PrefixXml>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UploadXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "UploadId", alias = "UploadID")]
    upload_id: String,
    #[serde(rename = "StorageClass")]
    storage_class: Option<String>,
    #[serde(rename = "Initiator")]
    initiator: Option<OwnerXml>,
    #[serde(rename = "Owner")]
    owner: Option<OwnerXml>,
    #[serde(rename = "Initiated")]
    initiated: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PrefixXml {
    #[serde(rename = "Prefix")]
    pub(crate) prefix: String,
}

impl Operation for ListMultipartUploads {
    type Output = ListMultipartUploadsOutput;
    const NAME: &'static str = "ListMultipartUploads";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        let mut query = vec![("uploads", String::new())];
        let optional = [
            ("delimiter", &self.delimiter),
            ("key-marker", &self.key_marker),
            ("prefix", &self.prefix),
            ("upload-id-marker", &self.upload_id_marker),
        ];
        for (name, value) in optional {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                query.push((name, v.clone()));
            }
        }
        if self.encoding_type_url {
            query.push(("encoding-type", "url".to_string()));
        }
        if let Some(n) = self.max_uploads {
            validate_max("max-uploads", n)?;
            query.push(("max-uploads", n.to_string()));
        }
        // The bucket root: key "" gives the path "/".
        let mut req = request(config, http::Method::GET, "", &query, RequestBody::Empty)?;
        super::accept_success_body(&mut req, super::MAX_LISTING_BODY);
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ListMultipartUploadsOutput, Error> {
        let x: ListUploadsXml = parse_xml(response, "ListMultipartUploadsResult")?;
        let encoding_type = non_empty(x.encoding_type);
        let encoded = encoding_type
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("url"))
            || (self.encoding_type_url && encoding_type.is_none());
        let decode = |v: Option<String>| -> Result<Option<String>, Error> {
            non_empty(v)
                .map(|v| url_decoded(response, encoded, v))
                .transpose()
        };
        let mut uploads = Vec::with_capacity(x.uploads.len());
        for u in x.uploads {
            uploads.push(UploadInfo {
                key: url_decoded(response, encoded, u.key)?,
                upload_id: u.upload_id,
                storage_class: storage_class(u.storage_class),
                initiator: OwnerXml::into_owner(u.initiator),
                owner: OwnerXml::into_owner(u.owner),
                initiated: non_empty(u.initiated),
            });
        }
        let common_prefixes = x
            .common_prefixes
            .into_iter()
            .chain(x.common_prefixs)
            .filter(|p| !p.prefix.is_empty())
            .map(|p| url_decoded(response, encoded, p.prefix))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListMultipartUploadsOutput {
            bucket: x.bucket,
            encoding_type,
            prefix: decode(x.prefix)?,
            delimiter: decode(x.delimiter)?,
            key_marker: decode(x.key_marker)?,
            upload_id_marker: non_empty(x.upload_id_marker),
            next_key_marker: decode(x.next_key_marker)?,
            next_upload_id_marker: non_empty(x.next_upload_id_marker),
            max_uploads: parse_number(response, "MaxUploads", x.max_uploads.as_deref())?
                .unwrap_or(1000),
            is_truncated: parse_bool(response, "IsTruncated", x.is_truncated.as_deref())?,
            uploads,
            common_prefixes,
            request_id: super::request_id(response),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvalidInput;
    use crate::ops::test_util::{config, header as req_header, response, signed, HTML_502};

    #[test]
    fn request_shape() {
        let req = ListMultipartUploads::new().to_request(&config()).unwrap();
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(
            req.uri().to_string(),
            "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/?uploads"
        );
        assert_eq!(req_header(&req, "content-length"), None);
        assert_eq!(signed(req).param_list, vec!["uploads"]);

        let req = ListMultipartUploads::new()
            .prefix("dir/a b")
            .delimiter("/")
            .key_marker("dir/k")
            .upload_id_marker("u1")
            .max_uploads(10)
            .encoding_type_url()
            .to_request(&config())
            .unwrap();
        assert_eq!(req.uri().path(), "/");
        assert_eq!(
            req.uri().query(),
            Some("uploads&delimiter=%2F&key-marker=dir%2Fk&prefix=dir%2Fa%20b&upload-id-marker=u1&encoding-type=url&max-uploads=10")
        );
        assert_eq!(
            signed(req).param_list,
            vec![
                "delimiter",
                "encoding-type",
                "key-marker",
                "max-uploads",
                "prefix",
                "upload-id-marker",
                "uploads"
            ]
        );
    }

    #[test]
    fn empty_prefix_is_omitted() {
        let req = ListMultipartUploads::new()
            .prefix("")
            .to_request(&config())
            .unwrap();
        assert_eq!(req.uri().query(), Some("uploads"));
    }

    #[test]
    fn max_uploads_limits() {
        for n in [0, 1001] {
            let e = ListMultipartUploads::new()
                .max_uploads(n)
                .to_request(&config())
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidInput(InvalidInput::Parameter {
                        name: "max-uploads",
                        ..
                    })
                ),
                "{e:?}"
            );
        }
        assert!(ListMultipartUploads::new()
            .max_uploads(1000)
            .to_request(&config())
            .is_ok());
    }

    const ENCODED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult>
    <Bucket>examplebucket-1250000000</Bucket>
    <Encoding-Type>url</Encoding-Type>
    <KeyMarker/>
    <UploadIdMarker></UploadIdMarker>
    <NextKeyMarker>dir%2Fz%20z.bin</NextKeyMarker>
    <NextUploadID>ignored-unknown-field</NextUploadID>
    <NextUploadIdMarker>1585130821cbb7df</NextUploadIdMarker>
    <MaxUploads>2</MaxUploads>
    <IsTruncated>true</IsTruncated>
    <Prefix>dir%2F</Prefix>
    <Delimiter>%2F</Delimiter>
    <Upload>
        <Key>dir%2Fa%20b%2B%E4%B8%AD.bin</Key>
        <UploadID>1585130821cbb7df1d11846c073ad648</UploadID>
        <StorageClass>STANDARD_IA</StorageClass>
        <Initiator>
            <ID>qcs::cam::uin/100000000001:uin/100000000011</ID>
            <DisplayName>100000000011</DisplayName>
        </Initiator>
        <Owner>
            <ID>qcs::cam::uin/100000000001:uin/100000000001</ID>
            <DisplayName>100000000001</DisplayName>
        </Owner>
        <Initiated>2020-03-25T10:07:03.000Z</Initiated>
    </Upload>
    <Upload>
        <Key>dir%2Fz%20z.bin</Key>
        <UploadId>1585130821cbb7df</UploadId>
        <StorageClass>STANDARD</StorageClass>
        <Initiated>2020-03-26T10:07:03.000Z</Initiated>
    </Upload>
    <CommonPrefixs>
        <Prefix>dir%2Fsub%20dir%2F</Prefix>
    </CommonPrefixs>
    <CommonPrefixs>
        <Prefix>dir%2Fother%2F</Prefix>
    </CommonPrefixs>
</ListMultipartUploadsResult>"#;

    #[test]
    fn parses_encoded_listing_with_aliases() {
        let out = ListMultipartUploads::new()
            .encoding_type_url()
            .parse_response(
                &response(200, &[("x-cos-request-id", "rid")], ENCODED),
                None,
            )
            .unwrap();
        assert_eq!(out.bucket, "examplebucket-1250000000");
        assert_eq!(out.encoding_type.as_deref(), Some("url"));
        assert_eq!(out.prefix.as_deref(), Some("dir/"));
        assert_eq!(out.delimiter.as_deref(), Some("/"));
        assert_eq!(out.key_marker, None);
        assert_eq!(out.upload_id_marker, None);
        assert_eq!(out.next_key_marker.as_deref(), Some("dir/z z.bin"));
        assert_eq!(
            out.next_upload_id_marker.as_deref(),
            Some("1585130821cbb7df")
        );
        assert_eq!(out.max_uploads, 2);
        assert!(out.is_truncated);
        assert_eq!(out.uploads.len(), 2);
        let u = &out.uploads[0];
        assert_eq!(u.key, "dir/a b+中.bin");
        assert_eq!(u.upload_id, "1585130821cbb7df1d11846c073ad648");
        assert_eq!(u.storage_class, Some(StorageClass::StandardIa));
        assert_eq!(
            u.initiator.as_ref().unwrap().id,
            "qcs::cam::uin/100000000001:uin/100000000011"
        );
        assert_eq!(
            u.owner.as_ref().unwrap().display_name.as_deref(),
            Some("100000000001")
        );
        assert_eq!(u.initiated.as_deref(), Some("2020-03-25T10:07:03.000Z"));
        assert_eq!(out.uploads[1].key, "dir/z z.bin");
        assert_eq!(out.uploads[1].initiator, None);
        assert_eq!(out.common_prefixes, vec!["dir/sub dir/", "dir/other/"]);
        assert_eq!(out.request_id.as_deref(), Some("rid"));
    }

    #[test]
    fn parses_plain_listing() {
        let xml = "<ListMultipartUploadsResult><Bucket>b-1</Bucket><Prefix>a%20</Prefix>\
                   <MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>\
                   <Upload><Key>a%20b</Key><UploadId>u</UploadId></Upload>\
                   <CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListMultipartUploadsResult>";
        let out = ListMultipartUploads::new()
            .parse_response(&response(200, &[], xml), None)
            .unwrap();
        assert_eq!(
            out.uploads[0].key, "a%20b",
            "not url-encoded: taken as it is"
        );
        assert_eq!(out.prefix.as_deref(), Some("a%20"));
        assert_eq!(out.common_prefixes, vec!["p/"]);
        assert!(!out.is_truncated);
        assert_eq!(out.encoding_type, None);
    }

    #[test]
    fn empty_listing() {
        let xml = "<ListMultipartUploadsResult><Bucket>b-1</Bucket><MaxUploads>1000</MaxUploads>\
                   <IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
        let out = ListMultipartUploads::new()
            .parse_response(&response(200, &[], xml), None)
            .unwrap();
        assert!(out.uploads.is_empty() && out.common_prefixes.is_empty());
    }

    #[test]
    fn bad_answers() {
        let op = ListMultipartUploads::new();
        let e = op
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert!(e.is_retryable());
        let e = op
            .parse_response(&response(200, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        let bad = "<ListMultipartUploadsResult><IsTruncated>maybe</IsTruncated></ListMultipartUploadsResult>";
        let e = op
            .parse_response(&response(200, &[], bad), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        let bad =
            "<ListMultipartUploadsResult><Encoding-Type>url</Encoding-Type><Upload><Key>%zz</Key>\
                   </Upload></ListMultipartUploadsResult>";
        let e = op
            .parse_response(&response(200, &[], bad), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        let xml = "<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>";
        let e = op
            .parse_response(&response(404, &[], xml), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchBucket"));
    }
}
