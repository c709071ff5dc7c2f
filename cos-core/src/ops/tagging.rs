//! Object tags: the [`Tags`] type (`x-cos-tagging` on PUT / Initiate), and PUT / GET / DELETE Object
//! Tagging (`?tagging`).

use bytes::Bytes;
use serde::Deserialize;

use super::{request, Operation};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::{validate_key, Config};
use crate::error::{Error, InvalidInput};

/// Most tags on one object.
pub const MAX_TAGS: usize = 10;

/// An object's tag set: at most 10 tags, keys of 1 to 128 characters, values of at most 256, keys unique.
///
/// ```
/// use cos_core::ops::Tags;
/// let tags = Tags::new().tag("project", "alpha").tag("owner", "jane doe");
/// assert_eq!(tags.to_header().unwrap(), "project=alpha&owner=jane%20doe");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    /// No tags.
    pub fn new() -> Tags {
        Tags(Vec::new())
    }

    /// Adds a tag (checked when the request is built).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Tags {
        self.0.push((key.into(), value.into()));
        self
    }

    /// The tags as `(key, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of tag `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the limits COS enforces.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| -> Error {
            InvalidInput::Parameter {
                name: "tagging",
                reason,
            }
            .into()
        };
        if self.0.len() > MAX_TAGS {
            return Err(bad(format!(
                "{} tags; an object has at most {MAX_TAGS}",
                self.0.len()
            )));
        }
        for (i, (k, v)) in self.0.iter().enumerate() {
            if k.is_empty() || k.chars().count() > 128 {
                return Err(bad("a tag key has 1 to 128 characters".into()));
            }
            if v.chars().count() > 256 {
                return Err(bad(format!(
                    "the value of tag {k:?} is over 256 characters"
                )));
            }
            if self.0[..i].iter().any(|(o, _)| o == k) {
                return Err(bad(format!("tag key {k:?} appears twice")));
            }
        }
        Ok(())
    }

    /// The `x-cos-tagging` value: URL-encoded `key=value` pairs joined by `&`.
    pub fn to_header(&self) -> Result<String, Error> {
        self.validate()?;
        Ok(self
            .iter()
            .map(|(k, v)| format!("{}={}", crate::auth::encode(k), crate::auth::encode(v)))
            .collect::<Vec<_>>()
            .join("&"))
    }

    fn to_xml(&self) -> Result<String, Error> {
        self.validate()?;
        let mut x = String::from("<Tagging><TagSet>");
        for (k, v) in self.iter() {
            x += &format!(
                "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
                xml_escape(k),
                xml_escape(v)
            );
        }
        x += "</TagSet></Tagging>";
        Ok(x)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Tags {
        Tags(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// PUT Object Tagging: replaces the object's tags.
#[derive(Clone, Debug)]
pub struct PutObjectTagging {
    key: String,
    tags: Tags,
}

impl PutObjectTagging {
    /// Sets the tags of `key` to `tags`.
    pub fn new(key: impl Into<String>, tags: Tags) -> Self {
        PutObjectTagging {
            key: key.into(),
            tags,
        }
    }
}

/// What PUT and DELETE Object Tagging return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectTaggingOutput {
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl Operation for PutObjectTagging {
    type Output = ObjectTaggingOutput;
    const NAME: &'static str = "PutObjectTagging";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let xml = self.tags.to_xml()?;
        super::xml_request(
            config,
            http::Method::PUT,
            &self.key,
            &[("tagging", String::new())],
            xml,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ObjectTaggingOutput, Error> {
        super::expect_success(response)?;
        Ok(ObjectTaggingOutput {
            request_id: super::request_id(response),
        })
    }
}

/// GET Object Tagging.
#[derive(Clone, Debug)]
pub struct GetObjectTagging {
    key: String,
}

impl GetObjectTagging {
    /// Reads the tags of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        GetObjectTagging { key: key.into() }
    }
}

/// What GET Object Tagging returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetObjectTaggingOutput {
    /// The tags, in the order COS lists them.
    pub tags: Tags,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TaggingXml {
    #[serde(rename = "TagSet")]
    tag_set: TagSetXml,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TagSetXml {
    #[serde(rename = "Tag")]
    tags: Vec<TagXml>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TagXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

impl Operation for GetObjectTagging {
    type Output = GetObjectTaggingOutput;
    const NAME: &'static str = "GetObjectTagging";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        request(
            config,
            http::Method::GET,
            &self.key,
            &[("tagging", String::new())],
            RequestBody::Empty,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<GetObjectTaggingOutput, Error> {
        let x: TaggingXml = super::parse_xml(response, "Tagging")?;
        Ok(GetObjectTaggingOutput {
            tags: x
                .tag_set
                .tags
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
            request_id: super::request_id(response),
        })
    }
}

/// DELETE Object Tagging: removes all tags of an object.
#[derive(Clone, Debug)]
pub struct DeleteObjectTagging {
    key: String,
}

impl DeleteObjectTagging {
    /// Removes the tags of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        DeleteObjectTagging { key: key.into() }
    }
}

impl Operation for DeleteObjectTagging {
    type Output = ObjectTaggingOutput;
    const NAME: &'static str = "DeleteObjectTagging";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        request(
            config,
            http::Method::DELETE,
            &self.key,
            &[("tagging", String::new())],
            RequestBody::Empty,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ObjectTaggingOutput, Error> {
        super::expect_success(response)?;
        Ok(ObjectTaggingOutput {
            request_id: super::request_id(response),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header, response};

    #[test]
    fn tags_validate_and_encode() {
        let t = Tags::new().tag("a b", "x&y").tag("k", "");
        assert_eq!(t.to_header().unwrap(), "a%20b=x%26y&k=");
        assert!(Tags::new().tag("", "v").validate().is_err());
        assert!(Tags::new().tag("k", "1").tag("k", "2").validate().is_err());
        let many: Tags = (0..11).map(|i| (format!("k{i}"), "v")).collect();
        assert!(many.validate().is_err());
        assert!(Tags::new().tag("k", "v".repeat(257)).validate().is_err());
    }

    #[test]
    fn tags_hold_10_keys_of_128_and_values_of_256_characters() {
        let ten: Tags = (0..10).map(|i| (format!("k{i}"), "v")).collect();
        assert!(ten.validate().is_ok());
        assert_eq!((ten.len(), ten.is_empty()), (10, false));
        assert!(Tags::new().is_empty());
        assert_eq!(ten.get("k3"), Some("v"));
        assert_eq!(ten.get("k10"), None);
        let t = Tags::new().tag("a", "1").tag("b", "2");
        assert_eq!((t.get("a"), t.get("b")), (Some("1"), Some("2")));
        assert!(Tags::new()
            .tag("é".repeat(128), "é".repeat(256))
            .validate()
            .is_ok());
        assert!(Tags::new().tag("k".repeat(129), "v").validate().is_err());
    }

    #[test]
    fn put_request_and_get_parse() {
        let put = PutObjectTagging::new("a.txt", Tags::new().tag("k", "<v>"));
        let req = put.to_request(&config()).unwrap();
        assert_eq!(req.method(), http::Method::PUT);
        assert_eq!(req.uri().query(), Some("tagging"));
        assert!(header(&req, "content-md5").is_some());
        match req.body() {
            RequestBody::Bytes(b) => assert_eq!(
                &b[..],
                b"<Tagging><TagSet><Tag><Key>k</Key><Value>&lt;v&gt;</Value></Tag></TagSet></Tagging>"
            ),
            other => panic!("{other:?}"),
        }
        let bad = PutObjectTagging::new("a", Tags::new().tag("", "v"));
        assert!(matches!(
            bad.to_request(&config()),
            Err(Error::InvalidInput(_))
        ));

        let get = GetObjectTagging::new("a.txt");
        let r = response(
            200,
            &[],
            "<?xml version='1.0'?><Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>",
        );
        let out = get.parse_response(&r, None).unwrap();
        assert_eq!(out.tags, Tags::new().tag("a", "1").tag("b", ""));
        let empty = response(200, &[], "<Tagging><TagSet/></Tagging>");
        assert!(get.parse_response(&empty, None).unwrap().tags.is_empty());
        let err = response(
            404,
            &[],
            "<Error><Code>NoSuchKey</Code><Message>m</Message></Error>",
        );
        assert_eq!(
            get.parse_response(&err, None).unwrap_err().code(),
            Some("NoSuchKey")
        );
    }

    #[test]
    fn typed_tagging_option_on_put_and_initiate() {
        use crate::ops::{InitiateMultipartUpload, PutObject};
        let tags = Tags::new().tag("a", "1").tag("b", "x y");
        let req = PutObject::new("k")
            .tagging(tags.clone())
            .to_request(&config())
            .unwrap();
        assert_eq!(header(&req, "x-cos-tagging"), Some("a=1&b=x%20y"));
        let req = InitiateMultipartUpload::new("k")
            .tagging(tags)
            .to_request(&config())
            .unwrap();
        assert_eq!(header(&req, "x-cos-tagging"), Some("a=1&b=x%20y"));
        let bad = PutObject::new("k").tagging(Tags::new().tag("", "v"));
        assert!(matches!(
            bad.to_request(&config()),
            Err(Error::InvalidInput(_))
        ));
    }
}
