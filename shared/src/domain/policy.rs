//! Backup policies are data: stored in the catalog, loaded and validated at run time.
//!
//! A policy is read from a loose [`PolicyDocument`] (what a user writes) into a [`Policy`]
//! (what the rest of Lifeboat trusts). Validation reports every problem at once.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PolicyName, Region};

/// Default priority: 1 is the most critical, 9 the least.
pub const DEFAULT_PRIORITY: u8 = 5;

/// A validated backup policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: PolicyName,
    /// Length of one schedule slot: one snapshot per protected resource per slot.
    pub every: Duration,
    /// Recovery point objective: the newest good recovery point in each location must be
    /// younger than this.
    pub rpo: Duration,
    /// How many recovery points to keep per resource and location.
    pub retain: u32,
    /// 1 (most critical) to 9: orders the copy queue.
    pub priority: u8,
    /// Where copies go, each with the KMS key of the destination region (or the one
    /// configured for that region when absent).
    pub copies: Vec<CopyTarget>,
}

/// A cross-region copy destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyTarget {
    pub region: Region,
    /// KMS key id, ARN or alias in the destination region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// The stored and user-written form of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub name: String,
    /// Slot length, e.g. `15m`, `1h`, `1day`.
    pub every: String,
    /// e.g. `2h`.
    pub rpo: String,
    pub retain: u32,
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default)]
    pub copies: Vec<CopyTargetDocument>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyTargetDocument {
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

fn default_priority() -> u8 {
    DEFAULT_PRIORITY
}

/// Every problem found in one policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyProblems {
    pub policy: String,
    pub problems: Vec<String>,
}

impl fmt::Display for PolicyProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy {:?} is invalid: {}", self.policy, self.problems.join("; "))
    }
}

const MIN_EVERY: Duration = Duration::from_secs(60);
const MAX_EVERY: Duration = Duration::from_secs(31 * 24 * 3600);

impl Policy {
    /// Parses a JSON policy document, listing every problem.
    pub fn from_json(json: &str) -> Result<Self, PolicyProblems> {
        let doc: PolicyDocument = serde_json::from_str(json).map_err(|e| PolicyProblems {
            policy: String::from("<unparsed>"),
            problems: vec![format!("not a valid policy document: {e}")],
        })?;
        Self::from_document(&doc)
    }

    /// Validates a policy document, listing every problem.
    pub fn from_document(doc: &PolicyDocument) -> Result<Self, PolicyProblems> {
        let mut problems = Vec::new();
        let name = PolicyName::parse(&doc.name)
            .map_err(|e| problems.push(e.to_string()))
            .ok();
        let every = parse_duration("every", &doc.every, &mut problems);
        let rpo = parse_duration("rpo", &doc.rpo, &mut problems);
        if let Some(every) = every {
            if every < MIN_EVERY || every > MAX_EVERY {
                problems.push(format!(
                    "every: {} is outside 1 minute to 31 days",
                    humantime::format_duration(every)
                ));
            } else if every.as_secs() % 60 != 0 {
                problems.push("every: must be a whole number of minutes".into());
            }
            if let Some(rpo) = rpo
                && rpo < every
            {
                problems.push(format!(
                    "rpo: {} is shorter than the schedule ({}), so it can never be met",
                    humantime::format_duration(rpo),
                    humantime::format_duration(every)
                ));
            }
        }
        if doc.retain == 0 {
            problems.push("retain: 0 keeps nothing; keep at least 1".into());
        }
        if !(1..=9).contains(&doc.priority) {
            problems.push(format!("priority: {} is outside 1 (most critical) to 9", doc.priority));
        }
        let mut seen = BTreeSet::new();
        let mut copies = Vec::new();
        for (i, c) in doc.copies.iter().enumerate() {
            match Region::parse(&c.region) {
                Ok(region) => {
                    if !seen.insert(region.clone()) {
                        problems.push(format!("copies[{i}]: region {region} is listed twice"));
                    }
                    if let Some(key) = &c.kms_key_id
                        && let Err(p) = check_kms_key(key, &region)
                    {
                        problems.push(format!("copies[{i}].kms_key_id: {p}"));
                    }
                    copies.push(CopyTarget {
                        region,
                        kms_key_id: c.kms_key_id.clone(),
                    });
                }
                Err(e) => problems.push(format!("copies[{i}].region: {e}")),
            }
        }
        match (name, every, rpo, problems.is_empty()) {
            (Some(name), Some(every), Some(rpo), true) => Ok(Self {
                name,
                every,
                rpo,
                retain: doc.retain,
                priority: doc.priority,
                copies,
            }),
            _ => Err(PolicyProblems {
                policy: doc.name.chars().take(64).collect(),
                problems,
            }),
        }
    }

    /// The document form, for storage.
    pub fn to_document(&self) -> PolicyDocument {
        PolicyDocument {
            name: self.name.to_string(),
            every: humantime::format_duration(self.every).to_string(),
            rpo: humantime::format_duration(self.rpo).to_string(),
            retain: self.retain,
            priority: self.priority,
            copies: self
                .copies
                .iter()
                .map(|c| CopyTargetDocument {
                    region: c.region.to_string(),
                    kms_key_id: c.kms_key_id.clone(),
                })
                .collect(),
        }
    }
}

fn parse_duration(field: &str, s: &str, problems: &mut Vec<String>) -> Option<Duration> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            problems.push(format!("{field}: must be longer than zero"));
            None
        }
        Err(e) => {
            let shown: String = s.chars().take(40).collect();
            problems.push(format!("{field}: {shown:?} is not a duration like 15m or 1h ({e})"));
            None
        }
    }
}

/// A KMS key reference must be a key id, a key ARN or an alias; an ARN must be in the
/// destination region (a key from another region is the classic cross-region copy failure).
pub fn check_kms_key(key: &str, region: &Region) -> Result<(), String> {
    if key.is_empty() || key.len() > 2048 {
        return Err("must be a key id, key ARN or alias".into());
    }
    if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "kms" {
            return Err(format!("{key:.80} is not a KMS ARN"));
        }
        if parts[2] != region.as_str() {
            return Err(format!(
                "key {key:.80} is in region {}, but copies to {region} need a key in {region}",
                parts[2]
            ));
        }
        return Ok(());
    }
    if key.starts_with("alias/") || key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(())
    } else {
        Err(format!("{key:.80} is not a key id, key ARN or alias"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_policy_round_trips() {
        let p = Policy::from_json(
            r#"{"name":"gold","every":"1h","rpo":"2h","retain":7,"priority":1,
                "copies":[{"region":"us-west-2","kms_key_id":"arn:aws:kms:us-west-2:123456789012:key/abc"}]}"#,
        )
        .unwrap();
        assert_eq!(p.every, Duration::from_secs(3600));
        assert_eq!(p.copies[0].region.as_str(), "us-west-2");
        assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
    }

    #[test]
    fn every_problem_is_listed() {
        let err = Policy::from_json(
            r#"{"name":"Bad Name","every":"1h","rpo":"10m","retain":0,"priority":12,
                "copies":[{"region":"us-west-2","kms_key_id":"arn:aws:kms:eu-west-1:1:key/x"},
                          {"region":"nowhere"},{"region":"us-west-2"}]}"#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "policy name",
            "rpo:",
            "retain:",
            "priority:",
            "eu-west-1",
            "nowhere",
            "twice",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
    }

    #[test]
    fn garbage_is_rejected_with_a_message() {
        let err = Policy::from_json("{\"name\": 3}").unwrap_err();
        assert!(err.problems[0].contains("not a valid policy document"));
        let err = Policy::from_json(r#"{"name":"a","every":"soon","rpo":"1h","retain":1}"#).unwrap_err();
        assert!(err.problems[0].contains("every"));
    }
}
