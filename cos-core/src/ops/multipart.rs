//! Multipart upload: Initiate (`POST ?uploads`), Upload Part (`PUT ?partNumber&uploadId`), List Parts
//! (`GET ?uploadId`), Complete (`POST ?uploadId`) and Abort (`DELETE ?uploadId`).

use bytes::Bytes;
use serde::Deserialize;

use super::{
    check_crc64, crc64_header, header, non_empty, object_options, parse_bool, parse_number,
    parse_xml, request, set_header, unexpected, url_decoded, validate_max, validate_traffic_limit,
    validate_upload_id, version_id, ObjectOptions, Operation, StorageClass,
};
use crate::body::RequestBody;
use crate::checksum::{BodyDigest, SentDigest};
use crate::config::{validate_key, Config};
use crate::error::{Error, InvalidInput};

/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Largest part (5 GB).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

fn validate_part_number(n: u32) -> Result<(), Error> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(InvalidInput::PartNumber(u64::from(n)).into())
    }
}

/// The owner or initiator of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `ID`, e.g. `qcs::cam::uin/100000000001:uin/100000000001`.
    pub id: String,
    /// `DisplayName`.
    pub display_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct OwnerXml {
    #[serde(rename = "ID", alias = "Id", alias = "UIN")]
    id: Option<String>,
    #[serde(rename = "DisplayName")]
    display_name: Option<String>,
}

impl OwnerXml {
    pub(crate) fn into_owner(o: Option<OwnerXml>) -> Option<Owner> {
        let o = o?;
        let id = non_empty(o.id);
        let display_name = non_empty(o.display_name);
        if id.is_none() && display_name.is_none() {
            return None;
        }
        Some(Owner {
            id: id.unwrap_or_default(),
            display_name,
        })
    }
}

/// A storage class from an XML field (empty or absent: `None`).
pub(crate) fn storage_class(v: Option<String>) -> Option<StorageClass> {
    non_empty(v.map(|s| s.trim().to_string())).map(|s| StorageClass::parse(&s))
}

// ---------------------------------------------------------------------------------------------------------
// Initiate

/// Initiate Multipart Upload: `POST /<key>?uploads`. Takes the same optional headers as PUT Object
/// (they apply to the completed object).
///
/// ```
/// let init = cos_core::ops::InitiateMultipartUpload::new("big.bin").forbid_overwrite();
/// ```
#[derive(Clone, Debug)]
pub struct InitiateMultipartUpload {
    key: String,
    options: ObjectOptions,
}

object_options!(InitiateMultipartUpload);

impl InitiateMultipartUpload {
    /// Starts an upload of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        InitiateMultipartUpload {
            key: key.into(),
            options: ObjectOptions::default(),
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The options (headers) the upload was started with.
    pub fn object_options(&self) -> &ObjectOptions {
        &self.options
    }
}

/// What Initiate Multipart Upload returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitiateMultipartUploadOutput {
    /// `Bucket`.
    pub bucket: String,
    /// `Key`.
    pub key: String,
    /// `UploadId`: names the upload in every later request.
    pub upload_id: String,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InitiateXml {
    #[serde(rename = "Bucket")]
    bucket: String,
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "UploadId", alias = "UploadID")]
    upload_id: String,
}

impl Operation for InitiateMultipartUpload {
    type Output = InitiateMultipartUploadOutput;
    const NAME: &'static str = "InitiateMultipartUpload";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let mut req = request(
            config,
            http::Method::POST,
            &self.key,
            &[("uploads", String::new())],
            RequestBody::Empty,
        )?;
        self.options.apply(req.headers_mut())?;
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<InitiateMultipartUploadOutput, Error> {
        let x: InitiateXml = parse_xml(response, "InitiateMultipartUploadResult")?;
        let upload_id = x.upload_id.trim().to_string();
        if upload_id.is_empty() {
            return Err(unexpected(
                response,
                "InitiateMultipartUploadResult without an UploadId",
            ));
        }
        Ok(InitiateMultipartUploadOutput {
            bucket: x.bucket,
            key: x.key,
            upload_id,
            request_id: super::request_id(response),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Upload Part

/// Upload Part: `PUT /<key>?partNumber=<n>&uploadId=<id>`. Uploading the same number again replaces the part.
///
/// ```
/// let part = cos_core::ops::UploadPart::new("big.bin", "1585130821cbb7df1d11846c073ad648e8f33b087cec2381df437acdc833cf654b9ecc6361", 1)
///     .with_source(0, 8 * 1024 * 1024);
/// ```
#[derive(Clone, Debug)]
pub struct UploadPart {
    key: String,
    upload_id: String,
    part_number: u32,
    body: RequestBody,
    bytes_digest: Option<SentDigest>,
    content_md5: Option<String>,
    traffic_limit: Option<u64>,
    extra_headers: Vec<(String, String)>,
    accept_unverified: bool,
    verify_md5: bool,
}

impl UploadPart {
    /// Accepts an answer that lets nothing be verified (neither an MD5 ETag nor a CRC-64 to compare with
    /// the bytes sent) as a success with [`super::Verified::Nothing`]; by default it is an
    /// [`crate::error::IntegrityError::Unverified`] error.
    pub fn accept_unverified(mut self) -> Self {
        self.accept_unverified = true;
        self
    }

    /// Part `part_number` (1..=10000) of upload `upload_id`, with an empty body.
    pub fn new(key: impl Into<String>, upload_id: impl Into<String>, part_number: u32) -> Self {
        UploadPart {
            key: key.into(),
            upload_id: upload_id.into(),
            part_number,
            body: RequestBody::Empty,
            bytes_digest: None,
            accept_unverified: false,
            content_md5: None,
            traffic_limit: None,
            extra_headers: Vec::new(),
            verify_md5: false,
        }
    }

    /// The body: `len` bytes of the driver's source from `offset`.
    pub fn with_source(mut self, offset: u64, len: u64) -> Self {
        self.body = RequestBody::Source {
            offset,
            len,
            md5: false,
        };
        self.refresh_digest();
        self
    }

    /// The body: these bytes.
    pub fn with_bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        self.body = RequestBody::Bytes(bytes.into());
        self.refresh_digest();
        self
    }

    /// Also computes the part's MD5 and checks the ETag against it (the CRC-64 check is always made). Off by
    /// default: MD5 costs about 1.3 s of CPU per GiB here, CRC-64 about 0.08 s. Setting
    /// [`UploadPart::content_md5`] turns it on.
    pub fn verify_md5(mut self, on: bool) -> Self {
        self.verify_md5 = on;
        self.refresh_digest();
        self
    }

    /// `Content-MD5` (base64 of the part's MD5): COS rejects a part that does not match (`InvalidDigest`);
    /// the ETag is then checked against the MD5 computed while sending too.
    pub fn content_md5(mut self, base64_md5: impl Into<String>) -> Self {
        self.content_md5 = Some(base64_md5.into());
        self.refresh_digest();
        self
    }

    /// Computes `Content-MD5` from a bytes body (streamed bodies: use [`UploadPart::content_md5`]); turns
    /// [`UploadPart::verify_md5`] on.
    pub fn send_content_md5(mut self) -> Self {
        self.verify_md5 = true;
        self.refresh_digest();
        if let Some(md5) = self.bytes_digest.and_then(|d| d.md5_base64()) {
            self.content_md5 = Some(md5);
        }
        self
    }

    /// Recomputes what the body's digest includes after a change of body or of the MD5 choice.
    fn refresh_digest(&mut self) {
        let md5 = self.verify_md5 || self.content_md5.is_some();
        match &mut self.body {
            RequestBody::Bytes(b) => self.bytes_digest = Some(BodyDigest::of_with_md5(b, md5)),
            RequestBody::Source { md5: m, .. } => {
                *m = md5;
                self.bytes_digest = None;
            }
            RequestBody::Empty => self.bytes_digest = None,
        }
    }

    /// `x-cos-traffic-limit` in bit/s (819200..=838860800).
    pub fn traffic_limit(mut self, bits_per_second: u64) -> Self {
        self.traffic_limit = Some(bits_per_second);
        self
    }

    /// Any other header (e.g. SSE-C headers).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The upload id.
    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// The part number.
    pub fn part_number(&self) -> u32 {
        self.part_number
    }

    /// The body.
    pub fn body(&self) -> &RequestBody {
        &self.body
    }
}

/// What Upload Part returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartOutput {
    /// `ETag` (the part's MD5), quoted as COS sends it; give it to Complete.
    pub etag: String,
    /// `x-cos-hash-crc64ecma` of the part.
    pub crc64: Option<u64>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
    /// What was sent (the driver's digest for a streamed body, or the bytes' digest), for combining the
    /// parts' CRC-64s into the object's.
    pub sent: Option<SentDigest>,
    /// What the answer let the core check against the bytes sent.
    pub verified: super::Verified,
}

impl Operation for UploadPart {
    type Output = UploadPartOutput;
    const NAME: &'static str = "UploadPart";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        validate_upload_id(&self.upload_id)?;
        validate_part_number(self.part_number)?;
        if self.body.len() > MAX_PART_SIZE {
            return Err(InvalidInput::Size {
                what: "part",
                size: self.body.len(),
                limit: "a part holds at most 5 GB",
            }
            .into());
        }
        let query = [
            ("partNumber", self.part_number.to_string()),
            ("uploadId", self.upload_id.clone()),
        ];
        let mut req = request(
            config,
            http::Method::PUT,
            &self.key,
            &query,
            self.body.clone(),
        )?;
        let headers = req.headers_mut();
        if let Some(md5) = &self.content_md5 {
            set_header(headers, "content-md5", md5)?;
        }
        if let Some(limit) = self.traffic_limit {
            validate_traffic_limit(limit)?;
            set_header(headers, "x-cos-traffic-limit", &limit.to_string())?;
        }
        for (name, value) in &self.extra_headers {
            set_header(headers, name, value)?;
        }
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        sent: Option<&SentDigest>,
    ) -> Result<UploadPartOutput, Error> {
        super::expect_success(response)?;
        let etag = header(response, "etag").unwrap_or_default();
        if etag.trim_matches('"').is_empty() {
            return Err(unexpected(response, "Upload Part answer without an ETag"));
        }
        let sent = sent.or(self.bytes_digest.as_ref()).copied();
        let crc64 = crc64_header(response);
        let verified = super::verify_upload(
            Some(self.part_number),
            &etag,
            crc64,
            sent.map(|d| d.crc64),
            sent.as_ref(),
            self.accept_unverified,
        )?;
        Ok(UploadPartOutput {
            etag,
            crc64,
            verified,
            request_id: super::request_id(response),
            sent,
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// List Parts

/// List Parts: `GET /<key>?uploadId=<id>`, the parts uploaded so far (1000 per page at most).
///
/// ```
/// let list = cos_core::ops::ListParts::new("big.bin", "upload-id").max_parts(100).part_number_marker(100);
/// ```
#[derive(Clone, Debug)]
pub struct ListParts {
    key: String,
    upload_id: String,
    max_parts: Option<u32>,
    part_number_marker: Option<u32>,
    encoding_type_url: bool,
}

impl ListParts {
    /// Lists the parts of upload `upload_id` of `key`.
    pub fn new(key: impl Into<String>, upload_id: impl Into<String>) -> Self {
        ListParts {
            key: key.into(),
            upload_id: upload_id.into(),
            max_parts: None,
            part_number_marker: None,
            encoding_type_url: false,
        }
    }

    /// `max-parts` (1..=1000; COS's default is 1000).
    pub fn max_parts(mut self, n: u32) -> Self {
        self.max_parts = Some(n);
        self
    }

    /// `part-number-marker`: list parts after this number (a page's `next_part_number_marker`).
    pub fn part_number_marker(mut self, n: u32) -> Self {
        self.part_number_marker = Some(n);
        self
    }

    /// `encoding-type=url`: COS percent-encodes the key; it is decoded in the output.
    pub fn encoding_type_url(mut self) -> Self {
        self.encoding_type_url = true;
        self
    }
}

/// One uploaded part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// `PartNumber`.
    pub part_number: u32,
    /// `LastModified` (ISO 8601).
    pub last_modified: Option<String>,
    /// `ETag`, quoted as COS sends it.
    pub etag: String,
    /// `Size` in bytes.
    pub size: u64,
}

/// What List Parts returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPartsOutput {
    /// `Bucket`.
    pub bucket: String,
    /// `Encoding-type`, when COS echoes it.
    pub encoding_type: Option<String>,
    /// `Key` (url-decoded when `encoding-type=url`).
    pub key: String,
    /// `UploadId`.
    pub upload_id: String,
    /// `StorageClass`.
    pub storage_class: Option<StorageClass>,
    /// `PartNumberMarker` (0 when absent).
    pub part_number_marker: u32,
    /// `NextPartNumberMarker`: pass it as `part_number_marker` for the next page.
    pub next_part_number_marker: Option<u32>,
    /// `MaxParts`.
    pub max_parts: u32,
    /// `IsTruncated`: more pages follow.
    pub is_truncated: bool,
    /// The parts of this page.
    pub parts: Vec<PartInfo>,
    /// `Initiator`.
    pub initiator: Option<Owner>,
    /// `Owner`.
    pub owner: Option<Owner>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListPartsXml {
    #[serde(rename = "Bucket")]
    bucket: String,
    #[serde(
        rename = "Encoding-type",
        alias = "Encoding-Type",
        alias = "EncodingType"
    )]
    encoding_type: Option<String>,
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "UploadId", alias = "UploadID")]
    upload_id: String,
    #[serde(rename = "Initiator")]
    initiator: Option<OwnerXml>,
    #[serde(rename = "Owner")]
    owner: Option<OwnerXml>,
    #[serde(rename = "StorageClass")]
    storage_class: Option<String>,
    #[serde(rename = "PartNumberMarker")]
    part_number_marker: Option<String>,
    #[serde(rename = "NextPartNumberMarker")]
    next_part_number_marker: Option<String>,
    #[serde(rename = "MaxParts")]
    max_parts: Option<String>,
    #[serde(rename = "IsTruncated")]
    is_truncated: Option<String>,
    #[serde(rename = "Part")]
    parts: Vec<PartXml>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PartXml {
    #[serde(rename = "PartNumber")]
    part_number: Option<String>,
    #[serde(rename = "LastModified")]
    last_modified: Option<String>,
    #[serde(rename = "ETag", alias = "Etag")]
    etag: String,
    #[serde(rename = "Size")]
    size: Option<String>,
}

impl Operation for ListParts {
    type Output = ListPartsOutput;
    const NAME: &'static str = "ListParts";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        validate_upload_id(&self.upload_id)?;
        let mut query = Vec::new();
        if self.encoding_type_url {
            query.push(("encoding-type", "url".to_string()));
        }
        if let Some(n) = self.max_parts {
            validate_max("max-parts", n)?;
            query.push(("max-parts", n.to_string()));
        }
        if let Some(n) = self.part_number_marker {
            query.push(("part-number-marker", n.to_string()));
        }
        query.push(("uploadId", self.upload_id.clone()));
        let mut req = request(
            config,
            http::Method::GET,
            &self.key,
            &query,
            RequestBody::Empty,
        )?;
        super::accept_success_body(&mut req, super::MAX_LISTING_BODY);
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ListPartsOutput, Error> {
        let x: ListPartsXml = parse_xml(response, "ListPartsResult")?;
        let encoding_type = non_empty(x.encoding_type);
        let encoded = encoding_type
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("url"))
            || (self.encoding_type_url && encoding_type.is_none());
        let mut parts = Vec::with_capacity(x.parts.len());
        for p in x.parts {
            let part_number = parse_number(response, "PartNumber", p.part_number.as_deref())?
                .ok_or_else(|| unexpected(response, "Part without a PartNumber"))?;
            parts.push(PartInfo {
                part_number,
                last_modified: non_empty(p.last_modified),
                etag: p.etag,
                size: parse_number(response, "Size", p.size.as_deref())?.unwrap_or(0),
            });
        }
        Ok(ListPartsOutput {
            bucket: x.bucket,
            encoding_type,
            key: url_decoded(response, encoded, x.key)?,
            upload_id: x.upload_id,
            storage_class: storage_class(x.storage_class),
            part_number_marker: parse_number(
                response,
                "PartNumberMarker",
                x.part_number_marker.as_deref(),
            )?
            .unwrap_or(0),
            next_part_number_marker: parse_number(
                response,
                "NextPartNumberMarker",
                x.next_part_number_marker.as_deref(),
            )?,
            max_parts: parse_number(response, "MaxParts", x.max_parts.as_deref())?.unwrap_or(1000),
            is_truncated: parse_bool(response, "IsTruncated", x.is_truncated.as_deref())?,
            parts,
            initiator: OwnerXml::into_owner(x.initiator),
            owner: OwnerXml::into_owner(x.owner),
            request_id: super::request_id(response),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Complete

/// A part to assemble: its number and the ETag Upload Part returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    /// Part number.
    pub part_number: u32,
    /// ETag, with or without quotes.
    pub etag: String,
}

/// Complete Multipart Upload: `POST /<key>?uploadId=<id>` with the list of parts.
///
/// A 200 answer is not success until its body is read: COS may send `<Error>` after a 200 status.
///
/// ```
/// use cos_core::ops::{CompleteMultipartUpload, CompletedPart};
/// let done = CompleteMultipartUpload::new("big.bin", "upload-id", vec![
///     CompletedPart { part_number: 1, etag: "\"5d41402abc4b2a76b9719d911017c592\"".into() },
/// ]).forbid_overwrite();
/// ```
#[derive(Clone, Debug)]
pub struct CompleteMultipartUpload {
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    forbid_overwrite: bool,
    expected_crc64: Option<u64>,
    extra_headers: Vec<(String, String)>,
}

impl CompleteMultipartUpload {
    /// Completes `upload_id` of `key` from `parts` (sorted by number here).
    pub fn new(
        key: impl Into<String>,
        upload_id: impl Into<String>,
        parts: Vec<CompletedPart>,
    ) -> Self {
        CompleteMultipartUpload {
            key: key.into(),
            upload_id: upload_id.into(),
            parts,
            forbid_overwrite: false,
            expected_crc64: None,
            extra_headers: Vec::new(),
        }
    }

    /// `x-cos-forbid-overwrite: true`: fail rather than replace an existing object (send it on Initiate too).
    pub fn forbid_overwrite(mut self) -> Self {
        self.forbid_overwrite = true;
        self
    }

    /// The CRC-64 of the whole object, as combined from the parts: checked against `x-cos-hash-crc64ecma`.
    pub fn expected_crc64(mut self, crc64: u64) -> Self {
        self.expected_crc64 = Some(crc64);
        self
    }

    /// Any other header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The upload id.
    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// The parts.
    pub fn parts(&self) -> &[CompletedPart] {
        &self.parts
    }

    /// The XML body: parts ascending, ETags quoted and escaped.
    pub fn body_xml(&self) -> String {
        let mut parts: Vec<&CompletedPart> = self.parts.iter().collect();
        parts.sort_by_key(|p| p.part_number);
        let mut s = String::from("<CompleteMultipartUpload>");
        for p in parts {
            let bare = p.etag.trim().trim_matches('"');
            s.push_str("<Part><PartNumber>");
            s.push_str(&p.part_number.to_string());
            s.push_str("</PartNumber><ETag>");
            s.push_str(&xml_escape(&format!("\"{bare}\"")));
            s.push_str("</ETag></Part>");
        }
        s.push_str("</CompleteMultipartUpload>");
        s
    }
}

/// Escapes text for an XML element (`&`, `<`, `>`, `"`, `'`).
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What Complete Multipart Upload returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteMultipartUploadOutput {
    /// `Location`: the object's URL.
    pub location: String,
    /// `Bucket`.
    pub bucket: String,
    /// `Key`.
    pub key: String,
    /// `ETag`: `"<hex>-<part count>"`.
    pub etag: String,
    /// `x-cos-hash-crc64ecma` of the whole object.
    pub crc64: Option<u64>,
    /// `x-cos-version-id`, when the bucket is versioned.
    pub version_id: Option<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompleteXml {
    #[serde(rename = "Location")]
    location: String,
    #[serde(rename = "Bucket")]
    bucket: String,
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "ETag", alias = "Etag")]
    etag: String,
}

impl Operation for CompleteMultipartUpload {
    type Output = CompleteMultipartUploadOutput;
    const NAME: &'static str = "CompleteMultipartUpload";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        validate_upload_id(&self.upload_id)?;
        if self.parts.is_empty() {
            return Err(InvalidInput::NoParts.into());
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.parts {
            validate_part_number(p.part_number)?;
            if !seen.insert(p.part_number) {
                return Err(InvalidInput::Parameter {
                    name: "parts",
                    reason: format!("part {} is listed twice", p.part_number),
                }
                .into());
            }
            if p.etag.trim().trim_matches('"').is_empty() {
                return Err(InvalidInput::Parameter {
                    name: "parts",
                    reason: format!("part {} has an empty ETag", p.part_number),
                }
                .into());
            }
        }
        let body = RequestBody::Bytes(Bytes::from(self.body_xml()));
        let query = [("uploadId", self.upload_id.clone())];
        let mut req = request(config, http::Method::POST, &self.key, &query, body)?;
        let headers = req.headers_mut();
        set_header(headers, "content-type", "application/xml")?;
        if self.forbid_overwrite {
            set_header(headers, "x-cos-forbid-overwrite", "true")?;
        }
        for (name, value) in &self.extra_headers {
            set_header(headers, name, value)?;
        }
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<CompleteMultipartUploadOutput, Error> {
        const ROOT: &str = "CompleteMultipartUploadResult";
        let x: CompleteXml = parse_xml(response, ROOT)?;
        // A connection cut while COS streams keep-alive whitespace and then the result can leave a body that
        // parses partially; demand the closing tag.
        let text = String::from_utf8_lossy(response.body());
        if !text.trim_end().ends_with(&format!("</{ROOT}>")) {
            return Err(unexpected(
                response,
                "truncated CompleteMultipartUploadResult",
            ));
        }
        if x.etag.trim_matches('"').is_empty() {
            return Err(unexpected(
                response,
                "CompleteMultipartUploadResult without an ETag",
            ));
        }
        let crc64 = crc64_header(response);
        check_crc64(None, crc64, self.expected_crc64)?;
        Ok(CompleteMultipartUploadOutput {
            location: x.location,
            bucket: x.bucket,
            key: x.key,
            etag: x.etag,
            crc64,
            version_id: version_id(response),
            request_id: super::request_id(response),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Abort

/// Abort Multipart Upload: `DELETE /<key>?uploadId=<id>`; the uploaded parts are discarded.
///
/// ```
/// let abort = cos_core::ops::AbortMultipartUpload::new("big.bin", "upload-id");
/// ```
#[derive(Clone, Debug)]
pub struct AbortMultipartUpload {
    key: String,
    upload_id: String,
    missing_ok: bool,
}

impl AbortMultipartUpload {
    /// Aborts upload `upload_id` of `key`.
    pub fn new(key: impl Into<String>, upload_id: impl Into<String>) -> Self {
        AbortMultipartUpload {
            key: key.into(),
            upload_id: upload_id.into(),
            missing_ok: false,
        }
    }

    /// Treats 404 `NoSuchUpload` as success (`already_gone` set): for cleanup, where an upload that no
    /// longer exists is exactly what was wanted.
    pub fn missing_ok(mut self) -> Self {
        self.missing_ok = true;
        self
    }
}

/// What Abort Multipart Upload returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortMultipartUploadOutput {
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
    /// True when the upload no longer existed and [`AbortMultipartUpload::missing_ok`] was set.
    pub already_gone: bool,
}

impl Operation for AbortMultipartUpload {
    type Output = AbortMultipartUploadOutput;
    const NAME: &'static str = "AbortMultipartUpload";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        validate_upload_id(&self.upload_id)?;
        let query = [("uploadId", self.upload_id.clone())];
        request(
            config,
            http::Method::DELETE,
            &self.key,
            &query,
            RequestBody::Empty,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<AbortMultipartUploadOutput, Error> {
        let result = super::expect_success(response).and_then(|()| {
            match super::parse_error_body(response) {
                Some(e) => Err(Error::Service(Box::new(e))),
                None => Ok(()),
            }
        });
        match result {
            Ok(()) => Ok(AbortMultipartUploadOutput {
                request_id: super::request_id(response),
                already_gone: false,
            }),
            Err(e) if self.missing_ok && e.code() == Some("NoSuchUpload") => {
                Ok(AbortMultipartUploadOutput {
                    request_id: super::request_id(response),
                    already_gone: true,
                })
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Crc64;
    use crate::error::IntegrityError;
    use crate::ops::test_util::{config, header as req_header, response, signed, HTML_502};
    use crate::ops::Acl;

    const HOST: &str = "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com";

    // ---- Initiate

    #[test]
    fn initiate_request() {
        let req = InitiateMultipartUpload::new("dir/big file.bin")
            .content_type("application/octet-stream")
            .storage_class(StorageClass::Archive)
            .acl(Acl::Private)
            .metadata("k", "v")
            .forbid_overwrite()
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.uri().to_string(),
            format!("{HOST}/dir/big%20file.bin?uploads")
        );
        assert_eq!(req_header(&req, "content-length"), Some("0"));
        assert_eq!(req_header(&req, "x-cos-forbid-overwrite"), Some("true"));
        assert_eq!(req_header(&req, "x-cos-storage-class"), Some("ARCHIVE"));
        assert_eq!(req_header(&req, "x-cos-acl"), Some("private"));
        assert_eq!(req_header(&req, "x-cos-meta-k"), Some("v"));
        assert_eq!(req.body(), &RequestBody::Empty);
        let auth = signed(req);
        assert_eq!(auth.param_list, vec!["uploads"]);
        assert!(auth
            .header_list
            .contains(&"x-cos-forbid-overwrite".to_string()));
        // Without the option the header is absent.
        let req = InitiateMultipartUpload::new("a")
            .to_request(&config())
            .unwrap();
        assert_eq!(req_header(&req, "x-cos-forbid-overwrite"), None);
    }

    #[test]
    fn initiate_parses_both_spellings() {
        for tag in ["UploadId", "UploadID"] {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult>\
                 <Bucket>examplebucket-1250000000</Bucket><Key>exampleobject</Key>\
                 <{tag}>1585130821cbb7df1d11846c073ad648e8f33b087cec2381df437acdc833cf654b9ecc6361</{tag}>\
                 </InitiateMultipartUploadResult>"
            );
            let out = InitiateMultipartUpload::new("exampleobject")
                .parse_response(&response(200, &[("x-cos-request-id", "r1")], &xml), None)
                .unwrap();
            assert_eq!(out.bucket, "examplebucket-1250000000");
            assert_eq!(out.key, "exampleobject");
            assert!(out.upload_id.starts_with("1585130821cbb7df"));
            assert_eq!(out.request_id.as_deref(), Some("r1"));
        }
    }

    #[test]
    fn initiate_bad_answers() {
        let op = InitiateMultipartUpload::new("a");
        let e = op
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert!(e.is_retryable());
        let e = op
            .parse_response(&response(200, &[], "<InitiateMultipartUploadResult><Bucket>b</Bucket></InitiateMultipartUploadResult>"), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        let e = op
            .parse_response(&response(200, &[], ""), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        let e = op
            .parse_response(
                &response(
                    403,
                    &[],
                    "<Error><Code>AccessDenied</Code><Message>no</Message></Error>",
                ),
                None,
            )
            .unwrap_err();
        assert_eq!(e.code(), Some("AccessDenied"));
    }

    // ---- Upload Part

    #[test]
    fn upload_part_request() {
        let req = UploadPart::new("a/b.bin", "up+id/1", 3)
            .with_source(8 << 20, 4 << 20)
            .content_md5("XUFAKrxLKna5cZ2REBfFkg==")
            .traffic_limit(1_048_576)
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::PUT);
        assert_eq!(
            req.uri().to_string(),
            format!("{HOST}/a/b.bin?partNumber=3&uploadId=up%2Bid%2F1")
        );
        assert_eq!(
            req.body(),
            &RequestBody::Source {
                offset: 8 << 20,
                len: 4 << 20,
                md5: true
            }
        );
        assert_eq!(req_header(&req, "content-length"), Some("4194304"));
        assert_eq!(
            req_header(&req, "content-md5"),
            Some("XUFAKrxLKna5cZ2REBfFkg==")
        );
        assert_eq!(req_header(&req, "x-cos-traffic-limit"), Some("1048576"));
        let auth = signed(req);
        assert_eq!(auth.param_list, vec!["partnumber", "uploadid"]);
        assert!(auth.header_list.contains(&"content-md5".to_string()));
    }

    #[test]
    fn upload_part_send_content_md5() {
        let req = UploadPart::new("a", "u", 1)
            .with_bytes("hello")
            .send_content_md5()
            .to_request(&config())
            .unwrap();
        assert_eq!(
            req_header(&req, "content-md5"),
            Some("XUFAKrxLKna5cZ2REBfFkg==")
        );
    }

    #[test]
    fn upload_part_validation() {
        for n in [0, 10_001, u32::MAX] {
            let e = UploadPart::new("a", "u", n)
                .to_request(&config())
                .unwrap_err();
            assert_eq!(
                e,
                Error::InvalidInput(InvalidInput::PartNumber(u64::from(n)))
            );
        }
        assert!(UploadPart::new("a", "u", 10_000)
            .to_request(&config())
            .is_ok());
        assert!(UploadPart::new("a", "u", 1).to_request(&config()).is_ok());
        let e = UploadPart::new("a", "u", 1)
            .with_source(0, MAX_PART_SIZE + 1)
            .to_request(&config())
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput(InvalidInput::Size { what: "part", .. })
        ));
        let e = UploadPart::new("a", "", 1)
            .to_request(&config())
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput(InvalidInput::Parameter {
                name: "uploadId",
                ..
            })
        ));
        let e = UploadPart::new("a", "u", 1)
            .traffic_limit(838_860_801)
            .to_request(&config())
            .unwrap_err();
        assert_eq!(
            e,
            Error::InvalidInput(InvalidInput::TrafficLimit(838_860_801))
        );
    }

    #[test]
    fn upload_part_verifies_etag_and_crc() {
        let good_crc = Crc64::checksum(b"hello").to_string();
        let etag = "\"5d41402abc4b2a76b9719d911017c592\"";
        let ok = response(
            200,
            &[("etag", etag), ("x-cos-hash-crc64ecma", &good_crc)],
            "",
        );
        let op = UploadPart::new("a", "u", 2)
            .with_bytes("hello")
            .verify_md5(true);
        let out = op.parse_response(&ok, None).unwrap();
        assert_eq!(out.etag, etag);
        assert_eq!(out.crc64, Some(Crc64::checksum(b"hello")));
        assert_eq!(out.sent.map(|s| s.len), Some(5));

        let bad_etag = response(200, &[("etag", "\"00000000000000000000000000000000\"")], "");
        let e = op.parse_response(&bad_etag, None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Integrity(IntegrityError::Etag { part: Some(2), .. })
            ),
            "{e:?}"
        );
        assert!(!e.is_retryable());

        let bad_crc = response(200, &[("etag", etag), ("x-cos-hash-crc64ecma", "1")], "");
        let e = op.parse_response(&bad_crc, None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Integrity(IntegrityError::Crc64 { part: Some(2), .. })
            ),
            "{e:?}"
        );

        // Streamed body: the driver's digest decides.
        let streamed = UploadPart::new("a", "u", 2).with_source(0, 5);
        let digest = BodyDigest::of(b"hello");
        let out = streamed.parse_response(&ok, Some(&digest)).unwrap();
        assert_eq!(out.sent, Some(digest));
        let other = BodyDigest::of(b"HELLO");
        assert!(matches!(
            streamed.parse_response(&ok, Some(&other)),
            Err(Error::Integrity(_))
        ));

        // No ETag at all is not a part upload answer.
        let e = op
            .parse_response(&response(200, &[], ""), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
    }

    #[test]
    fn upload_part_checks_crc64_by_default_and_md5_on_request() {
        let good_crc = Crc64::checksum(b"hello").to_string();
        let wrong_md5 = "\"00000000000000000000000000000000\"";
        // Default: the driver is asked for no MD5, and only the CRC-64 is compared.
        let op = UploadPart::new("a", "u", 4).with_source(0, 5);
        assert_eq!(
            op.body(),
            &RequestBody::Source {
                offset: 0,
                len: 5,
                md5: false
            }
        );
        let crc_only = BodyDigest::of_with_md5(b"hello", false);
        let ok = response(
            200,
            &[("etag", wrong_md5), ("x-cos-hash-crc64ecma", &good_crc)],
            "",
        );
        let out = op.parse_response(&ok, Some(&crc_only)).unwrap();
        assert_eq!(out.verified, super::super::Verified::Crc64);
        let bad_crc = response(
            200,
            &[("etag", wrong_md5), ("x-cos-hash-crc64ecma", "7")],
            "",
        );
        let e = op.parse_response(&bad_crc, Some(&crc_only)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Integrity(IntegrityError::Crc64 {
                    part: Some(4),
                    actual: 7,
                    ..
                })
            ),
            "{e:?}"
        );
        // No CRC-64 in the answer and no MD5 computed: nothing can be verified.
        let no_crc = response(200, &[("etag", "\"5d41402abc4b2a76b9719d911017c592\"")], "");
        let e = op.parse_response(&no_crc, Some(&crc_only)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Integrity(IntegrityError::Unverified { part: Some(4), .. })
            ),
            "{e:?}"
        );
        let accepted = op
            .clone()
            .accept_unverified()
            .parse_response(&no_crc, Some(&crc_only))
            .unwrap();
        assert_eq!(accepted.verified, super::super::Verified::Nothing);

        // verify_md5 (or a Content-MD5 given by the user) asks the driver for MD5; the ETag is then
        // checked, which is the fallback when the CRC-64 is missing.
        for op in [
            UploadPart::new("a", "u", 4)
                .with_source(0, 5)
                .verify_md5(true),
            UploadPart::new("a", "u", 4)
                .content_md5("XUFAKrxLKna5cZ2REBfFkg==")
                .with_source(0, 5),
        ] {
            let RequestBody::Source { md5, .. } = op.body() else {
                panic!("{:?}", op.body())
            };
            assert!(md5);
            let full = BodyDigest::of(b"hello");
            let out = op.parse_response(&no_crc, Some(&full)).unwrap();
            assert_eq!(out.verified, super::super::Verified::Md5);
            let e = op.parse_response(&ok, Some(&full)).unwrap_err();
            assert!(
                matches!(e, Error::Integrity(IntegrityError::Etag { .. })),
                "{e:?}"
            );
        }
    }

    #[test]
    fn upload_part_errors() {
        let xml = "<Error><Code>NoSuchUpload</Code><Message>gone</Message><RequestId>rid</RequestId></Error>";
        let e = UploadPart::new("a", "u", 1)
            .parse_response(&response(404, &[], xml), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchUpload"));
        assert!(!e.is_retryable());
        let e = UploadPart::new("a", "u", 1)
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert!(e.is_retryable());
    }

    // ---- List Parts

    #[test]
    fn list_parts_request() {
        let req = ListParts::new("a b", "uid")
            .max_parts(100)
            .part_number_marker(7)
            .encoding_type_url()
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(
            req.uri().to_string(),
            format!(
                "{HOST}/a%20b?encoding-type=url&max-parts=100&part-number-marker=7&uploadId=uid"
            )
        );
        assert_eq!(req_header(&req, "content-length"), None);
        let auth = signed(req);
        assert_eq!(
            auth.param_list,
            vec![
                "encoding-type",
                "max-parts",
                "part-number-marker",
                "uploadid"
            ]
        );
        let plain = ListParts::new("a", "uid").to_request(&config()).unwrap();
        assert_eq!(plain.uri().query(), Some("uploadId=uid"));
    }

    #[test]
    fn list_parts_limits() {
        for n in [0, 1001] {
            let e = ListParts::new("a", "u")
                .max_parts(n)
                .to_request(&config())
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidInput(InvalidInput::Parameter {
                        name: "max-parts",
                        ..
                    })
                ),
                "{e:?}"
            );
        }
        assert!(ListParts::new("a", "u")
            .max_parts(1000)
            .to_request(&config())
            .is_ok());
        assert!(ListParts::new("a", "u")
            .max_parts(1)
            .to_request(&config())
            .is_ok());
    }

    const LIST_PARTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult>
    <Bucket>examplebucket-1250000000</Bucket>
    <Encoding-type>url</Encoding-type>
    <Key>dir%2Fa%20b%2B%E4%B8%AD.bin</Key>
    <UploadID>1585130821cbb7df1d</UploadID>
    <Initiator>
        <ID>qcs::cam::uin/100000000001:uin/100000000011</ID>
        <DisplayName>100000000011</DisplayName>
    </Initiator>
    <Owner>
        <ID>qcs::cam::uin/100000000001:uin/100000000001</ID>
        <DisplayName>100000000001</DisplayName>
    </Owner>
    <StorageClass>STANDARD</StorageClass>
    <PartNumberMarker>0</PartNumberMarker>
    <NextPartNumberMarker>2</NextPartNumberMarker>
    <MaxParts>2</MaxParts>
    <IsTruncated>true</IsTruncated>
    <Part>
        <PartNumber>1</PartNumber>
        <LastModified>2020-03-25T10:07:03.000Z</LastModified>
        <ETag>&quot;e10adc3949ba59abbe56e057f20f883e&quot;</ETag>
        <Size>1048576</Size>
    </Part>
    <Part>
        <PartNumber>2</PartNumber>
        <LastModified>2020-03-25T10:07:04.000Z</LastModified>
        <ETag>"fcea920f7412b5da7be0cf42b8c93759"</ETag>
        <Size>5</Size>
    </Part>
</ListPartsResult>"#;

    #[test]
    fn list_parts_parses() {
        let out = ListParts::new("dir/a b+中.bin", "1585130821cbb7df1d")
            .encoding_type_url()
            .parse_response(
                &response(200, &[("x-cos-request-id", "rid")], LIST_PARTS),
                None,
            )
            .unwrap();
        assert_eq!(out.bucket, "examplebucket-1250000000");
        assert_eq!(out.key, "dir/a b+中.bin");
        assert_eq!(out.upload_id, "1585130821cbb7df1d");
        assert_eq!(out.encoding_type.as_deref(), Some("url"));
        assert_eq!(out.storage_class, Some(StorageClass::Standard));
        assert_eq!(out.part_number_marker, 0);
        assert_eq!(out.next_part_number_marker, Some(2));
        assert_eq!(out.max_parts, 2);
        assert!(out.is_truncated);
        assert_eq!(
            out.parts,
            vec![
                PartInfo {
                    part_number: 1,
                    last_modified: Some("2020-03-25T10:07:03.000Z".into()),
                    etag: "\"e10adc3949ba59abbe56e057f20f883e\"".into(),
                    size: 1_048_576,
                },
                PartInfo {
                    part_number: 2,
                    last_modified: Some("2020-03-25T10:07:04.000Z".into()),
                    etag: "\"fcea920f7412b5da7be0cf42b8c93759\"".into(),
                    size: 5,
                },
            ]
        );
        assert_eq!(
            out.initiator,
            Some(Owner {
                id: "qcs::cam::uin/100000000001:uin/100000000011".into(),
                display_name: Some("100000000011".into())
            })
        );
        assert_eq!(
            out.owner.unwrap().display_name.as_deref(),
            Some("100000000001")
        );
        assert_eq!(out.request_id.as_deref(), Some("rid"));
    }

    #[test]
    fn list_parts_empty_and_plain() {
        let xml = "<ListPartsResult><Bucket>b-1</Bucket><Key>a%20b</Key><UploadId>u</UploadId>\
                   <NextPartNumberMarker/><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated></ListPartsResult>";
        let out = ListParts::new("a", "u")
            .parse_response(&response(200, &[], xml), None)
            .unwrap();
        assert!(out.parts.is_empty());
        assert_eq!(
            out.key, "a%20b",
            "no encoding-type: the key is taken as it is"
        );
        assert_eq!(out.next_part_number_marker, None);
        assert!(!out.is_truncated);
        assert_eq!(out.initiator, None);
    }

    #[test]
    fn list_parts_malformed() {
        let xml = "<ListPartsResult><Part><PartNumber>one</PartNumber></Part></ListPartsResult>";
        let e = ListParts::new("a", "u")
            .parse_response(&response(200, &[], xml), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        let e = ListParts::new("a", "u")
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
    }

    // ---- Complete

    fn parts() -> Vec<CompletedPart> {
        vec![
            CompletedPart {
                part_number: 2,
                etag: "fcea920f7412b5da7be0cf42b8c93759".into(),
            },
            CompletedPart {
                part_number: 1,
                etag: "\"e10adc3949ba59abbe56e057f20f883e\"".into(),
            },
        ]
    }

    #[test]
    fn complete_request() {
        let req = CompleteMultipartUpload::new("a.bin", "uid", parts())
            .forbid_overwrite()
            .header("x-cos-meta-x", "1")
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().to_string(), format!("{HOST}/a.bin?uploadId=uid"));
        let expected = "<CompleteMultipartUpload>\
            <Part><PartNumber>1</PartNumber><ETag>&quot;e10adc3949ba59abbe56e057f20f883e&quot;</ETag></Part>\
            <Part><PartNumber>2</PartNumber><ETag>&quot;fcea920f7412b5da7be0cf42b8c93759&quot;</ETag></Part>\
            </CompleteMultipartUpload>";
        assert_eq!(req.body(), &RequestBody::Bytes(Bytes::from(expected)));
        assert_eq!(
            req_header(&req, "content-length"),
            Some(expected.len().to_string().as_str())
        );
        assert_eq!(req_header(&req, "content-type"), Some("application/xml"));
        assert_eq!(req_header(&req, "x-cos-forbid-overwrite"), Some("true"));
        assert_eq!(req_header(&req, "x-cos-meta-x"), Some("1"));
        let auth = signed(req);
        assert_eq!(auth.param_list, vec!["uploadid"]);
        for h in [
            "content-length",
            "content-type",
            "x-cos-forbid-overwrite",
            "host",
        ] {
            assert!(auth.header_list.contains(&h.to_string()), "{h} signed");
        }
        let req = CompleteMultipartUpload::new("a.bin", "uid", parts())
            .to_request(&config())
            .unwrap();
        assert_eq!(req_header(&req, "x-cos-forbid-overwrite"), None);
    }

    #[test]
    fn complete_escapes_odd_etags() {
        let op = CompleteMultipartUpload::new(
            "a",
            "u",
            vec![CompletedPart {
                part_number: 1,
                etag: "a<b&c".into(),
            }],
        );
        assert_eq!(
            op.body_xml(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&lt;b&amp;c&quot;</ETag></Part></CompleteMultipartUpload>"
        );
    }

    #[test]
    fn complete_validation() {
        let e = CompleteMultipartUpload::new("a", "u", vec![])
            .to_request(&config())
            .unwrap_err();
        assert_eq!(e, Error::InvalidInput(InvalidInput::NoParts));
        for n in [0, 10_001] {
            let e = CompleteMultipartUpload::new(
                "a",
                "u",
                vec![CompletedPart {
                    part_number: n,
                    etag: "e".into(),
                }],
            )
            .to_request(&config())
            .unwrap_err();
            assert_eq!(
                e,
                Error::InvalidInput(InvalidInput::PartNumber(u64::from(n)))
            );
        }
        let dup = vec![
            CompletedPart {
                part_number: 1,
                etag: "e".into(),
            },
            CompletedPart {
                part_number: 1,
                etag: "f".into(),
            },
        ];
        let e = CompleteMultipartUpload::new("a", "u", dup)
            .to_request(&config())
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput(InvalidInput::Parameter { name: "parts", .. })
        ));
        let e = CompleteMultipartUpload::new(
            "a",
            "u",
            vec![CompletedPart {
                part_number: 1,
                etag: "\"\"".into(),
            }],
        )
        .to_request(&config())
        .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput(InvalidInput::Parameter { name: "parts", .. })
        ));
    }

    const COMPLETE_OK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult>
    <Location>examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/a.bin</Location>
    <Bucket>examplebucket-1250000000</Bucket>
    <Key>a.bin</Key>
    <ETag>&quot;aa259a62513358f69e98e72e59856d88-2&quot;</ETag>
</CompleteMultipartUploadResult>"#;

    #[test]
    fn complete_parses() {
        let r = response(
            200,
            &[
                ("x-cos-hash-crc64ecma", "123"),
                ("x-cos-request-id", "rid"),
                ("x-cos-version-id", "v9"),
            ],
            COMPLETE_OK,
        );
        let out = CompleteMultipartUpload::new("a.bin", "uid", parts())
            .parse_response(&r, None)
            .unwrap();
        assert_eq!(
            out,
            CompleteMultipartUploadOutput {
                location: "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/a.bin".into(),
                bucket: "examplebucket-1250000000".into(),
                key: "a.bin".into(),
                etag: "\"aa259a62513358f69e98e72e59856d88-2\"".into(),
                crc64: Some(123),
                version_id: Some("v9".into()),
                request_id: Some("rid".into()),
            }
        );
        // Keep-alive whitespace before the document is fine.
        let padded = format!("   \n  \n{COMPLETE_OK}");
        assert!(CompleteMultipartUpload::new("a.bin", "uid", parts())
            .parse_response(&response(200, &[], &padded), None)
            .is_ok());
    }

    #[test]
    fn complete_checks_whole_object_crc() {
        let r = response(200, &[("x-cos-hash-crc64ecma", "123")], COMPLETE_OK);
        let op = CompleteMultipartUpload::new("a.bin", "uid", parts());
        assert!(op
            .clone()
            .expected_crc64(123)
            .parse_response(&r, None)
            .is_ok());
        let e = op.expected_crc64(124).parse_response(&r, None).unwrap_err();
        assert_eq!(
            e,
            Error::Integrity(IntegrityError::Crc64 {
                part: None,
                expected: 124,
                actual: 123
            })
        );
    }

    #[test]
    fn complete_200_with_error_body() {
        let body = "\n\n   \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>\
                    <Message>We encountered an internal error. Please try again.</Message>\
                    <Resource>/a.bin</Resource><RequestId>NjA5</RequestId><TraceId>tr</TraceId></Error>";
        let e = CompleteMultipartUpload::new("a.bin", "uid", parts())
            .parse_response(&response(200, &[], body), None)
            .unwrap_err();
        let Error::Service(s) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(s.status, 200);
        assert_eq!(s.code, "InternalError");
        assert_eq!(s.request_id.as_deref(), Some("NjA5"));
        assert_eq!(s.trace_id.as_deref(), Some("tr"));
        assert!(e.is_retryable());

        let body = "  <Error><Code>InvalidPart</Code><Message>bad part</Message></Error>";
        let e = CompleteMultipartUpload::new("a.bin", "uid", parts())
            .parse_response(&response(200, &[], body), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidPart"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn complete_empty_or_truncated_is_unexpected_and_retryable() {
        let op = CompleteMultipartUpload::new("a.bin", "uid", parts());
        let cut = &COMPLETE_OK[..COMPLETE_OK.len() - 20];
        for body in [
            "",
            "   \n ",
            cut,
            "<CompleteMultipartUploadResult><Location>x</Location>",
        ] {
            let e = op
                .parse_response(&response(200, &[], body), None)
                .unwrap_err();
            assert!(matches!(e, Error::UnexpectedResponse(_)), "{body:?}: {e:?}");
            assert!(e.is_retryable(), "{body:?}");
        }
        let e = op
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert_eq!(e.status(), Some(502));
        assert!(e.is_retryable());
        let xml = "<Error><Code>NoSuchUpload</Code><Message>x</Message></Error>";
        let e = op
            .parse_response(&response(404, &[], xml), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchUpload"));
    }

    // ---- Abort

    #[test]
    fn abort_request_and_response() {
        let req = AbortMultipartUpload::new("a.bin", "uid")
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::DELETE);
        assert_eq!(req.uri().to_string(), format!("{HOST}/a.bin?uploadId=uid"));
        assert_eq!(req_header(&req, "content-length"), None);
        assert_eq!(signed(req).param_list, vec!["uploadid"]);
        let out = AbortMultipartUpload::new("a.bin", "uid")
            .parse_response(&response(204, &[("x-cos-request-id", "rid")], ""), None)
            .unwrap();
        assert_eq!(out.request_id.as_deref(), Some("rid"));
        let xml = "<Error><Code>NoSuchUpload</Code><Message>x</Message></Error>";
        let e = AbortMultipartUpload::new("a.bin", "uid")
            .parse_response(&response(404, &[], xml), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchUpload"));
        let e = AbortMultipartUpload::new("a.bin", "")
            .to_request(&config())
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput(InvalidInput::Parameter {
                name: "uploadId",
                ..
            })
        ));
    }
}
