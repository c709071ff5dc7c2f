//! Object ACL: PUT Object ACL (canned `x-cos-acl` and `x-cos-grant-*` headers) and GET Object ACL.

use bytes::Bytes;
use serde::Deserialize;

use super::multipart::OwnerXml;
use super::{request, Acl, Operation, Owner};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::{validate_key, Config};
use crate::error::{Error, InvalidInput};

/// What a grant allows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permission {
    /// `READ`.
    Read,
    /// `WRITE`.
    Write,
    /// `READ_ACP`: read the ACL.
    ReadAcp,
    /// `WRITE_ACP`: change the ACL.
    WriteAcp,
    /// `FULL_CONTROL`.
    FullControl,
    /// Any other permission COS may add.
    Other(String),
}

impl Permission {
    fn parse(s: &str) -> Permission {
        match s.trim() {
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            "FULL_CONTROL" => Permission::FullControl,
            other => Permission::Other(other.to_string()),
        }
    }
}

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grantee {
    /// A CAM user or root account (`ID` such as `qcs::cam::uin/100000000001:uin/100000000011`).
    User {
        /// `ID`.
        id: String,
        /// `DisplayName`.
        display_name: Option<String>,
    },
    /// A predefined group (`URI` such as `http://cam.qcloud.com/groups/global/AllUsers`).
    Group {
        /// `URI`.
        uri: String,
    },
}

/// One entry of an access control list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// PUT Object ACL: sets an object's ACL from a canned ACL and/or grant headers.
///
/// ```
/// use cos_core::ops::{Acl, PutObjectAcl};
/// let op = PutObjectAcl::new("a.txt")
///     .acl(Acl::Private)
///     .grant_read("id=\"qcs::cam::uin/100000000001:uin/100000000011\"");
/// ```
#[derive(Clone, Debug)]
pub struct PutObjectAcl {
    key: String,
    acl: Option<Acl>,
    grants: Vec<(&'static str, String)>,
}

impl PutObjectAcl {
    /// An ACL change of `key` (give at least a canned ACL or one grant).
    pub fn new(key: impl Into<String>) -> Self {
        PutObjectAcl {
            key: key.into(),
            acl: None,
            grants: Vec::new(),
        }
    }

    /// `x-cos-acl`.
    pub fn acl(mut self, acl: Acl) -> Self {
        self.acl = Some(acl);
        self
    }

    /// `x-cos-grant-read`: `id="…"` or `uri="…"` entries separated by commas.
    pub fn grant_read(mut self, grantees: impl Into<String>) -> Self {
        self.grants.push(("x-cos-grant-read", grantees.into()));
        self
    }

    /// `x-cos-grant-read-acp`.
    pub fn grant_read_acp(mut self, grantees: impl Into<String>) -> Self {
        self.grants.push(("x-cos-grant-read-acp", grantees.into()));
        self
    }

    /// `x-cos-grant-write-acp`.
    pub fn grant_write_acp(mut self, grantees: impl Into<String>) -> Self {
        self.grants.push(("x-cos-grant-write-acp", grantees.into()));
        self
    }

    /// `x-cos-grant-full-control`.
    pub fn grant_full_control(mut self, grantees: impl Into<String>) -> Self {
        self.grants
            .push(("x-cos-grant-full-control", grantees.into()));
        self
    }
}

/// What PUT Object ACL returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectAclOutput {
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl Operation for PutObjectAcl {
    type Output = PutObjectAclOutput;
    const NAME: &'static str = "PutObjectAcl";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        if self.acl.is_none() && self.grants.is_empty() {
            return Err(InvalidInput::Parameter {
                name: "acl",
                reason: "give a canned ACL or at least one grant".into(),
            }
            .into());
        }
        let mut req = request(
            config,
            http::Method::PUT,
            &self.key,
            &[("acl", String::new())],
            RequestBody::Empty,
        )?;
        let h = req.headers_mut();
        if let Some(a) = &self.acl {
            h.insert("x-cos-acl", http::HeaderValue::from_static(a.as_str()));
        }
        for (name, v) in &self.grants {
            if v.trim().is_empty() {
                return Err(InvalidInput::Parameter {
                    name: "acl",
                    reason: format!("{name} is empty"),
                }
                .into());
            }
            h.insert(*name, super::header_value(name, v)?);
        }
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<PutObjectAclOutput, Error> {
        super::expect_success(response)?;
        Ok(PutObjectAclOutput {
            request_id: super::request_id(response),
        })
    }
}

/// GET Object ACL.
#[derive(Clone, Debug)]
pub struct GetObjectAcl {
    key: String,
}

impl GetObjectAcl {
    /// Reads the ACL of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        GetObjectAcl { key: key.into() }
    }
}

/// What GET Object ACL returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectAcl {
    /// The object's owner.
    pub owner: Option<Owner>,
    /// The grants, in the order COS lists them.
    pub grants: Vec<Grant>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyXml {
    #[serde(rename = "Owner")]
    owner: Option<OwnerXml>,
    #[serde(rename = "AccessControlList")]
    list: ListXml,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListXml {
    #[serde(rename = "Grant")]
    grants: Vec<GrantXml>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GrantXml {
    #[serde(rename = "Grantee")]
    grantee: GranteeXml,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GranteeXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "DisplayName")]
    display_name: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
}

impl Operation for GetObjectAcl {
    type Output = ObjectAcl;
    const NAME: &'static str = "GetObjectAcl";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        request(
            config,
            http::Method::GET,
            &self.key,
            &[("acl", String::new())],
            RequestBody::Empty,
        )
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ObjectAcl, Error> {
        let x: PolicyXml = super::parse_xml(response, "AccessControlPolicy")?;
        let mut grants = Vec::with_capacity(x.list.grants.len());
        for g in x.list.grants {
            let grantee = match (g.grantee.uri, g.grantee.id) {
                (Some(uri), _) if !uri.trim().is_empty() => Grantee::Group { uri },
                (_, Some(id)) if !id.trim().is_empty() => Grantee::User {
                    id,
                    display_name: g.grantee.display_name.filter(|d| !d.is_empty()),
                },
                _ => {
                    return Err(super::unexpected(
                        response,
                        "a Grant has neither an ID nor a URI",
                    ))
                }
            };
            grants.push(Grant {
                grantee,
                permission: Permission::parse(&g.permission),
            });
        }
        Ok(ObjectAcl {
            owner: OwnerXml::into_owner(x.owner),
            grants,
            request_id: super::request_id(response),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header, response};

    #[test]
    fn put_request() {
        let op = PutObjectAcl::new("a")
            .acl(Acl::PublicRead)
            .grant_full_control("id=\"qcs::cam::uin/1:uin/2\"");
        let req = op.to_request(&config()).unwrap();
        assert_eq!(req.uri().query(), Some("acl"));
        assert_eq!(header(&req, "x-cos-acl"), Some("public-read"));
        assert_eq!(
            header(&req, "x-cos-grant-full-control"),
            Some("id=\"qcs::cam::uin/1:uin/2\"")
        );
        assert!(matches!(
            PutObjectAcl::new("a").to_request(&config()),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn get_parse() {
        let body = r#"<AccessControlPolicy><Owner><ID>qcs::cam::uin/1:uin/1</ID><DisplayName>1</DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>qcs::cam::uin/1:uin/1</ID><DisplayName>1</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://cam.qcloud.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"#;
        let out = GetObjectAcl::new("a")
            .parse_response(&response(200, &[], body), None)
            .unwrap();
        assert_eq!(out.owner.unwrap().id, "qcs::cam::uin/1:uin/1");
        assert_eq!(
            out.grants,
            vec![
                Grant {
                    grantee: Grantee::User {
                        id: "qcs::cam::uin/1:uin/1".into(),
                        display_name: Some("1".into())
                    },
                    permission: Permission::FullControl
                },
                Grant {
                    grantee: Grantee::Group {
                        uri: "http://cam.qcloud.com/groups/global/AllUsers".into()
                    },
                    permission: Permission::Read
                },
            ]
        );
        let bad = response(200, &[], "<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>");
        assert!(GetObjectAcl::new("a").parse_response(&bad, None).is_err());
    }

    #[test]
    fn a_canned_acl_or_a_grant_alone_is_enough() {
        assert!(PutObjectAcl::new("a")
            .acl(Acl::Private)
            .to_request(&config())
            .is_ok());
        assert!(PutObjectAcl::new("a")
            .grant_read("id=\"qcs::cam::uin/1:uin/2\"")
            .to_request(&config())
            .is_ok());
        assert!(matches!(
            PutObjectAcl::new("a").to_request(&config()),
            Err(Error::InvalidInput(InvalidInput::Parameter {
                name: "acl",
                ..
            }))
        ));
    }

    #[test]
    fn a_blank_uri_or_id_does_not_name_a_grantee() {
        let policy = |grantee: &str| {
            response(
                200,
                &[],
                &format!("<AccessControlPolicy><AccessControlList><Grant><Grantee>{grantee}</Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"),
            )
        };
        let out = GetObjectAcl::new("a")
            .parse_response(&policy("<URI> </URI><ID>qcs::cam::uin/1:uin/2</ID>"), None)
            .unwrap();
        assert_eq!(
            out.grants[0].grantee,
            Grantee::User {
                id: "qcs::cam::uin/1:uin/2".into(),
                display_name: None
            }
        );
        assert!(GetObjectAcl::new("a")
            .parse_response(&policy("<ID> </ID>"), None)
            .is_err());
    }
}
