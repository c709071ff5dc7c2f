//! PUT Object - Copy (`x-cos-copy-source` on `PUT /<key>`) and Upload Part - Copy (the same on
//! `PUT /<key>?partNumber=&uploadId=`, with `x-cos-copy-source-range`).

use bytes::Bytes;
use serde::Deserialize;

use super::{
    non_empty, object_options, parse_xml, request, set_header, validate_upload_id, ObjectOptions,
    Operation, MAX_PART_NUMBER, MAX_PART_SIZE,
};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::{validate_key, Bucket, Config, Region};
use crate::error::{Error, InvalidInput};

/// Largest object one PUT Object - Copy may copy (larger sources need [`UploadPartCopy`]).
pub const MAX_COPY_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The object a copy reads: a key in this client's bucket, or in another bucket and region.
///
/// ```
/// use cos_core::ops::CopySource;
/// let same = CopySource::key("photos/a b.jpg");
/// let other = CopySource::key("a.jpg").bucket("otherbucket-1250000000", "ap-beijing");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySource {
    key: String,
    bucket: Option<(String, String)>,
    version_id: Option<String>,
}

impl CopySource {
    /// `key` in the client's own bucket.
    pub fn key(key: impl Into<String>) -> Self {
        CopySource {
            key: key.into(),
            bucket: None,
            version_id: None,
        }
    }

    /// Reads from `bucket` (`<name>-<appid>`) in `region` instead of the client's bucket.
    pub fn bucket(mut self, bucket: impl Into<String>, region: impl Into<String>) -> Self {
        self.bucket = Some((bucket.into(), region.into()));
        self
    }

    /// Copies this version of the source.
    pub fn version_id(mut self, v: impl Into<String>) -> Self {
        self.version_id = Some(v.into());
        self
    }

    /// The source key.
    pub fn source_key(&self) -> &str {
        &self.key
    }

    /// The `x-cos-copy-source` value: `<bucket>.cos.<region>.myqcloud.com/<url-encoded key>`.
    pub fn header_value(&self, config: &Config) -> Result<String, Error> {
        validate_key(&self.key)?;
        let (bucket, region) = match &self.bucket {
            Some((b, r)) => (
                Bucket::new(b.clone())?.as_str().to_string(),
                Region::new(r.clone())?.as_str().to_string(),
            ),
            None => (
                config.bucket.as_str().to_string(),
                config.region.as_str().to_string(),
            ),
        };
        let mut v = format!(
            "{bucket}.cos.{region}.myqcloud.com/{}",
            crate::auth::encode_path(&self.key)
        );
        if let Some(id) = self.version_id.as_ref().filter(|v| !v.is_empty()) {
            v += &format!("?versionId={}", crate::auth::encode(id));
        }
        Ok(v)
    }

    /// The other bucket and region set with [`bucket`](Self::bucket), if any.
    pub fn source_bucket(&self) -> Option<(&str, &str)> {
        self.bucket.as_ref().map(|(b, r)| (b.as_str(), r.as_str()))
    }

    /// The version set with [`version_id`](Self::version_id), if any.
    pub fn source_version_id(&self) -> Option<&str> {
        self.version_id.as_deref().filter(|v| !v.is_empty())
    }

    pub(crate) fn is_same_object(&self, dest_key: &str) -> bool {
        self.bucket.is_none() && self.version_id.is_none() && self.key == dest_key
    }
}

/// `x-cos-metadata-directive`: whether a copy keeps the source's metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataDirective {
    /// `Copy`: the destination gets the source's metadata; the request's own metadata headers are ignored.
    #[default]
    Copy,
    /// `Replaced`: the destination gets the metadata of this request.
    Replaced,
}

/// Conditions on the copy source (`x-cos-copy-source-If-*`); a failed one answers 412.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SourceConditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    if_unmodified_since: Option<String>,
}

impl SourceConditions {
    fn apply(&self, h: &mut http::HeaderMap) -> Result<(), Error> {
        let all = [
            ("x-cos-copy-source-if-match", &self.if_match),
            ("x-cos-copy-source-if-none-match", &self.if_none_match),
            (
                "x-cos-copy-source-if-modified-since",
                &self.if_modified_since,
            ),
            (
                "x-cos-copy-source-if-unmodified-since",
                &self.if_unmodified_since,
            ),
        ];
        for (n, v) in all {
            if let Some(v) = v {
                set_header(h, n, v)?;
            }
        }
        Ok(())
    }
}

/// PUT Object - Copy: creates `key` from a source object of at most 5 GiB, server-side.
///
/// COS can answer 200 and still fail (an `<Error>` body after the copy started): that is an error here.
///
/// ```
/// use cos_core::ops::{CopyObject, CopySource, MetadataDirective};
/// let copy = CopyObject::new("backup/a.txt", CopySource::key("a.txt"))
///     .metadata_directive(MetadataDirective::Replaced)
///     .content_type("text/plain");
/// ```
#[derive(Clone, Debug)]
pub struct CopyObject {
    key: String,
    source: CopySource,
    directive: MetadataDirective,
    source_conditions: SourceConditions,
    options: ObjectOptions,
}

impl CopyObject {
    /// Copies `source` to `key`.
    pub fn new(key: impl Into<String>, source: CopySource) -> Self {
        CopyObject {
            key: key.into(),
            source,
            directive: MetadataDirective::Copy,
            source_conditions: SourceConditions::default(),
            options: ObjectOptions::default(),
        }
    }

    /// `x-cos-metadata-directive` (default [`MetadataDirective::Copy`]).
    pub fn metadata_directive(mut self, d: MetadataDirective) -> Self {
        self.directive = d;
        self
    }

    /// `x-cos-copy-source-If-Match`: copy only if the source's ETag matches.
    pub fn source_if_match(mut self, etag: impl Into<String>) -> Self {
        self.source_conditions.if_match = Some(etag.into());
        self
    }

    /// `x-cos-copy-source-If-None-Match`.
    pub fn source_if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.source_conditions.if_none_match = Some(etag.into());
        self
    }

    /// `x-cos-copy-source-If-Modified-Since` (an HTTP date).
    pub fn source_if_modified_since(mut self, http_date: impl Into<String>) -> Self {
        self.source_conditions.if_modified_since = Some(http_date.into());
        self
    }

    /// `x-cos-copy-source-If-Unmodified-Since` (an HTTP date).
    pub fn source_if_unmodified_since(mut self, http_date: impl Into<String>) -> Self {
        self.source_conditions.if_unmodified_since = Some(http_date.into());
        self
    }
}

object_options!(CopyObject);

/// What PUT Object - Copy and Upload Part - Copy return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyObjectOutput {
    /// `ETag` of the new object (or part), quoted as COS sends it.
    pub etag: String,
    /// `LastModified` (ISO 8601).
    pub last_modified: Option<String>,
    /// `CRC64` of the new object (or part), when COS reports it.
    pub crc64: Option<u64>,
    /// `x-cos-version-id` of the new object.
    pub version_id: Option<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CopyResultXml {
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(rename = "LastModified")]
    last_modified: Option<String>,
    #[serde(rename = "CRC64")]
    crc64: Option<String>,
}

fn parse_copy_result(
    response: &http::Response<Bytes>,
    root: &str,
) -> Result<CopyObjectOutput, Error> {
    // parse_xml turns an <Error> body into an error even with status 200.
    let x: CopyResultXml = parse_xml(response, root)?;
    if x.etag.trim().is_empty() {
        return Err(super::unexpected(
            response,
            &format!("<{root}> without an ETag"),
        ));
    }
    let crc64 = super::parse_number(response, "CRC64", x.crc64.as_deref())?
        .or_else(|| super::crc64_header(response));
    Ok(CopyObjectOutput {
        etag: x.etag,
        last_modified: non_empty(x.last_modified),
        crc64,
        version_id: super::version_id(response),
        request_id: super::request_id(response),
    })
}

impl Operation for CopyObject {
    type Output = CopyObjectOutput;
    const NAME: &'static str = "PutObjectCopy";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let source = self.source.header_value(config)?;
        if self.directive == MetadataDirective::Copy && self.source.is_same_object(&self.key) {
            return Err(InvalidInput::Parameter {
                name: "x-cos-copy-source",
                reason: "copying an object onto itself needs MetadataDirective::Replaced".into(),
            }
            .into());
        }
        let mut req = request(
            config,
            http::Method::PUT,
            &self.key,
            &[],
            RequestBody::Empty,
        )?;
        let h = req.headers_mut();
        self.options.apply(h)?;
        set_header(h, "x-cos-copy-source", &source)?;
        set_header(
            h,
            "x-cos-metadata-directive",
            match self.directive {
                MetadataDirective::Copy => "Copy",
                MetadataDirective::Replaced => "Replaced",
            },
        )?;
        self.source_conditions.apply(h)?;
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<CopyObjectOutput, Error> {
        parse_copy_result(response, "CopyObjectResult")
    }
}

/// Upload Part - Copy: one part of a multipart upload read server-side from a source object (a byte range
/// of it, or all of it), e.g. to copy sources above 5 GiB.
///
/// ```
/// use cos_core::ops::{CopySource, UploadPartCopy};
/// let part = UploadPartCopy::new("big.bin", "upload-id", 1, CopySource::key("src.bin")).range(0, 8_388_607);
/// ```
#[derive(Clone, Debug)]
pub struct UploadPartCopy {
    key: String,
    upload_id: String,
    part_number: u32,
    source: CopySource,
    range: Option<(u64, u64)>,
    source_conditions: SourceConditions,
}

impl UploadPartCopy {
    /// Copies `source` (all of it, unless [`range`](Self::range) is set) as part `part_number`.
    pub fn new(
        key: impl Into<String>,
        upload_id: impl Into<String>,
        part_number: u32,
        source: CopySource,
    ) -> Self {
        UploadPartCopy {
            key: key.into(),
            upload_id: upload_id.into(),
            part_number,
            source,
            range: None,
            source_conditions: SourceConditions::default(),
        }
    }

    /// `x-cos-copy-source-range: bytes=first-last` (inclusive; at most 5 GiB).
    pub fn range(mut self, first: u64, last_inclusive: u64) -> Self {
        self.range = Some((first, last_inclusive));
        self
    }

    /// `x-cos-copy-source-If-Match`: copy only if the source's ETag matches.
    pub fn source_if_match(mut self, etag: impl Into<String>) -> Self {
        self.source_conditions.if_match = Some(etag.into());
        self
    }

    /// The part number.
    pub fn part_number(&self) -> u32 {
        self.part_number
    }
}

impl Operation for UploadPartCopy {
    type Output = CopyObjectOutput;
    const NAME: &'static str = "UploadPartCopy";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        validate_upload_id(&self.upload_id)?;
        if !(1..=MAX_PART_NUMBER).contains(&self.part_number) {
            return Err(InvalidInput::PartNumber(self.part_number.into()).into());
        }
        let source = self.source.header_value(config)?;
        let mut req = request(
            config,
            http::Method::PUT,
            &self.key,
            &[
                ("partNumber", self.part_number.to_string()),
                ("uploadId", self.upload_id.clone()),
            ],
            RequestBody::Empty,
        )?;
        let h = req.headers_mut();
        set_header(h, "x-cos-copy-source", &source)?;
        if let Some((first, last)) = self.range {
            if last < first {
                return Err(InvalidInput::Parameter {
                    name: "x-cos-copy-source-range",
                    reason: format!("first byte {first} is after last byte {last}"),
                }
                .into());
            }
            if last - first + 1 > MAX_PART_SIZE {
                return Err(InvalidInput::Size {
                    what: "copied part",
                    size: last - first + 1,
                    limit: "at most 5 GiB",
                }
                .into());
            }
            set_header(
                h,
                "x-cos-copy-source-range",
                &format!("bytes={first}-{last}"),
            )?;
        }
        self.source_conditions.apply(h)?;
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<CopyObjectOutput, Error> {
        parse_copy_result(response, "CopyPartResult")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header, response, signed};

    #[test]
    fn copy_request() {
        let req = CopyObject::new("dst", CopySource::key("src dir/a+b.txt"))
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::PUT);
        assert_eq!(
            header(&req, "x-cos-copy-source"),
            Some("examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/src%20dir/a%2Bb.txt")
        );
        assert_eq!(header(&req, "x-cos-metadata-directive"), Some("Copy"));
        assert_eq!(header(&req, "content-length"), Some("0"));
        assert!(signed(req)
            .header_list
            .contains(&"x-cos-copy-source".to_string()));

        let req = CopyObject::new(
            "dst",
            CopySource::key("a")
                .bucket("other-1250000000", "ap-beijing")
                .version_id("v1"),
        )
        .metadata_directive(MetadataDirective::Replaced)
        .content_type("text/plain")
        .metadata("k", "v")
        .source_if_match("\"e\"")
        .to_request(&config())
        .unwrap();
        assert_eq!(
            header(&req, "x-cos-copy-source"),
            Some("other-1250000000.cos.ap-beijing.myqcloud.com/a?versionId=v1")
        );
        assert_eq!(header(&req, "x-cos-metadata-directive"), Some("Replaced"));
        assert_eq!(header(&req, "x-cos-meta-k"), Some("v"));
        assert_eq!(header(&req, "content-type"), Some("text/plain"));
        assert_eq!(header(&req, "x-cos-copy-source-if-match"), Some("\"e\""));
    }

    #[test]
    fn copy_invalid_input() {
        let bad = |op: CopyObject| op.to_request(&config()).unwrap_err();
        assert!(matches!(
            bad(CopyObject::new("a", CopySource::key("a"))),
            Error::InvalidInput(InvalidInput::Parameter { .. })
        ));
        assert!(CopyObject::new("a", CopySource::key("a"))
            .metadata_directive(MetadataDirective::Replaced)
            .to_request(&config())
            .is_ok());
        assert!(matches!(
            bad(CopyObject::new("a", CopySource::key(""))),
            Error::InvalidInput(InvalidInput::Key { .. })
        ));
        assert!(matches!(
            bad(CopyObject::new(
                "a",
                CopySource::key("b").bucket("NoAppId", "ap-beijing")
            )),
            Error::InvalidInput(InvalidInput::Bucket { .. })
        ));
    }

    #[test]
    fn copy_results() {
        let ok = "<CopyObjectResult><ETag>\"abc\"</ETag><LastModified>2026-01-01T00:00:00Z</LastModified>\
                  <CRC64>123</CRC64></CopyObjectResult>";
        let out = CopyObject::new("a", CopySource::key("b"))
            .parse_response(&response(200, &[], ok), None)
            .unwrap();
        assert_eq!(out.etag, "\"abc\"");
        assert_eq!(out.crc64, Some(123));
        // COS may fail after answering 200.
        let err = "<Error><Code>InternalError</Code><Message>copy failed</Message></Error>";
        let e = CopyObject::new("a", CopySource::key("b"))
            .parse_response(&response(200, &[], err), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("InternalError"));
        let e = CopyObject::new("a", CopySource::key("b"))
            .parse_response(&response(200, &[], ""), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
    }

    #[test]
    fn part_copy_request() {
        let req = UploadPartCopy::new("big", "u1", 3, CopySource::key("src"))
            .range(10, 19)
            .to_request(&config())
            .unwrap();
        assert_eq!(req.uri().query(), Some("partNumber=3&uploadId=u1"));
        assert_eq!(header(&req, "x-cos-copy-source-range"), Some("bytes=10-19"));
        let bad = |op: UploadPartCopy| op.to_request(&config()).unwrap_err();
        assert!(matches!(
            bad(UploadPartCopy::new("big", "u1", 0, CopySource::key("s"))),
            Error::InvalidInput(InvalidInput::PartNumber(0))
        ));
        assert!(matches!(
            bad(UploadPartCopy::new("big", "u1", 1, CopySource::key("s")).range(5, 4)),
            Error::InvalidInput(InvalidInput::Parameter { .. })
        ));
        assert!(matches!(
            bad(UploadPartCopy::new("big", "u1", 1, CopySource::key("s")).range(0, 6 << 30)),
            Error::InvalidInput(InvalidInput::Size { .. })
        ));
        assert!(matches!(
            bad(UploadPartCopy::new("big", "", 1, CopySource::key("s"))),
            Error::InvalidInput(InvalidInput::Parameter { .. })
        ));
        let ok =
            "<CopyPartResult><ETag>\"p\"</ETag><LastModified>x</LastModified></CopyPartResult>";
        let out = UploadPartCopy::new("big", "u1", 1, CopySource::key("s"))
            .parse_response(&response(200, &[("x-cos-hash-crc64ecma", "9")], ok), None)
            .unwrap();
        assert_eq!(out.etag, "\"p\"");
        assert_eq!(out.crc64, Some(9));
    }
}
