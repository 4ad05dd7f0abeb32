//! Data sets a policy names: S3 buckets/prefixes and config bundles (SSM parameters and
//! Secrets Manager secrets).
//!
//! Databases come to a policy by tag or selection; data sets are named in the policy
//! itself, several per policy and several policies per stack. Each becomes a protected
//! resource like a database: its runs are due by the policy's schedule (one per slot,
//! named by the slot, so a replayed tick names the same run), kept by its retention behind
//! the same safety floor, and judged by its RPO, compliance and 3-2-1.
//!
//! A data set's runs are kept in the backup region (the S3 backup bucket's), not beside
//! the data: the protected resource a data set becomes is placed there
//! ([`data_resources`]), so that its runs are judged, planned and expired where they are.
//! Its ARN stays the source's, the key its runs are cataloged under.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::planner::ProtectedResource;
use super::s3::{check_bucket, check_prefix, s3_resource};
use super::{Policy, PolicyName, Region, ResourceKind, ResourceRef, Slot};

/// Data sets of one kind a policy may name at most.
pub const MAX_DATA_SETS: usize = 100;

/// One bucket/prefix a policy protects: `{"bucket": "media", "prefix": "photos/",
/// "change_queue": "lifeboat-changes-media", "large": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3DataSet {
    pub bucket: String,
    /// Key prefix; empty: the whole bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The SQS queue receiving the prefix's S3 change events (runs then read only the keys
    /// it names, with a periodic full listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_queue: Option<String>,
    /// Back up through the sharded state machine (prefix shards in parallel) instead of
    /// one function invocation per run: for prefixes of millions of objects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub large: bool,
}

/// One config bundle a policy protects: `{"name": "orders-config", "parameters":
/// ["/orders/"], "secrets": ["orders/"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBundleSet {
    /// The bundle's name (lowercase letters, digits and hyphens, a letter first).
    pub name: String,
    /// SSM parameter paths (`/orders/`) or names, each read recursively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
    /// Secrets Manager name prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl S3DataSet {
    /// The protected resource in `source` (the region of the bucket).
    pub fn resource(&self, source: &Region) -> ResourceRef {
        s3_resource(source, &self.bucket, &self.prefix)
    }

    fn check(&self, at: &str, problems: &mut Vec<String>) {
        if let Err(e) = check_bucket(&self.bucket) {
            problems.push(format!("{at}.bucket: {e}"));
        }
        if let Err(e) = check_prefix(&self.prefix) {
            problems.push(format!("{at}.prefix: {e}"));
        }
        if let Some(q) = &self.change_queue {
            let ok =
                (1..=80).contains(&q.len()) && q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                problems.push(format!(
                    "{at}.change_queue: {q:.90?} is not an SQS queue name (1-80 letters, digits, - and _)"
                ));
            }
            if self.large {
                problems.push(format!(
                    "{at}: a large data set is listed shard by shard on every run; it takes no change_queue"
                ));
            }
        }
    }
}

impl ConfigBundleSet {
    /// The protected resource in `source` (the region of the parameters and secrets).
    pub fn resource(&self, source: &Region) -> ResourceRef {
        config_resource(source, &self.name)
    }

    fn check(&self, at: &str, problems: &mut Vec<String>) {
        if let Err(e) = PolicyName::parse(&self.name) {
            problems.push(format!("{at}.name: {e}"));
        }
        if self.parameters.is_empty() && self.secrets.is_empty() {
            problems.push(format!("{at}: name at least one parameter path or secret prefix"));
        }
        for (i, p) in self.parameters.iter().enumerate() {
            if !p.starts_with('/') || p.len() > 2048 {
                problems.push(format!("{at}.parameters[{i}]: {p:.80?} is not a parameter path (/…)"));
            }
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if s.is_empty() || s.len() > 512 {
                problems.push(format!("{at}.secrets[{i}]: a name prefix of 1 to 512 characters"));
            }
        }
    }
}

/// A config bundle as a protected resource, in the region its items live in.
pub fn config_resource(region: &Region, bundle: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::ConfigBundle,
        id: bundle.to_owned(),
        arn: format!("lifeboat:config-bundle:{region}:{bundle}"),
        region: region.clone(),
    }
}

/// Checks a policy's data sets, adding every problem (prefixed `s3[i]` or
/// `config_bundles[i]`); duplicates within the policy are problems too, and so are data
/// sets in a policy that delegates to AWS Backup (`delegated`).
pub fn check_data_sets(s3: &[S3DataSet], config: &[ConfigBundleSet], delegated: bool, problems: &mut Vec<String>) {
    if delegated && !(s3.is_empty() && config.is_empty()) {
        problems.push(
            "s3, config_bundles: a policy that delegates to AWS Backup backs up databases through the vault; name data sets in a policy of their own"
                .into(),
        );
    }
    for (what, n) in [("s3", s3.len()), ("config_bundles", config.len())] {
        if n > MAX_DATA_SETS {
            problems.push(format!("{what}: {n} entries, at most {MAX_DATA_SETS}"));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, d) in s3.iter().enumerate() {
        let at = format!("s3[{i}]");
        d.check(&at, problems);
        if !seen.insert((d.bucket.as_str(), d.prefix.as_str())) {
            problems.push(format!("{at}: {}/{} is named twice", d.bucket, d.prefix));
        }
    }
    let mut names = BTreeSet::new();
    for (i, c) in config.iter().enumerate() {
        let at = format!("config_bundles[{i}]");
        c.check(&at, problems);
        if !names.insert(c.name.as_str()) {
            problems.push(format!("{at}: bundle {:?} is named twice", c.name));
        }
    }
}

/// What starts a data set's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSet {
    S3(S3DataSet),
    Config(ConfigBundleSet),
}

/// A data set under the policy that protects it, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedDataSet {
    pub data_set: DataSet,
    pub protected: ProtectedResource,
}

/// A data set two or more policies name: the most critical one protects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSetOverlap {
    pub arn: String,
    pub chosen: PolicyName,
    pub others: Vec<PolicyName>,
}

/// Every data set the `policies` name, as protected resources placed in `backup_region`
/// (where their runs are kept) with the source's ARN (`source_region`: where the buckets,
/// parameters and secrets are). A data set several policies name is protected by the most
/// critical one (lowest priority number, then name), and the overlap is reported.
pub fn data_resources(
    policies: &BTreeMap<PolicyName, Policy>,
    source_region: &Region,
    backup_region: &Region,
) -> (Vec<ProtectedDataSet>, Vec<DataSetOverlap>) {
    let mut by_arn: BTreeMap<String, Vec<(&Policy, DataSet, ResourceRef)>> = BTreeMap::new();
    for policy in policies.values() {
        for d in &policy.s3 {
            let r = d.resource(source_region);
            by_arn
                .entry(r.arn.clone())
                .or_default()
                .push((policy, DataSet::S3(d.clone()), r));
        }
        for c in &policy.config_bundles {
            let r = c.resource(source_region);
            by_arn
                .entry(r.arn.clone())
                .or_default()
                .push((policy, DataSet::Config(c.clone()), r));
        }
    }
    let mut out = Vec::new();
    let mut overlaps = Vec::new();
    for (arn, mut claims) in by_arn {
        claims.sort_by(|a, b| (a.0.priority, &a.0.name).cmp(&(b.0.priority, &b.0.name)));
        let mut claims = claims.into_iter();
        let Some((policy, data_set, mut resource)) = claims.next() else {
            continue;
        };
        let others: Vec<PolicyName> = claims.map(|(p, _, _)| p.name.clone()).collect();
        if !others.is_empty() {
            overlaps.push(DataSetOverlap {
                arn,
                chosen: policy.name.clone(),
                others,
            });
        }
        resource.region = backup_region.clone();
        out.push(ProtectedDataSet {
            data_set,
            protected: ProtectedResource {
                resource,
                policy: policy.name.clone(),
                windows: Vec::new(),
            },
        });
    }
    (out, overlaps)
}

/// The name of a data set's scheduled run in `slot`: what `backup-objects`
/// (`lb-<policy>-<bucket>-<prefix tag>-<slot>`) and `backup-config` (`lb-<bundle>-<slot>`)
/// name the run of a request whose `scheduledTime` is the slot's start. `None` for other
/// kinds.
pub fn run_name(policy: &PolicyName, resource: &ResourceRef, slot: Slot) -> Option<String> {
    match resource.kind {
        ResourceKind::S3Prefix => {
            let (bucket, prefix) = resource.id.split_once('/').unwrap_or((resource.id.as_str(), ""));
            Some(super::manifest::run_name(
                policy.as_str(),
                bucket,
                prefix,
                &slot.compact(),
            ))
        }
        ResourceKind::ConfigBundle => Some(format!("lb-{}-{}", resource.id, slot.compact())),
        ResourceKind::RdsInstance | ResourceKind::AuroraCluster | ResourceKind::DynamoDbTable => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::from_json(json).unwrap()
    }

    fn region(s: &str) -> Region {
        Region::parse(s).unwrap()
    }

    #[test]
    fn a_policy_names_buckets_and_bundles() {
        let p = policy(
            r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3,
                "s3": [{"bucket": "media", "prefix": "photos/"}, {"bucket": "logs", "change_queue": "lb-changes-logs"}],
                "config_bundles": [{"name": "orders-config", "parameters": ["/orders/"], "secrets": ["orders/"]}]}"#,
        );
        assert_eq!(p.s3.len(), 2);
        assert_eq!(p.config_bundles[0].name, "orders-config");
        // The stored form reads back the same.
        let again = Policy::from_document(&p.to_document()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn every_problem_is_named_by_its_place() {
        let e = Policy::from_json(
            r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3,
                "s3": [{"bucket": "Bad_Bucket"}, {"bucket": "media", "prefix": "a/"}, {"bucket": "media", "prefix": "a/"},
                       {"bucket": "big", "large": true, "change_queue": "q"}],
                "config_bundles": [{"name": "Orders"}, {"name": "x", "parameters": ["no-slash"]}]}"#,
        )
        .unwrap_err();
        let all = e.problems.join("\n");
        for expected in [
            "s3[0].bucket",
            "s3[2]: media/a/ is named twice",
            "s3[3]: a large data set",
            "config_bundles[0].name",
            "config_bundles[0]: name at least one",
            "config_bundles[1].parameters[0]",
        ] {
            assert!(all.contains(expected), "{expected} missing from:\n{all}");
        }
    }

    #[test]
    fn data_sets_are_placed_where_their_runs_are_kept() {
        let gold = policy(
            r#"{"name": "gold", "every": "1h", "rpo": "2h", "retain": 3, "priority": 1,
                "s3": [{"bucket": "media", "prefix": "photos/"}], "config_bundles": [{"name": "app", "secrets": ["app/"]}]}"#,
        );
        let silver = policy(
            r#"{"name": "silver", "every": "1day", "rpo": "2days", "retain": 3,
                "s3": [{"bucket": "media", "prefix": "photos/"}, {"bucket": "logs"}]}"#,
        );
        let policies = BTreeMap::from([(gold.name.clone(), gold), (silver.name.clone(), silver)]);
        let (sets, overlaps) = data_resources(&policies, &region("us-east-1"), &region("us-west-2"));
        assert_eq!(sets.len(), 3);
        let photos = sets
            .iter()
            .find(|s| s.protected.resource.id == "media/photos/")
            .unwrap();
        // The most critical policy protects what two name; the overlap is reported.
        assert_eq!(photos.protected.policy.as_str(), "gold");
        assert_eq!(overlaps.len(), 1);
        assert_eq!(overlaps[0].others[0].as_str(), "silver");
        // Judged where the runs are, keyed by the source's ARN.
        assert_eq!(photos.protected.resource.region.as_str(), "us-west-2");
        assert_eq!(photos.protected.resource.arn, "arn:aws:s3:::media/photos/");
        let app = sets.iter().find(|s| s.protected.resource.id == "app").unwrap();
        assert_eq!(app.protected.resource.arn, "lifeboat:config-bundle:us-east-1:app");
    }

    #[test]
    fn runs_are_named_as_the_functions_name_them() {
        let slot = Slot::containing(
            chrono::DateTime::parse_from_rfc3339("2026-12-07T10:15:00Z")
                .unwrap()
                .into(),
            std::time::Duration::from_mins(15),
        );
        let gold = PolicyName::parse("gold").unwrap();
        let s3 = s3_resource(&region("us-east-1"), "media", "photos/");
        assert_eq!(
            run_name(&gold, &s3, slot).unwrap(),
            super::super::manifest::run_name("gold", "media", "photos/", "20261207-1015")
        );
        let bundle = config_resource(&region("us-east-1"), "app");
        assert_eq!(run_name(&gold, &bundle, slot).unwrap(), "lb-app-20261207-1015");
    }
}
