//! Bucket CORS configuration: `PUT` / `GET` / `DELETE /?cors`, the rules COS answers browsers by.
//!
//! A browser page on another origin may only call the bucket when one of its rules matches the page's
//! origin, the method and the headers the request carries. [`CorsConfiguration::to_xml`] and
//! [`CorsConfiguration::from_xml`] are the one implementation of COS's `<CORSConfiguration>` document; the
//! local server in `cos-testkit` reads and writes it with them.

use bytes::Bytes;
use serde::Deserialize;

use super::{expect_success, parse_xml, request, unexpected, Operation};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::Config;
use crate::error::{Error, InvalidInput};

/// Most rules a configuration may hold.
pub const MAX_CORS_RULES: usize = 100;
/// Largest `<CORSConfiguration>` document COS accepts, in bytes.
pub const MAX_CORS_XML_BYTES: usize = 64 * 1024;
/// The methods a rule may allow.
pub const CORS_METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];

/// One `<CORSRule>`.
///
/// ```
/// use cos_core::ops::CorsRule;
/// let rule = CorsRule::new()
///     .id("uploads")
///     .allowed_origin("https://*.example.com")
///     .allowed_methods(["PUT", "POST"])
///     .allowed_header("*")
///     .expose_header("ETag")
///     .max_age_seconds(600);
/// assert_eq!(rule.allowed_methods, ["PUT", "POST"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorsRule {
    /// `ID`: a name for the rule.
    pub id: Option<String>,
    /// `AllowedOrigin`: `https://www.example.com`, with at most one `*` matching any characters.
    pub allowed_origins: Vec<String>,
    /// `AllowedMethod`: `GET`, `PUT`, `POST`, `DELETE`, `HEAD`.
    pub allowed_methods: Vec<String>,
    /// `AllowedHeader`: request headers a preflight may ask for (`*` allows any), case-insensitive.
    pub allowed_headers: Vec<String>,
    /// `ExposeHeader`: response headers the page may read (`ETag`, `x-cos-request-id`…).
    pub expose_headers: Vec<String>,
    /// `MaxAgeSeconds`: how long a browser may cache the preflight answer.
    pub max_age_seconds: Option<u64>,
}

impl CorsRule {
    /// An empty rule (it needs at least one origin and one method).
    pub fn new() -> Self {
        Self::default()
    }

    /// `ID`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds an `AllowedOrigin`.
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Adds an `AllowedMethod`.
    pub fn allowed_method(mut self, method: impl Into<String>) -> Self {
        self.allowed_methods.push(method.into());
        self
    }

    /// Adds several `AllowedMethod`s.
    pub fn allowed_methods<S: Into<String>>(
        mut self,
        methods: impl IntoIterator<Item = S>,
    ) -> Self {
        self.allowed_methods
            .extend(methods.into_iter().map(Into::into));
        self
    }

    /// Adds an `AllowedHeader` (`*` for any).
    pub fn allowed_header(mut self, header: impl Into<String>) -> Self {
        self.allowed_headers.push(header.into());
        self
    }

    /// Adds an `ExposeHeader`.
    pub fn expose_header(mut self, header: impl Into<String>) -> Self {
        self.expose_headers.push(header.into());
        self
    }

    /// `MaxAgeSeconds`.
    pub fn max_age_seconds(mut self, seconds: u64) -> Self {
        self.max_age_seconds = Some(seconds);
        self
    }

    fn validate(&self, index: usize) -> Result<(), String> {
        let which = match &self.id {
            Some(id) => format!("rule {id:?}"),
            None => format!("rule {}", index + 1),
        };
        if self.allowed_origins.is_empty() {
            return Err(format!("{which} has no AllowedOrigin"));
        }
        if self.allowed_methods.is_empty() {
            return Err(format!("{which} has no AllowedMethod"));
        }
        for o in &self.allowed_origins {
            if o.trim().is_empty() {
                return Err(format!("{which} has an empty AllowedOrigin"));
            }
            if o.matches('*').count() > 1 {
                return Err(format!(
                    "{which}: AllowedOrigin {o:?} has more than one '*'"
                ));
            }
        }
        for m in &self.allowed_methods {
            if !CORS_METHODS.contains(&m.as_str()) {
                return Err(format!(
                    "{which}: AllowedMethod {m:?} is not one of GET, PUT, POST, DELETE, HEAD"
                ));
            }
        }
        for h in self.allowed_headers.iter().chain(&self.expose_headers) {
            if h.trim().is_empty() || h.chars().any(|c| c.is_control()) {
                return Err(format!("{which}: header name {h:?} is not usable"));
            }
        }
        Ok(())
    }
}

/// A bucket's CORS configuration: its rules, first match wins.
///
/// ```
/// use cos_core::ops::{CorsConfiguration, CorsRule};
/// let config = CorsConfiguration::new(vec![CorsRule::new().allowed_origin("*").allowed_method("PUT")]);
/// let xml = config.to_xml();
/// assert_eq!(CorsConfiguration::from_xml(&xml)?, config);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorsConfiguration {
    /// The rules, in order.
    pub rules: Vec<CorsRule>,
    /// `ResponseVary`: whether COS adds `Vary: Origin` to CORS answers (absent: COS's default).
    pub response_vary: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigXml {
    #[serde(rename = "CORSRule")]
    rules: Vec<RuleXml>,
    #[serde(rename = "ResponseVary")]
    response_vary: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin")]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod")]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader")]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader")]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age_seconds: Option<String>,
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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

impl CorsConfiguration {
    /// A configuration of these rules.
    pub fn new(rules: Vec<CorsRule>) -> Self {
        CorsConfiguration {
            rules,
            response_vary: None,
        }
    }

    /// Sets `ResponseVary`.
    pub fn response_vary(mut self, on: bool) -> Self {
        self.response_vary = Some(on);
        self
    }

    /// Checks what COS checks: 1 to 100 rules, each with an origin (at most one `*`) and a method among
    /// GET, PUT, POST, DELETE, HEAD, and a document of at most 64 KB. The message names the rule.
    pub fn validate(&self) -> Result<(), String> {
        if self.rules.is_empty() {
            return Err("a CORS configuration needs at least one rule".into());
        }
        if self.rules.len() > MAX_CORS_RULES {
            return Err(format!(
                "{} rules: COS accepts at most {MAX_CORS_RULES}",
                self.rules.len()
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            r.validate(i)?;
        }
        let len = self.to_xml().len();
        if len > MAX_CORS_XML_BYTES {
            return Err(format!(
                "the configuration is {len} bytes of XML: COS accepts at most {MAX_CORS_XML_BYTES}"
            ));
        }
        Ok(())
    }

    /// The `<CORSConfiguration>` document.
    pub fn to_xml(&self) -> String {
        let mut x = String::from("<CORSConfiguration>");
        let el = |x: &mut String, name: &str, v: &str| {
            x.push_str(&format!("<{name}>{}</{name}>", xml_escape(v)));
        };
        for r in &self.rules {
            x.push_str("<CORSRule>");
            if let Some(id) = &r.id {
                el(&mut x, "ID", id);
            }
            for (name, values) in [
                ("AllowedOrigin", &r.allowed_origins),
                ("AllowedMethod", &r.allowed_methods),
                ("AllowedHeader", &r.allowed_headers),
                ("ExposeHeader", &r.expose_headers),
            ] {
                for v in values {
                    el(&mut x, name, v);
                }
            }
            if let Some(age) = r.max_age_seconds {
                el(&mut x, "MaxAgeSeconds", &age.to_string());
            }
            x.push_str("</CORSRule>");
        }
        if let Some(v) = self.response_vary {
            el(&mut x, "ResponseVary", if v { "true" } else { "false" });
        }
        x.push_str("</CORSConfiguration>");
        x
    }

    /// Parses a `<CORSConfiguration>` document (values trimmed, methods upper-cased); it is not validated.
    pub fn from_xml(text: &str) -> Result<CorsConfiguration, String> {
        let text = text.trim();
        if !text.contains("<CORSConfiguration") {
            return Err("expected an XML <CORSConfiguration> document".into());
        }
        let x: ConfigXml = quick_xml::de::from_str(text)
            .map_err(|e| format!("malformed <CORSConfiguration>: {e}"))?;
        Self::from_parsed(x)
    }

    fn from_parsed(x: ConfigXml) -> Result<CorsConfiguration, String> {
        let trim = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let mut rules = Vec::with_capacity(x.rules.len());
        for r in x.rules {
            let max_age_seconds = match r.max_age_seconds.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("MaxAgeSeconds {v:?} is not a number"))?,
                ),
            };
            rules.push(CorsRule {
                id: r.id.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
                allowed_origins: trim(r.allowed_origins),
                allowed_methods: trim(r.allowed_methods)
                    .into_iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
                allowed_headers: trim(r.allowed_headers),
                expose_headers: trim(r.expose_headers),
                max_age_seconds,
            });
        }
        let response_vary = match x.response_vary.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            Some(v) => return Err(format!("ResponseVary {v:?} is not true or false")),
        };
        Ok(CorsConfiguration {
            rules,
            response_vary,
        })
    }
}

/// PUT Bucket cors: replaces the bucket's CORS rules (sent with `Content-MD5`, as COS requires).
///
/// ```
/// use cos_core::ops::{CorsRule, PutBucketCors};
/// let put = PutBucketCors::new(vec![CorsRule::new()
///     .allowed_origin("http://localhost:*")
///     .allowed_methods(["GET", "PUT", "POST", "HEAD", "DELETE"])
///     .allowed_header("*")
///     .expose_header("ETag")]);
/// ```
#[derive(Clone, Debug)]
pub struct PutBucketCors {
    config: CorsConfiguration,
}

impl PutBucketCors {
    /// Sets these rules.
    pub fn new(rules: Vec<CorsRule>) -> Self {
        PutBucketCors {
            config: CorsConfiguration::new(rules),
        }
    }

    /// Sets a whole configuration (rules and `ResponseVary`).
    pub fn configuration(config: CorsConfiguration) -> Self {
        PutBucketCors { config }
    }
}

/// What PUT Bucket cors and DELETE Bucket cors return.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketCorsOutput {
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl Operation for PutBucketCors {
    type Output = BucketCorsOutput;
    const NAME: &'static str = "PutBucketCors";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        self.config
            .validate()
            .map_err(|reason| InvalidInput::Parameter {
                name: "cors",
                reason,
            })?;
        let xml = self.config.to_xml();
        super::xml_request(
            config,
            http::Method::PUT,
            "",
            &[("cors", String::new())],
            xml,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<BucketCorsOutput, Error> {
        no_error_body(response)
    }
}

fn no_error_body(response: &http::Response<Bytes>) -> Result<BucketCorsOutput, Error> {
    expect_success(response)?;
    if let Some(e) = super::parse_error_body(response) {
        return Err(Error::Service(Box::new(e)));
    }
    Ok(BucketCorsOutput {
        request_id: super::request_id(response),
    })
}

/// GET Bucket cors: the bucket's CORS rules. A bucket without any answers 404
/// `NoSuchCORSConfiguration` (an [`Error::Service`]).
#[derive(Clone, Debug, Default)]
pub struct GetBucketCors;

impl GetBucketCors {
    /// Reads the bucket's rules.
    pub fn new() -> Self {
        GetBucketCors
    }
}

/// What GET Bucket cors returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetBucketCorsOutput {
    /// The configuration.
    pub configuration: CorsConfiguration,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl Operation for GetBucketCors {
    type Output = GetBucketCorsOutput;
    const NAME: &'static str = "GetBucketCors";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        request(
            config,
            http::Method::GET,
            "",
            &[("cors", String::new())],
            RequestBody::Empty,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<GetBucketCorsOutput, Error> {
        // parse_xml checks the status, an <Error> body and the root element.
        let x: ConfigXml = parse_xml(response, "CORSConfiguration")?;
        let configuration =
            CorsConfiguration::from_parsed(x).map_err(|e| unexpected(response, &e))?;
        Ok(GetBucketCorsOutput {
            configuration,
            request_id: super::request_id(response),
        })
    }
}

/// DELETE Bucket cors: removes every CORS rule (browsers on other origins are then refused).
#[derive(Clone, Debug, Default)]
pub struct DeleteBucketCors;

impl DeleteBucketCors {
    /// Removes the bucket's rules.
    pub fn new() -> Self {
        DeleteBucketCors
    }
}

impl Operation for DeleteBucketCors {
    type Output = BucketCorsOutput;
    const NAME: &'static str = "DeleteBucketCors";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        request(
            config,
            http::Method::DELETE,
            "",
            &[("cors", String::new())],
            RequestBody::Empty,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<BucketCorsOutput, Error> {
        no_error_body(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header as req_header, response, signed, HTML_502};

    fn dev_rule() -> CorsRule {
        CorsRule::new()
            .id("dev")
            .allowed_origin("*")
            .allowed_methods(["GET", "PUT", "POST", "DELETE", "HEAD"])
            .allowed_header("*")
            .expose_header("ETag")
            .expose_header("x-cos-request-id")
            .max_age_seconds(600)
    }

    #[test]
    fn put_request_shape() {
        let req = PutBucketCors::new(vec![dev_rule()])
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::PUT);
        assert_eq!(
            req.uri().to_string(),
            "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/?cors"
        );
        let RequestBody::Bytes(body) = req.body().clone() else {
            panic!("bytes body")
        };
        let xml = std::str::from_utf8(&body).unwrap().to_string();
        assert_eq!(
            xml,
            "<CORSConfiguration><CORSRule><ID>dev</ID><AllowedOrigin>*</AllowedOrigin>\
             <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
             <AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod>\
             <AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader>\
             <ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-cos-request-id</ExposeHeader>\
             <MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>"
        );
        assert_eq!(
            req_header(&req, "content-md5"),
            Some(crate::checksum::content_md5(xml.as_bytes()).as_str())
        );
        assert_eq!(req_header(&req, "content-type"), Some("application/xml"));
        assert_eq!(
            req_header(&req, "content-length"),
            Some(xml.len().to_string().as_str())
        );
        let auth = signed(req);
        assert_eq!(auth.param_list, vec!["cors"]);
        assert!(auth.header_list.contains(&"content-md5".to_string()));
    }

    #[test]
    fn bad_rules_rejected_before_sending() {
        let cases = [
            (vec![], "at least one rule"),
            (
                vec![CorsRule::new().allowed_method("GET")],
                "no AllowedOrigin",
            ),
            (
                vec![CorsRule::new().allowed_origin("*")],
                "no AllowedMethod",
            ),
            (
                vec![CorsRule::new().allowed_origin("*").allowed_method("PATCH")],
                "\"PATCH\" is not one of",
            ),
            (
                vec![CorsRule::new()
                    .id("x")
                    .allowed_origin("http://*.a.*")
                    .allowed_method("GET")],
                "rule \"x\": AllowedOrigin \"http://*.a.*\" has more than one '*'",
            ),
            (
                vec![CorsRule::new().allowed_origin("*").allowed_method("GET"); 101],
                "at most 100",
            ),
            (
                vec![CorsRule::new()
                    .allowed_origin("*")
                    .allowed_method("GET")
                    .allowed_header(" ")],
                "header name \" \" is not usable",
            ),
            (
                vec![CorsRule::new()
                    .allowed_origin("*")
                    .allowed_method("GET")
                    .expose_header("x-cos-a\n")],
                "header name \"x-cos-a\\n\" is not usable",
            ),
        ];
        for (rules, want) in cases {
            let e = PutBucketCors::new(rules).to_request(&config()).unwrap_err();
            match &e {
                Error::InvalidInput(InvalidInput::Parameter {
                    name: "cors",
                    reason,
                }) => {
                    assert!(reason.contains(want), "{reason} lacks {want}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn xml_round_trip_with_escaping() {
        let c = CorsConfiguration::new(vec![
            dev_rule(),
            CorsRule::new()
                .allowed_origin("https://a.example.com?x=<&>")
                .allowed_method("GET"),
        ])
        .response_vary(true);
        assert!(c.to_xml().contains("x=&lt;&amp;&gt;"));
        assert_eq!(CorsConfiguration::from_xml(&c.to_xml()).unwrap(), c);
    }

    const COS_GET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CORSConfiguration>
    <CORSRule>
        <ID>1234</ID>
        <AllowedOrigin>http://www.qq.com</AllowedOrigin>
        <AllowedOrigin>http://*.example.com</AllowedOrigin>
        <AllowedMethod>PUT</AllowedMethod>
        <AllowedMethod>get</AllowedMethod>
        <AllowedHeader>x-cos-meta-test</AllowedHeader>
        <ExposeHeader>x-cos-meta-test1</ExposeHeader>
        <MaxAgeSeconds>500</MaxAgeSeconds>
    </CORSRule>
    <CORSRule>
        <AllowedOrigin>*</AllowedOrigin>
        <AllowedMethod>HEAD</AllowedMethod>
    </CORSRule>
    <ResponseVary>false</ResponseVary>
</CORSConfiguration>"#;

    #[test]
    fn parses_get_answer() {
        let out = GetBucketCors::new()
            .parse_response(&response(200, &[("x-cos-request-id", "r1")], COS_GET), None)
            .unwrap();
        let c = out.configuration;
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].id.as_deref(), Some("1234"));
        assert_eq!(
            c.rules[0].allowed_origins,
            ["http://www.qq.com", "http://*.example.com"]
        );
        assert_eq!(c.rules[0].allowed_methods, ["PUT", "GET"]);
        assert_eq!(c.rules[0].allowed_headers, ["x-cos-meta-test"]);
        assert_eq!(c.rules[0].expose_headers, ["x-cos-meta-test1"]);
        assert_eq!(c.rules[0].max_age_seconds, Some(500));
        assert_eq!(c.rules[1].id, None);
        assert_eq!(c.rules[1].max_age_seconds, None);
        assert_eq!(c.response_vary, Some(false));
        assert_eq!(out.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn get_errors() {
        let missing =
            "<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>NoSuchCORSConfiguration</Code>\
                       <Message>The CORS configuration does not exist</Message></Error>";
        let e = GetBucketCors::new()
            .parse_response(&response(404, &[], missing), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchCORSConfiguration"));
        let e = GetBucketCors::new()
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
        let bad_age = COS_GET.replace("<MaxAgeSeconds>500", "<MaxAgeSeconds>soon");
        let e = GetBucketCors::new()
            .parse_response(&response(200, &[], &bad_age), None)
            .unwrap_err();
        assert!(e.to_string().contains("MaxAgeSeconds"), "{e}");
    }

    #[test]
    fn delete_request_and_answer() {
        let req = DeleteBucketCors::new().to_request(&config()).unwrap();
        assert_eq!(req.method(), http::Method::DELETE);
        assert_eq!(req.uri().path(), "/");
        assert_eq!(req.uri().query(), Some("cors"));
        let out = DeleteBucketCors::new()
            .parse_response(&response(204, &[("x-cos-request-id", "d")], ""), None)
            .unwrap();
        assert_eq!(out.request_id.as_deref(), Some("d"));
        let req = GetBucketCors::new().to_request(&config()).unwrap();
        assert_eq!(req.uri().query(), Some("cors"));
        assert_eq!(signed(req).param_list, vec!["cors"]);
    }
}
