//! PUT Object: `PUT /<key>` with the whole body (up to 5 GB).

use bytes::Bytes;

use super::{crc64_header, header, object_options, request, version_id, ObjectOptions, Operation};
use crate::body::RequestBody;
use crate::checksum::{BodyDigest, SentDigest};
use crate::config::{validate_key, Config};
use crate::error::{Error, InvalidInput};

/// Largest single PUT (5 GB).
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// PUT Object.
///
/// ```
/// let put = cos_core::ops::PutObject::new("docs/a.txt").with_bytes("hello").content_type("text/plain");
/// ```
#[derive(Clone, Debug)]
pub struct PutObject {
    key: String,
    body: RequestBody,
    bytes_digest: Option<SentDigest>,
    options: ObjectOptions,
    add_meta_md5: bool,
    accept_unverified: bool,
    verify_md5: bool,
}

object_options!(PutObject);

impl PutObject {
    /// Accepts an answer that lets nothing be verified (neither an MD5 ETag nor a CRC-64 to compare with
    /// the bytes sent) as a success with [`super::Verified::Nothing`]; by default it is an
    /// [`crate::error::IntegrityError::Unverified`] error.
    pub fn accept_unverified(mut self) -> Self {
        self.accept_unverified = true;
        self
    }

    /// A PUT of `key` with an empty body.
    pub fn new(key: impl Into<String>) -> Self {
        PutObject {
            key: key.into(),
            body: RequestBody::Empty,
            bytes_digest: None,
            accept_unverified: false,
            options: ObjectOptions::default(),
            add_meta_md5: false,
            verify_md5: false,
        }
    }

    /// The body: these bytes (their CRC-64, and MD5 with [`PutObject::verify_md5`], are checked against the
    /// response).
    pub fn with_bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        self.body = RequestBody::Bytes(bytes.into());
        self.refresh_digest();
        self
    }

    /// The body: `len` bytes the driver streams from its source (a file, a reader).
    pub fn with_source(mut self, len: u64) -> Self {
        self.body = RequestBody::Source {
            offset: 0,
            len,
            md5: false,
        };
        self.refresh_digest();
        self
    }

    /// Also computes the body's MD5 and checks the ETag against it (on top of the CRC-64 check, which is
    /// always made). Off by default: MD5 costs about 1.3 s of CPU per GiB here, CRC-64 about 0.08 s. A
    /// `Content-MD5` header set on the request turns it on.
    pub fn verify_md5(mut self, on: bool) -> Self {
        self.verify_md5 = on;
        self.refresh_digest();
        self
    }

    /// Sends the body's MD5 as `Content-MD5` so that COS verifies it (bytes bodies only; for a streamed body
    /// give it with [`PutObject::content_md5`]); turns [`PutObject::verify_md5`] on.
    pub fn send_content_md5(mut self) -> Self {
        self.verify_md5 = true;
        self.refresh_digest();
        if let Some(md5) = self.bytes_digest.and_then(|d| d.md5_base64()) {
            self.options.content_md5 = Some(md5);
        }
        self
    }

    fn wants_md5(&self) -> bool {
        self.verify_md5 || self.add_meta_md5 || self.options.content_md5.is_some()
    }

    /// Recomputes what the body's digest includes after a change of body or of the MD5 choice.
    fn refresh_digest(&mut self) {
        let md5 = self.wants_md5();
        match &mut self.body {
            RequestBody::Bytes(b) => self.bytes_digest = Some(BodyDigest::of_with_md5(b, md5)),
            RequestBody::Source { md5: m, .. } => {
                *m = md5;
                self.bytes_digest = None;
            }
            RequestBody::Empty => self.bytes_digest = None,
        }
    }

    /// UploadAddMetaMd5: stores the body's hex MD5 as `x-cos-meta-md5` (bytes bodies; for streamed bodies
    /// add the metadata yourself).
    pub fn add_meta_md5(mut self) -> Self {
        self.add_meta_md5 = true;
        self.refresh_digest();
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The body.
    pub fn body(&self) -> &RequestBody {
        &self.body
    }
}

/// What PUT Object returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectOutput {
    /// `ETag`, quoted as COS sends it.
    pub etag: String,
    /// `x-cos-hash-crc64ecma`.
    pub crc64: Option<u64>,
    /// `x-cos-version-id`, when the bucket is versioned.
    pub version_id: Option<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
    /// What the answer let the core check against the bytes sent.
    pub verified: super::Verified,
}

impl Operation for PutObject {
    type Output = PutObjectOutput;
    const NAME: &'static str = "PutObject";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        if self.body.len() > MAX_PUT_SIZE {
            return Err(InvalidInput::Size {
                what: "PUT Object body",
                size: self.body.len(),
                limit: "a single PUT takes at most 5 GB; use a multipart upload",
            }
            .into());
        }
        let mut body = self.body.clone();
        if let RequestBody::Source { md5, .. } = &mut body {
            // A Content-MD5 given by the user makes the ETag check part of the request.
            *md5 |= self.wants_md5();
        }
        let mut req = request(config, http::Method::PUT, &self.key, &[], body)?;
        self.options.apply(req.headers_mut())?;
        if self.add_meta_md5 {
            if let Some(md5) = self.bytes_digest.and_then(|d| d.md5_hex()) {
                req.headers_mut().insert(
                    "x-cos-meta-md5",
                    super::header_value("x-cos-meta-md5", &md5)?,
                );
            }
        }
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        sent: Option<&SentDigest>,
    ) -> Result<PutObjectOutput, Error> {
        super::expect_success(response)?;
        let etag = header(response, "etag").unwrap_or_default();
        let late;
        let sent = match (sent.or(self.bytes_digest.as_ref()), &self.body) {
            // Content-MD5 set through the options after the body: the bytes' MD5 is computed now.
            (Some(d), RequestBody::Bytes(b)) if d.md5.is_none() && self.wants_md5() => {
                late = BodyDigest::of(b);
                Some(&late)
            }
            (d, _) => d,
        };
        let crc64 = crc64_header(response);
        let verified = super::verify_upload(
            None,
            &etag,
            crc64,
            sent.map(|d| d.crc64),
            sent,
            self.accept_unverified,
        )?;
        Ok(PutObjectOutput {
            etag,
            crc64,
            verified,
            version_id: version_id(response),
            request_id: super::request_id(response),
        })
    }
}
