//! DELETE Object (`DELETE /<key>`) and Delete Multiple Objects (`POST /?delete`).

use bytes::Bytes;
use serde::Deserialize;

use super::tagging::xml_escape;
use super::{non_empty, parse_xml, request, Operation};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::{validate_key, Config};
use crate::error::{Error, InvalidInput};

/// Most keys one Delete Multiple Objects request may name.
pub const MAX_DELETE_KEYS: usize = 1000;

/// DELETE Object. Deleting a key that does not exist succeeds (COS answers 204 either way).
///
/// ```
/// let del = cos_core::ops::DeleteObject::new("docs/a.txt");
/// ```
#[derive(Clone, Debug)]
pub struct DeleteObject {
    key: String,
    version_id: Option<String>,
}

impl DeleteObject {
    /// Deletes `key`.
    pub fn new(key: impl Into<String>) -> Self {
        DeleteObject {
            key: key.into(),
            version_id: None,
        }
    }

    /// `?versionId=`: deletes this version.
    pub fn version_id(mut self, v: impl Into<String>) -> Self {
        self.version_id = Some(v.into());
        self
    }
}

/// What DELETE Object returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteObjectOutput {
    /// `x-cos-version-id` (versioned buckets).
    pub version_id: Option<String>,
    /// `x-cos-delete-marker: true`: a delete marker was created.
    pub delete_marker: bool,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl Operation for DeleteObject {
    type Output = DeleteObjectOutput;
    const NAME: &'static str = "DeleteObject";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let mut query = Vec::new();
        if let Some(v) = self.version_id.as_ref().filter(|v| !v.is_empty()) {
            query.push(("versionId", v.clone()));
        }
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
    ) -> Result<DeleteObjectOutput, Error> {
        super::expect_success(response)?;
        Ok(DeleteObjectOutput {
            version_id: super::version_id(response),
            delete_marker: super::header(response, "x-cos-delete-marker")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            request_id: super::request_id(response),
        })
    }
}

/// Delete Multiple Objects: up to 1000 keys in one request, each reported as deleted or failed.
///
/// ```
/// let del = cos_core::ops::DeleteObjects::new(["a.txt", "b.txt"]).quiet();
/// ```
#[derive(Clone, Debug)]
pub struct DeleteObjects {
    keys: Vec<(String, Option<String>)>,
    quiet: bool,
}

impl DeleteObjects {
    /// Deletes these keys.
    pub fn new<K: Into<String>>(keys: impl IntoIterator<Item = K>) -> Self {
        DeleteObjects {
            keys: keys.into_iter().map(|k| (k.into(), None)).collect(),
            quiet: false,
        }
    }

    /// Adds one version of a key.
    pub fn version(mut self, key: impl Into<String>, version_id: impl Into<String>) -> Self {
        self.keys.push((key.into(), Some(version_id.into())));
        self
    }

    /// `<Quiet>true</Quiet>`: COS reports only the keys it failed to delete.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    fn to_xml(&self) -> String {
        let mut x = String::from("<Delete>");
        x += if self.quiet {
            "<Quiet>true</Quiet>"
        } else {
            "<Quiet>false</Quiet>"
        };
        for (k, v) in &self.keys {
            x += "<Object><Key>";
            x += &xml_escape(k);
            x += "</Key>";
            if let Some(v) = v {
                x += &format!("<VersionId>{}</VersionId>", xml_escape(v));
            }
            x += "</Object>";
        }
        x += "</Delete>";
        x
    }
}

/// A key COS deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedObject {
    /// `Key`.
    pub key: String,
    /// `VersionId`.
    pub version_id: Option<String>,
    /// `DeleteMarker`.
    pub delete_marker: bool,
}

/// A key COS failed to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteError {
    /// `Key`.
    pub key: String,
    /// `Code`, e.g. `AccessDenied`.
    pub code: String,
    /// `Message`.
    pub message: String,
    /// `VersionId`.
    pub version_id: Option<String>,
}

/// What Delete Multiple Objects returns: per-key results (in quiet mode only the errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteObjectsOutput {
    /// The keys deleted (empty in quiet mode).
    pub deleted: Vec<DeletedObject>,
    /// The keys not deleted.
    pub errors: Vec<DeleteError>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteResultXml {
    #[serde(rename = "Deleted")]
    deleted: Vec<DeletedXml>,
    #[serde(rename = "Error")]
    errors: Vec<DeleteErrorXml>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeletedXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId")]
    version_id: Option<String>,
    #[serde(rename = "DeleteMarker")]
    delete_marker: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteErrorXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "VersionId")]
    version_id: Option<String>,
}

impl Operation for DeleteObjects {
    type Output = DeleteObjectsOutput;
    const NAME: &'static str = "DeleteMultipleObjects";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        if self.keys.is_empty() || self.keys.len() > MAX_DELETE_KEYS {
            return Err(InvalidInput::Parameter {
                name: "keys",
                reason: format!(
                    "{} keys; one request deletes 1 to {MAX_DELETE_KEYS}",
                    self.keys.len()
                ),
            }
            .into());
        }
        for (k, _) in &self.keys {
            validate_key(k)?;
        }
        let xml = self.to_xml();
        super::xml_request(
            config,
            http::Method::POST,
            "",
            &[("delete", String::new())],
            xml,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<DeleteObjectsOutput, Error> {
        // A DeleteResult holds per-key <Error> elements, so the whole-body <Error> check must not see them:
        // only a document whose root is <Error> is a failure.
        super::expect_success(response)?;
        let text = std::str::from_utf8(response.body())
            .map_err(|_| super::unexpected(response, "body is not UTF-8"))?;
        let x: DeleteResultXml = if text.contains("<DeleteResult") {
            quick_xml::de::from_str(text.trim()).map_err(|e| {
                super::unexpected(response, &format!("malformed <DeleteResult>: {e}"))
            })?
        } else {
            // Not a DeleteResult: an <Error> document (sent with 200) or something else.
            parse_xml::<DeleteResultXml>(response, "DeleteResult")?
        };
        Ok(DeleteObjectsOutput {
            deleted: x
                .deleted
                .into_iter()
                .map(|d| DeletedObject {
                    key: d.key,
                    version_id: non_empty(d.version_id),
                    delete_marker: d
                        .delete_marker
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                })
                .collect(),
            errors: x
                .errors
                .into_iter()
                .map(|e| DeleteError {
                    key: e.key,
                    code: e.code,
                    message: e.message,
                    version_id: non_empty(e.version_id),
                })
                .collect(),
            request_id: super::request_id(response),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header, response};

    #[test]
    fn delete_object_request() {
        let req = DeleteObject::new("a b.txt").to_request(&config()).unwrap();
        assert_eq!(req.method(), http::Method::DELETE);
        assert_eq!(req.uri().path(), "/a%20b.txt");
        let e = DeleteObject::new("").to_request(&config()).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(InvalidInput::Key { .. })));
        let out = DeleteObject::new("a")
            .parse_response(&response(204, &[("x-cos-request-id", "r")], ""), None)
            .unwrap();
        assert_eq!(out.request_id.as_deref(), Some("r"));
        assert!(!out.delete_marker);
    }

    #[test]
    fn delete_objects_request() {
        let req = DeleteObjects::new(["a&b", "c"])
            .quiet()
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/");
        assert_eq!(req.uri().query(), Some("delete"));
        let RequestBody::Bytes(b) = req.body() else {
            panic!("bytes body")
        };
        assert_eq!(
            &b[..],
            b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>"
        );
        assert!(header(&req, "content-md5").is_some());
        let none: [&str; 0] = [];
        assert!(matches!(
            DeleteObjects::new(none).to_request(&config()),
            Err(Error::InvalidInput(InvalidInput::Parameter {
                name: "keys",
                ..
            }))
        ));
        let many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
        assert!(DeleteObjects::new(many).to_request(&config()).is_err());
        assert!(DeleteObjects::new(["ok", "/bad"])
            .to_request(&config())
            .is_err());
    }

    #[test]
    fn delete_objects_results() {
        let xml = "<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code>\
                   <Message>no</Message></Error></DeleteResult>";
        let out = DeleteObjects::new(["a", "b"])
            .parse_response(&response(200, &[], xml), None)
            .unwrap();
        assert_eq!(out.deleted.len(), 1);
        assert_eq!(out.deleted[0].key, "a");
        assert_eq!(out.errors[0].code, "AccessDenied");
        let err = "<Error><Code>MalformedXML</Code><Message>bad</Message></Error>";
        let e = DeleteObjects::new(["a"])
            .parse_response(&response(200, &[], err), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("MalformedXML"));
        let e = DeleteObjects::new(["a"])
            .parse_response(&response(200, &[], "<html/>"), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
    }
}
