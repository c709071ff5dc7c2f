//! List Objects (GET Bucket): `GET /`, one page of the bucket's keys, and [`ListObjectsPages`], the
//! pagination decisions shared by both clients' iterators.

use bytes::Bytes;
use serde::Deserialize;

use super::list_uploads::PrefixXml;
use super::multipart::{storage_class, OwnerXml};
use super::{
    non_empty, parse_bool, parse_number, parse_xml, request, url_decoded, validate_max, Operation,
    Owner, StorageClass,
};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::Config;
use crate::error::{Error, UnexpectedResponse};

/// Most pages [`ListObjectsPages`] fetches before it gives up (a server that never ends its listing).
pub const MAX_LIST_PAGES: u32 = 100_000;

/// List Objects (GET Bucket): one page of at most `max-keys` (1000) keys in UTF-8 binary order.
///
/// ```
/// let list = cos_core::ops::ListObjects::new().prefix("photos/").delimiter("/").max_keys(100);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ListObjects {
    prefix: Option<String>,
    delimiter: Option<String>,
    marker: Option<String>,
    max_keys: Option<u32>,
    encoding_type_url: bool,
}

impl ListObjects {
    /// Lists every key of the bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// `prefix`: only keys starting with it.
    pub fn prefix(mut self, v: impl Into<String>) -> Self {
        self.prefix = Some(v.into());
        self
    }

    /// `delimiter`: keys sharing a prefix up to it are grouped into `common_prefixes`.
    pub fn delimiter(mut self, v: impl Into<String>) -> Self {
        self.delimiter = Some(v.into());
        self
    }

    /// `marker`: start after this key (a page's `next_marker`).
    pub fn marker(mut self, v: impl Into<String>) -> Self {
        self.marker = Some(v.into());
        self
    }

    /// `max-keys` (1..=1000; COS's default is 1000).
    pub fn max_keys(mut self, n: u32) -> Self {
        self.max_keys = Some(n);
        self
    }

    /// `encoding-type=url`: COS percent-encodes keys, prefixes and markers (so keys with control
    /// characters survive XML); they are decoded in the output.
    pub fn encoding_type_url(mut self) -> Self {
        self.encoding_type_url = true;
        self
    }

    /// The `marker` set, if any.
    pub fn marker_value(&self) -> Option<&str> {
        self.marker.as_deref()
    }
}

/// One key in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    /// `Key`.
    pub key: String,
    /// `LastModified` (ISO 8601).
    pub last_modified: Option<String>,
    /// `ETag`, quoted as COS sends it.
    pub etag: String,
    /// `Size` in bytes.
    pub size: u64,
    /// `Owner`.
    pub owner: Option<Owner>,
    /// `StorageClass`.
    pub storage_class: Option<StorageClass>,
}

/// What List Objects returns: one page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListObjectsOutput {
    /// `Name`: the bucket.
    pub name: String,
    /// `Encoding-Type`, when COS echoes it.
    pub encoding_type: Option<String>,
    /// `Prefix`.
    pub prefix: Option<String>,
    /// `Delimiter`.
    pub delimiter: Option<String>,
    /// `Marker`.
    pub marker: Option<String>,
    /// `NextMarker`: pass it as `marker` for the next page (COS sends it when the page is truncated).
    pub next_marker: Option<String>,
    /// `MaxKeys`.
    pub max_keys: u32,
    /// `IsTruncated`: more pages follow.
    pub is_truncated: bool,
    /// `Contents`: the keys of this page.
    pub contents: Vec<ObjectSummary>,
    /// `CommonPrefixes/Prefix` (with a delimiter).
    pub common_prefixes: Vec<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl ListObjectsOutput {
    /// The marker for the page after this one: `NextMarker`, or (when COS omits it) the last key or
    /// common prefix of the page, whichever sorts last. `None` when the listing is complete.
    pub fn continuation(&self) -> Option<String> {
        if !self.is_truncated {
            return None;
        }
        if let Some(m) = self.next_marker.as_ref().filter(|m| !m.is_empty()) {
            return Some(m.clone());
        }
        let last_key = self.contents.last().map(|c| c.key.as_str());
        let last_prefix = self.common_prefixes.iter().map(String::as_str).max();
        last_key.max(last_prefix).map(str::to_string)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListBucketXml {
    #[serde(rename = "Name")]
    name: String,
    #[serde(
        rename = "EncodingType",
        alias = "Encoding-Type",
        alias = "Encoding-type"
    )]
    encoding_type: Option<String>,
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Delimiter")]
    delimiter: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "NextMarker")]
    next_marker: Option<String>,
    #[serde(rename = "MaxKeys")]
    max_keys: Option<String>,
    #[serde(rename = "IsTruncated")]
    is_truncated: Option<String>,
    #[serde(rename = "Contents")]
    contents: Vec<ContentsXml>,
    #[serde(rename = "CommonPrefixes")]
    common_prefixes: Vec<PrefixXml>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContentsXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "LastModified")]
    last_modified: Option<String>,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(rename = "Size")]
    size: Option<String>,
    #[serde(rename = "Owner")]
    owner: Option<OwnerXml>,
    #[serde(rename = "StorageClass")]
    storage_class: Option<String>,
}

impl Operation for ListObjects {
    type Output = ListObjectsOutput;
    const NAME: &'static str = "GetBucket";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        let mut query = Vec::new();
        let optional = [
            ("delimiter", &self.delimiter),
            ("marker", &self.marker),
            ("prefix", &self.prefix),
        ];
        for (name, value) in optional {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                query.push((name, v.clone()));
            }
        }
        if self.encoding_type_url {
            query.push(("encoding-type", "url".to_string()));
        }
        if let Some(n) = self.max_keys {
            validate_max("max-keys", n)?;
            query.push(("max-keys", n.to_string()));
        }
        query.sort();
        request(config, http::Method::GET, "", &query, RequestBody::Empty)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ListObjectsOutput, Error> {
        let x: ListBucketXml = parse_xml(response, "ListBucketResult")?;
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
        let mut contents = Vec::with_capacity(x.contents.len());
        for c in x.contents {
            contents.push(ObjectSummary {
                key: url_decoded(response, encoded, c.key)?,
                last_modified: non_empty(c.last_modified),
                etag: c.etag,
                size: parse_number(response, "Size", c.size.as_deref())?.unwrap_or(0),
                owner: OwnerXml::into_owner(c.owner),
                storage_class: storage_class(c.storage_class),
            });
        }
        let common_prefixes = x
            .common_prefixes
            .into_iter()
            .filter(|p| !p.prefix.is_empty())
            .map(|p| url_decoded(response, encoded, p.prefix))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListObjectsOutput {
            name: x.name,
            encoding_type,
            prefix: decode(x.prefix)?,
            delimiter: decode(x.delimiter)?,
            marker: decode(x.marker)?,
            next_marker: decode(x.next_marker)?,
            max_keys: parse_number(response, "MaxKeys", x.max_keys.as_deref())?.unwrap_or(1000),
            is_truncated: parse_bool(response, "IsTruncated", x.is_truncated.as_deref())?,
            contents,
            common_prefixes,
            request_id: super::request_id(response),
        })
    }
}

/// Pagination over List Objects, decided once for both clients: which request comes next, and when a
/// server that does not advance (a repeated or earlier marker) or never ends is an error.
///
/// ```
/// use cos_core::ops::{ListObjects, ListObjectsPages};
/// let mut pages = ListObjectsPages::new(ListObjects::new().prefix("logs/"));
/// let first = pages.next_request().expect("a first page");
/// ```
#[derive(Clone, Debug)]
pub struct ListObjectsPages {
    template: ListObjects,
    next_marker: Option<String>,
    pages: u32,
    max_pages: u32,
    done: bool,
}

impl ListObjectsPages {
    /// Pages of `first`, starting at its marker.
    pub fn new(first: ListObjects) -> Self {
        ListObjectsPages {
            next_marker: first.marker.clone(),
            template: first,
            pages: 0,
            max_pages: MAX_LIST_PAGES,
            done: false,
        }
    }

    /// Stops with an error after this many pages (default [`MAX_LIST_PAGES`]).
    pub fn max_pages(mut self, n: u32) -> Self {
        self.max_pages = n.max(1);
        self
    }

    /// The request for the next page, or `None` when the listing is complete (or has failed).
    pub fn next_request(&self) -> Option<ListObjects> {
        if self.done {
            return None;
        }
        let mut op = self.template.clone();
        op.marker = self.next_marker.clone();
        Some(op)
    }

    /// Takes a page's answer (or error). An error, a page past the cap or a truncated page whose marker does
    /// not advance ends the listing with an error.
    pub fn handle(
        &mut self,
        page: Result<ListObjectsOutput, Error>,
    ) -> Result<ListObjectsOutput, Error> {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        self.pages += 1;
        match page.continuation() {
            None if !page.is_truncated => self.done = true,
            next => {
                let next = next.unwrap_or_default();
                let stuck = next.is_empty()
                    || self
                        .next_marker
                        .as_deref()
                        .is_some_and(|prev| next.as_str() <= prev);
                if stuck || self.pages >= self.max_pages {
                    self.done = true;
                    let reason = if stuck {
                        format!(
                            "List Objects is truncated but its next marker {next:?} does not advance past {:?}",
                            self.next_marker.as_deref().unwrap_or("")
                        )
                    } else {
                        format!("List Objects still truncated after {} pages", self.pages)
                    };
                    return Err(Error::UnexpectedResponse(Box::new(UnexpectedResponse {
                        status: 200,
                        reason,
                        excerpt: String::new(),
                        request_id: page.request_id.clone(),
                        context: None,
                    })));
                }
                self.next_marker = Some(next);
            }
        }
        Ok(page)
    }

    /// Pages answered so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, response};

    #[test]
    fn request() {
        let req = ListObjects::new()
            .prefix("a/")
            .delimiter("/")
            .marker("a/b")
            .max_keys(2)
            .encoding_type_url()
            .to_request(&config())
            .unwrap();
        assert_eq!(req.uri().path(), "/");
        assert_eq!(
            req.uri().query(),
            Some("delimiter=%2F&encoding-type=url&marker=a%2Fb&max-keys=2&prefix=a%2F")
        );
        assert!(ListObjects::new()
            .max_keys(0)
            .to_request(&config())
            .is_err());
        assert!(ListObjects::new()
            .max_keys(1001)
            .to_request(&config())
            .is_err());
    }

    const PAGE: &str = "<ListBucketResult><Name>b-1</Name><EncodingType>url</EncodingType><Prefix>a%2F</Prefix>\
        <Marker></Marker><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><NextMarker>a%2Fc%0A</NextMarker>\
        <Contents><Key>a%2Fb%20c</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag>\
        <Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>\
        <CommonPrefixes><Prefix>a%2Fc%0A</Prefix></CommonPrefixes></ListBucketResult>";

    #[test]
    fn parse_url_encoded_page() {
        let out = ListObjects::new()
            .parse_response(&response(200, &[], PAGE), None)
            .unwrap();
        assert_eq!(out.contents[0].key, "a/b c");
        assert_eq!(out.contents[0].size, 5);
        assert_eq!(out.common_prefixes, vec!["a/c\n".to_string()]);
        assert_eq!(out.next_marker.as_deref(), Some("a/c\n"));
        assert_eq!(out.prefix.as_deref(), Some("a/"));
        assert!(out.is_truncated);
        let bad = PAGE.replace("<Size>5</Size>", "<Size>x</Size>");
        assert!(matches!(
            ListObjects::new().parse_response(&response(200, &[], &bad), None),
            Err(Error::UnexpectedResponse(_))
        ));
        let err = "<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>";
        let e = ListObjects::new()
            .parse_response(&response(200, &[], err), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchBucket"));
    }

    fn page(truncated: bool, next: Option<&str>, keys: &[&str]) -> ListObjectsOutput {
        ListObjectsOutput {
            name: "b".into(),
            encoding_type: None,
            prefix: None,
            delimiter: None,
            marker: None,
            next_marker: next.map(str::to_string),
            max_keys: 2,
            is_truncated: truncated,
            contents: keys
                .iter()
                .map(|k| ObjectSummary {
                    key: k.to_string(),
                    last_modified: None,
                    etag: String::new(),
                    size: 0,
                    owner: None,
                    storage_class: None,
                })
                .collect(),
            common_prefixes: Vec::new(),
            request_id: None,
        }
    }

    #[test]
    fn pagination() {
        let mut p = ListObjectsPages::new(ListObjects::new());
        assert_eq!(p.next_request().unwrap().marker, None);
        p.handle(Ok(page(true, None, &["a", "b"]))).unwrap();
        assert_eq!(p.next_request().unwrap().marker.as_deref(), Some("b"));
        p.handle(Ok(page(true, Some("d"), &["c", "d"]))).unwrap();
        assert_eq!(p.next_request().unwrap().marker.as_deref(), Some("d"));
        p.handle(Ok(page(false, None, &["e"]))).unwrap();
        assert!(p.next_request().is_none());
        assert_eq!(p.pages(), 3);
    }

    #[test]
    fn the_next_marker_wins_unless_empty_and_keys_are_decoded_only_when_url_encoded() {
        assert_eq!(
            page(true, Some("z"), &["c", "d"]).continuation().as_deref(),
            Some("z")
        );
        assert_eq!(
            page(true, Some(""), &["c", "d"]).continuation().as_deref(),
            Some("d")
        );
        assert_eq!(page(false, Some("z"), &["c"]).continuation(), None);
        assert_eq!(ListObjects::new().marker("m").marker_value(), Some("m"));
        assert_eq!(ListObjects::new().marker_value(), None);
        let plain = "<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>\
                     <Contents><Key>a%41</Key><Size>1</Size></Contents></ListBucketResult>";
        let out = ListObjects::new()
            .parse_response(&response(200, &[], plain), None)
            .unwrap();
        assert_eq!(out.contents[0].key, "a%41");
        let out = ListObjects::new()
            .encoding_type_url()
            .parse_response(&response(200, &[], plain), None)
            .unwrap();
        assert_eq!(out.contents[0].key, "aA");
    }

    #[test]
    fn non_advancing_marker_is_an_error() {
        let mut p = ListObjectsPages::new(ListObjects::new());
        p.handle(Ok(page(true, Some("b"), &["a", "b"]))).unwrap();
        let e = p.handle(Ok(page(true, Some("b"), &[]))).unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
        assert!(p.next_request().is_none());
        // Truncated with nothing to continue from.
        let mut p = ListObjectsPages::new(ListObjects::new().marker("m"));
        assert!(p.handle(Ok(page(true, None, &[]))).is_err());
        assert!(p.next_request().is_none());
        // A marker before the previous one.
        let mut p = ListObjectsPages::new(ListObjects::new().marker("m"));
        assert!(p.handle(Ok(page(true, Some("c"), &["c"]))).is_err());
        // The page cap.
        let mut p = ListObjectsPages::new(ListObjects::new()).max_pages(2);
        p.handle(Ok(page(true, Some("a"), &["a"]))).unwrap();
        assert!(p.handle(Ok(page(true, Some("b"), &["b"]))).is_err());
    }
}
