//! S3 names: a protected bucket/prefix as a resource, bucket and prefix checks, and the
//! per-region bucket pattern of table exports.

use crate::{Region, ResourceKind, ResourceRef};

/// `bucket/prefix` in `region`, as a protected resource.
pub fn s3_resource(region: &Region, bucket: &str, prefix: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::S3Prefix,
        id: format!("{bucket}/{prefix}"),
        arn: format!("arn:aws:s3:::{bucket}/{prefix}"),
        region: region.clone(),
    }
}

/// S3 bucket naming rules (3-63 lowercase letters, digits, dots, hyphens; starting and
/// ending with a letter or digit).
pub fn check_bucket(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!("{name:.70?} is not a valid S3 bucket name"))
    }
}

/// A key prefix: at most 1024 bytes.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() <= 1024 {
        Ok(())
    } else {
        Err(format!("prefix is {} bytes, more than 1024", prefix.len()))
    }
}

/// The export bucket of each region: `TABLE_EXPORT_BUCKET`, a bucket name in which
/// `{region}` stands for the region (one bucket per DR region, e.g.
/// `lifeboat-exports-123456789012-{region}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBuckets(String);

impl ExportBuckets {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let sample = pattern.trim().replace("{region}", "us-east-1");
        let ok = (3..=63).contains(&sample.len())
            && sample
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        if ok {
            Ok(Self(pattern.trim().to_owned()))
        } else {
            Err(format!(
                "{pattern:.80?} is not an S3 bucket name (lowercase letters, digits, '-', '.'; {{region}} stands for the region)"
            ))
        }
    }

    pub fn bucket(&self, region: &Region) -> String {
        self.0.replace("{region}", region.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my.bucket-1", "0bucket"] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a_b", &"a".repeat(64)] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
        assert!(check_prefix(&"p".repeat(1025)).is_err());
    }

    #[test]
    fn bucket_names_per_region() {
        let b = ExportBuckets::parse("lb-exports-{region}").unwrap();
        assert_eq!(b.bucket(&Region::parse("eu-west-1").unwrap()), "lb-exports-eu-west-1");
        assert!(ExportBuckets::parse("Not_A_Bucket").is_err());
        assert!(ExportBuckets::parse("").is_err());
    }
}
