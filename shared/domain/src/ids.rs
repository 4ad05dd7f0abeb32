//! Identifiers that are parsed once at the boundary and valid from then on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value could not be parsed into a domain identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct ParseError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl ParseError {
    fn new(what: &'static str, value: &str, reason: &'static str) -> Self {
        // Cap the echoed value so a hostile input cannot flood logs or error messages.
        let value: String = value.chars().take(80).collect();
        Self { what, value, reason }
    }
}

/// An AWS region code such as `us-east-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let parts: Vec<&str> = s.split('-').collect();
        let well_formed = (3..=4).contains(&parts.len())
            && parts.iter().all(|p| !p.is_empty())
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
            && parts[0].len() == 2;
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new("region", s, "expected a region code like us-east-1"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Region> for String {
    fn from(r: Region) -> Self {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a backup policy: 1-32 characters, lowercase letters, digits and single
/// hyphens, starting with a letter. It becomes part of snapshot identifiers, so it obeys
/// the RDS identifier rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PolicyName(String);

impl PolicyName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.ends_with('-')
            && !s.contains("--");
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "policy name",
                s,
                "expected 1-32 lowercase letters, digits or single hyphens, starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PolicyName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PolicyName> for String {
    fn from(p: PolicyName) -> Self {
        p.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of resource Lifeboat snapshots today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    /// An RDS DB instance (not a member of an Aurora cluster).
    RdsInstance,
    /// An Aurora (or Multi-AZ) DB cluster.
    AuroraCluster,
    /// An S3 bucket, or a prefix of one (`id` is `bucket/prefix`), backed up object by object.
    S3Prefix,
    /// A DynamoDB table, protected with native on-demand backups (`id` is the table name).
    DynamoDbTable,
    /// A bundle of SSM parameters and Secrets Manager secrets (`id` is the bundle's name),
    /// sealed by `backup-config`. Not chosen by policy selection.
    ConfigBundle,
}

impl ResourceKind {
    /// Short tag used inside recovery point ids.
    pub fn short(self) -> &'static str {
        match self {
            Self::RdsInstance => "db",
            Self::AuroraCluster => "cluster",
            Self::S3Prefix => "s3",
            Self::DynamoDbTable => "table",
            Self::ConfigBundle => "config",
        }
    }

    pub fn from_short(s: &str) -> Option<Self> {
        match s {
            "db" => Some(Self::RdsInstance),
            "cluster" => Some(Self::AuroraCluster),
            "s3" => Some(Self::S3Prefix),
            "table" => Some(Self::DynamoDbTable),
            "config" => Some(Self::ConfigBundle),
            _ => None,
        }
    }

    /// The name policies use in `select.types`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.to_string() == s)
    }

    pub const ALL: [Self; 4] = [
        Self::RdsInstance,
        Self::AuroraCluster,
        Self::S3Prefix,
        Self::DynamoDbTable,
    ];

    /// Whether Lifeboat copies this kind's recovery points to other regions itself. RDS
    /// and Aurora snapshots are copied; a DynamoDB table's copy is an export of the table
    /// at its backup's time into the other region (native backups cannot leave their
    /// region); S3 runs are written to the DR region in the first place.
    pub fn copied_by_lifeboat(self) -> bool {
        matches!(self, Self::RdsInstance | Self::AuroraCluster | Self::DynamoDbTable)
    }

    /// A data set a policy names (an S3 prefix or a config bundle): backed up by a run
    /// that a function carries out, kept in the backup region.
    pub fn is_data_set(self) -> bool {
        matches!(self, Self::S3Prefix | Self::ConfigBundle)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RdsInstance => "rds-instance",
            Self::AuroraCluster => "aurora-cluster",
            Self::S3Prefix => "s3-prefix",
            Self::DynamoDbTable => "dynamodb-table",
            Self::ConfigBundle => "config-bundle",
        })
    }
}

/// A protected resource: what it is, where it lives, and its ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    /// The DB instance or cluster identifier.
    pub id: String,
    pub arn: String,
    pub region: Region,
}

/// RDS identifier rules: 1–63 letters, digits and hyphens, starting with a letter, no
/// trailing hyphen and no two hyphens in a row.
pub fn is_rds_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.ends_with('-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse() {
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-5"] {
            assert!(Region::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "us--1", "useast1", "u-east-1", "us-east-1a"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_names_follow_rds_identifier_rules() {
        assert!(PolicyName::parse("gold").is_ok());
        assert!(PolicyName::parse("tier-1").is_ok());
        for bad in ["", "1gold", "Gold", "a--b", "a-", &"x".repeat(33), "go ld"] {
            assert!(PolicyName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_error_caps_echoed_input() {
        let long = "A".repeat(10_000);
        let err = Region::parse(&long).unwrap_err();
        assert!(err.to_string().len() < 200);
    }
}
