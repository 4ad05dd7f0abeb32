//! The database long-term tier: RDS and Aurora snapshots exported to S3 (StartExportTask)
//! into the backup bucket, then moved to a Glacier class.
//!
//! This module holds the pure parts:
//!
//! - [`ExportRule`]: a policy's `export` rule (how often, the KMS key and IAM role
//!   StartExportTask requires, the class exports move to, how long they are kept), every
//!   problem listed.
//! - [`ExportRecord`]: what the catalog knows of one export, on the snapshot's recovery
//!   point (task id, where it went, its state, and once archived its manifest).
//! - [`task_id`], [`export_prefix`], [`manifest_key`]: the deterministic names that make a
//!   replay or a retry after a crash find the export already started instead of starting a
//!   second one.
//! - [`ExportManifest`]: the export's objects (key, size, Lifeboat's SHA-256 or S3's
//!   checksum, class), stored beside the export with its own SHA-256 in the catalog.
//! - [`lifecycle_rule`]: the backup bucket's rule that moves a resource's exports to the
//!   class at day 0 on AWS, beside the explicit moves.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::manifest::sha256_hex;
use super::tiering::{LifecycleRule, MIN_TRANSITION_BYTES, S3Class, TierStep};
use super::{RecoveryPoint, RecoveryPointId, ResourceRef};

/// Everything exported lives under this prefix of the backup bucket.
pub const EXPORTS_ROOT: &str = "lifeboat/exports/";
/// Export data (what RDS writes) lives under `lifeboat/exports/data/<resource>/`.
pub const DATA_ROOT: &str = "lifeboat/exports/data/";
/// Export manifests live under `lifeboat/exports/manifests/<resource>/`: outside the data
/// area, so the lifecycle rule never archives them and they stay readable.
pub const MANIFEST_ROOT: &str = "lifeboat/exports/manifests/";
/// Lifecycle rules owned by export-snapshots carry ids starting with this (other rules,
/// tier-backups' included, are kept).
pub const RULE_ID_PREFIX: &str = "lifeboat-exports ";
/// StartExportTask's limit on ExportTaskIdentifier.
pub const MAX_TASK_ID: usize = 60;
const MANIFEST_FORMAT: &str = "lifeboat-export-manifest/1";
const DAY: Duration = Duration::from_hours(24);

/// The written form of an [`ExportRule`]:
/// `{"every": "30d", "kms_key_id": "arn:aws:kms:…", "role_arn": "arn:aws:iam::…:role/…",
/// "class": "DEEP_ARCHIVE", "keep": "7y"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRuleDocument {
    pub every: String,
    /// Required by StartExportTask: the export is encrypted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Required by StartExportTask: the role RDS assumes to write into the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Default `DEEP_ARCHIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// How long exports are kept (absent: until removed by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}

/// A validated export rule: RDS instances and Aurora clusters of the policy get a snapshot
/// exported to S3 every `every`, moved to `class`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRule {
    pub every: Duration,
    pub kms_key_id: String,
    pub role_arn: String,
    pub class: S3Class,
    pub keep: Option<Duration>,
}

impl ExportRule {
    /// Validates the rule, listing every problem (prefixed `export`).
    pub fn from_document(doc: &ExportRuleDocument) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let every = match humantime::parse_duration(&doc.every) {
            Ok(d) if d < DAY || d > DAY * 3660 => {
                problems.push(format!(
                    "export.every: {} is outside 1 day to 10 years",
                    humantime::format_duration(d)
                ));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!(
                    "export.every: {:.40?} is not a duration like 30d ({e})",
                    doc.every
                ));
                None
            }
        };
        let kms_key_id = match doc.kms_key_id.as_deref().map(str::trim) {
            None | Some("") => {
                problems.push(
                    "export.kms_key_id: required: StartExportTask encrypts the export with a customer managed KMS key"
                        .into(),
                );
                None
            }
            Some(k) if !kms_key_ok(k) => {
                problems.push(format!(
                    "export.kms_key_id: {k:.80?} is not a KMS key id, key ARN or alias"
                ));
                None
            }
            Some(k) => Some(k.to_owned()),
        };
        let role_arn = match doc.role_arn.as_deref().map(str::trim) {
            None | Some("") => {
                problems.push(
                    "export.role_arn: required: StartExportTask needs the IAM role RDS assumes to write to the bucket"
                        .into(),
                );
                None
            }
            Some(r) if !role_ok(r) => {
                problems.push(format!(
                    "export.role_arn: {r:.80?} is not an IAM role ARN like arn:aws:iam::123456789012:role/rds-export"
                ));
                None
            }
            Some(r) => Some(r.to_owned()),
        };
        let class = match doc.class.as_deref() {
            None => Some(S3Class::DeepArchive),
            Some(c) => match S3Class::parse(c) {
                Some(class @ (S3Class::GlacierIr | S3Class::Glacier | S3Class::DeepArchive)) if !c.is_empty() => {
                    Some(class)
                }
                _ => {
                    problems.push(format!(
                        "export.class: {c:.20?} is not a Glacier class (GLACIER_IR, GLACIER or DEEP_ARCHIVE)"
                    ));
                    None
                }
            },
        };
        let keep = doc.keep.as_deref().and_then(|k| match humantime::parse_duration(k) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!("export.keep: {k:.40?} is not a duration like 7y ({e})"));
                None
            }
        });
        if let (Some(keep), Some(class)) = (keep, class) {
            let min = DAY * class.min_storage_days();
            if keep < min {
                problems.push(format!(
                    "export.keep: {} is shorter than {class}'s {}-day minimum storage duration (deleting sooner is billed as if kept)",
                    humantime::format_duration(keep),
                    class.min_storage_days()
                ));
            }
        }
        match (every, kms_key_id, role_arn, class, problems.is_empty()) {
            (Some(every), Some(kms_key_id), Some(role_arn), Some(class), true) => Ok(Self {
                every,
                kms_key_id,
                role_arn,
                class,
                keep,
            }),
            _ => Err(problems),
        }
    }

    pub fn to_document(&self) -> ExportRuleDocument {
        ExportRuleDocument {
            every: humantime::format_duration(self.every).to_string(),
            kms_key_id: Some(self.kms_key_id.clone()),
            role_arn: Some(self.role_arn.clone()),
            class: Some(self.class.as_str().to_owned()),
            keep: self.keep.map(|k| humantime::format_duration(k).to_string()),
        }
    }

    /// Due when the resource was never exported, or its last export (not failed) started
    /// `every` ago or longer.
    pub fn due(&self, last_started: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        last_started.is_none_or(|at| (now - at).to_std().is_ok_and(|age| age >= self.every))
    }
}

fn kms_key_ok(k: &str) -> bool {
    if k.len() > 2048 {
        return false;
    }
    if let Some(rest) = k.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[1] == "kms"
            && !parts[2].is_empty()
            && (parts[4].starts_with("key/") || parts[4].starts_with("alias/"));
    }
    k.strip_prefix("alias/").is_some_and(|a| !a.is_empty()) || k.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn role_ok(r: &str) -> bool {
    r.strip_prefix("arn:").is_some_and(|rest| {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        parts.len() == 5
            && parts[1] == "iam"
            && parts[3].len() == 12
            && parts[3].bytes().all(|b| b.is_ascii_digit())
            && parts[4].starts_with("role/")
            && parts[4].len() > "role/".len()
    })
}

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// StartExportTask accepted it; RDS is exporting.
    Started,
    /// RDS finished; its objects are being moved to the class.
    Moving,
    /// Every data object is in the class, verified, and listed in the manifest.
    Archived,
    /// RDS reported FAILED or CANCELED (or the task vanished); a later run may start anew.
    Failed,
    /// Kept for the rule's `keep`, then its objects were deleted (the manifest stays as
    /// history).
    Expired,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Moving => "moving",
            Self::Archived => "archived",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// Started or moving: work remains.
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Started | Self::Moving)
    }
}

impl fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One export of a snapshot recovery point, recorded on that point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The ExportTaskIdentifier ([`task_id`]).
    pub task_id: String,
    /// 1 for the first export of the snapshot; one more after each failure.
    pub attempt: u32,
    pub bucket: String,
    /// The S3Prefix given to StartExportTask ([`export_prefix`]); RDS writes under
    /// `<prefix>/<task id>/` ([`ExportRecord::data_prefix`]).
    pub prefix: String,
    pub status: ExportStatus,
    pub class: S3Class,
    pub started_at: DateTime<Utc>,
    /// When RDS reported the export complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// When every data object was in the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<DateTime<Utc>>,
    /// Data objects and their bytes (once archived).
    #[serde(default)]
    pub objects: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// Superseded (STANDARD) versions that a lock or legal hold kept from deletion.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub superseded_pending: u64,
    /// AWS's status and reason for a failed export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When its objects were deleted after `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<DateTime<Utc>>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ExportRecord {
    /// When an archived export has been kept `keep` (counted from when its objects reached
    /// the class, so the class's minimum storage duration, which `keep` covers, is
    /// served); `None` while it is not archived.
    pub fn expires_at(&self, keep: Duration) -> Option<DateTime<Utc>> {
        let keep = chrono::Duration::from_std(keep).ok()?;
        (self.status == ExportStatus::Archived)
            .then_some(self.archived_at)
            .flatten()
            .and_then(|at| at.checked_add_signed(keep))
    }

    /// Where RDS writes the export's objects.
    pub fn data_prefix(&self) -> String {
        format!("{}/{}/", self.prefix.trim_end_matches('/'), self.task_id)
    }
}

/// The ExportTaskIdentifier of attempt `attempt` at exporting `rp`: derived from the
/// recovery point only, so a replay or a retry after a crash names the same task. At most
/// 60 characters: a letter first, then letters, digits and single hyphens.
pub fn task_id(rp: &RecoveryPointId, snapshot_name: &str, attempt: u32) -> String {
    let hash = &sha256_hex(rp.as_str().as_bytes())[..12];
    let mut name = String::new();
    // Readable part: the snapshot name's letters, digits and single hyphens.
    for c in snapshot_name.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if c == '-' && (name.is_empty() || name.ends_with('-')) {
            continue;
        }
        name.push(c);
    }
    let suffix = format!("-{hash}-{attempt}");
    let room = MAX_TASK_ID - "lbx-".len() - suffix.len();
    let mut name: String = name.chars().take(room).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        format!("lbx{suffix}")
    } else {
        format!("lbx-{name}{suffix}")
    }
}

/// Whether `id` is a valid ExportTaskIdentifier.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TASK_ID
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The S3Prefix of a snapshot's export: `lifeboat/exports/data/<resource>/<snapshot>`.
pub fn export_prefix(resource: &ResourceRef, snapshot_name: &str) -> String {
    format!("{DATA_ROOT}{}/{snapshot_name}", resource.id)
}

/// The manifest of one export task.
pub fn manifest_key(resource: &ResourceRef, snapshot_name: &str, task_id: &str) -> String {
    format!("{MANIFEST_ROOT}{}/{snapshot_name}/{task_id}.json", resource.id)
}

/// Data objects are what RDS exported (Parquet files); the JSON files RDS writes beside
/// them (`export_info_*.json`, `export_tables_info_*.json`) describe the export and stay
/// readable.
pub fn is_data_object(key: &str) -> bool {
    !key.ends_with('/') && !key.to_ascii_lowercase().ends_with(".json")
}

/// The lifecycle rule moving `resource`'s exports to `class` at day 0 (on AWS: the next
/// lifecycle run; export-snapshots moves them explicitly before that). Objects under
/// 128 KB stay, as S3's default.
pub fn lifecycle_rule(resource_id: &str, class: S3Class) -> LifecycleRule {
    let prefix = format!("{DATA_ROOT}{resource_id}/");
    LifecycleRule {
        id: format!("{RULE_ID_PREFIX}{prefix}").chars().take(255).collect(),
        prefix,
        larger_than: MIN_TRANSITION_BYTES - 1,
        transitions: vec![TierStep { after_days: 0, class }],
    }
}

/// One exported object as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportObject {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    /// Lifeboat's SHA-256 of the bytes (hex), read before the move; absent when the
    /// lifecycle rule archived the object before Lifeboat read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// S3's stored checksum of the archived copy (base64 SHA-256), when S3 reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_checksum_sha256: Option<String>,
    pub etag: String,
    pub class: S3Class,
}

/// The manifest of one export, written beside it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format: String,
    pub recovery_point: RecoveryPointId,
    pub resource_arn: String,
    pub snapshot_arn: String,
    pub task_id: String,
    pub bucket: String,
    pub prefix: String,
    pub class: S3Class,
    pub archived_at: DateTime<Utc>,
    pub objects: u64,
    pub bytes: u64,
    pub entries: Vec<ExportObject>,
}

impl ExportManifest {
    pub fn new(
        rp: &RecoveryPoint,
        record: &ExportRecord,
        archived_at: DateTime<Utc>,
        mut entries: Vec<ExportObject>,
    ) -> Self {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            format: MANIFEST_FORMAT.into(),
            recovery_point: rp.id.clone(),
            resource_arn: rp.resource.arn.clone(),
            snapshot_arn: rp.snapshot_arn.clone().unwrap_or_default(),
            task_id: record.task_id.clone(),
            bucket: record.bucket.clone(),
            prefix: record.data_prefix(),
            class: record.class,
            archived_at,
            objects: entries.len() as u64,
            bytes: entries.iter().map(|e| e.size).sum(),
            entries,
        }
    }

    /// The stored bytes and their SHA-256 (hex).
    pub fn encode(&self) -> Result<(Vec<u8>, String), String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let sha = sha256_hex(&bytes);
        Ok((bytes, sha))
    }

    /// Reads a stored manifest, checking it against the SHA-256 the catalog holds.
    pub fn decode(bytes: &[u8], sha256: &str) -> Result<Self, String> {
        let actual = sha256_hex(bytes);
        if actual != sha256 {
            return Err(format!("SHA-256 {actual} differs from the recorded {sha256}"));
        }
        let m: Self = serde_json::from_slice(bytes).map_err(|e| format!("not an export manifest: {e}"))?;
        if m.format != MANIFEST_FORMAT {
            return Err(format!("format {:?} is not {MANIFEST_FORMAT}", m.format));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{PolicyName, Region, ResourceKind, Slot, Status};

    fn doc(json: &str) -> ExportRuleDocument {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_sound_rule_is_accepted_and_round_trips() {
        let r = ExportRule::from_document(&doc(
            r#"{"every":"30d","kms_key_id":"arn:aws:kms:us-west-2:123456789012:key/abc",
                "role_arn":"arn:aws:iam::123456789012:role/rds-export","keep":"7y"}"#,
        ))
        .unwrap();
        assert_eq!(r.class, S3Class::DeepArchive);
        assert_eq!(r.every, DAY * 30);
        assert_eq!(ExportRule::from_document(&r.to_document()).unwrap(), r);
        let now: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        assert!(r.due(None, now));
        assert!(!r.due(Some(now - chrono::Duration::days(29)), now));
        assert!(r.due(Some(now - chrono::Duration::days(30)), now));
    }

    #[test]
    fn every_problem_is_listed() {
        let p = ExportRule::from_document(&doc(r#"{"every":"1h","class":"STANDARD_IA","keep":"soon"}"#)).unwrap_err();
        let all = p.join("\n");
        for want in [
            "export.every: 1h is outside",
            "export.kms_key_id: required",
            "export.role_arn: required",
            "export.class: \"STANDARD_IA\" is not a Glacier class",
            "export.keep: \"soon\"",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        let p = ExportRule::from_document(&doc(
            r#"{"every":"30d","kms_key_id":"not a key","role_arn":"arn:aws:iam::1:user/x","keep":"90d"}"#,
        ))
        .unwrap_err();
        let all = p.join("\n");
        for want in [
            "export.kms_key_id: \"not a key\"",
            "export.role_arn: \"arn:aws:iam::1:user/x\"",
            "180-day minimum storage duration",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn task_ids_are_deterministic_valid_and_short() {
        let id = RecoveryPointId::parse("us-west-2/db/lb-gold-orders-db-20261123-1800").unwrap();
        let a = task_id(&id, "lb-gold-orders-db-20261123-1800", 1);
        assert_eq!(a, task_id(&id, "lb-gold-orders-db-20261123-1800", 1));
        assert_ne!(a, task_id(&id, "lb-gold-orders-db-20261123-1800", 2));
        assert!(valid_task_id(&a), "{a}");
        let long = "x".repeat(200) + "--" + &"y".repeat(50);
        let rp = RecoveryPointId::parse(&format!("us-west-2/cluster/{}", "z".repeat(200))).unwrap();
        for (name, attempt) in [
            (long.as_str(), 999),
            ("---", 1),
            ("1-2-3", 12),
            (long.as_str(), u32::MAX),
        ] {
            let t = task_id(&rp, name, attempt);
            assert!(valid_task_id(&t), "{t}");
        }
        assert!(!valid_task_id("1abc") && !valid_task_id("a--b") && !valid_task_id("a-") && !valid_task_id(""));
    }

    #[test]
    fn layout_keeps_manifests_out_of_the_lifecycle_rule() {
        let r = ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: "orders".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:db:orders".into(),
            region: Region::parse("us-east-1").unwrap(),
        };
        let prefix = export_prefix(&r, "snap-1");
        let rule = lifecycle_rule(&r.id, S3Class::DeepArchive);
        assert!(prefix.starts_with(&rule.prefix));
        assert!(rule.id.starts_with(RULE_ID_PREFIX));
        assert!(!rule.id.starts_with(super::super::tiering::RULE_ID_PREFIX));
        assert_eq!(rule.transitions[0].after_days, 0);
        let m = manifest_key(&r, "snap-1", "lbx-a-1");
        assert!(m.starts_with(EXPORTS_ROOT) && !m.starts_with(&rule.prefix));
        assert!(is_data_object("x/part-00000.gz.parquet") && !is_data_object("x/export_info_t.json"));
    }

    #[test]
    fn the_manifest_round_trips_and_is_checked() {
        let region = Region::parse("us-east-1").unwrap();
        let now: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let resource = ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: "db1".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:db:db1".into(),
            region: region.clone(),
        };
        let rp = RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::containing(now, Duration::from_hours(1)),
            &region,
            "snap",
            Status::Available,
            now,
        );
        let record = ExportRecord {
            task_id: "lbx-snap-1".into(),
            attempt: 1,
            bucket: "vault".into(),
            prefix: export_prefix(&resource, "snap"),
            status: ExportStatus::Moving,
            class: S3Class::DeepArchive,
            started_at: now,
            completed_at: None,
            archived_at: None,
            objects: 0,
            bytes: 0,
            manifest_key: None,
            manifest_sha256: None,
            superseded_pending: 0,
            failure: None,
            expired_at: None,
        };
        let entry = |key: &str, size| ExportObject {
            key: key.into(),
            version_id: None,
            size,
            sha256: Some("ab".into()),
            s3_checksum_sha256: None,
            etag: "e".into(),
            class: S3Class::DeepArchive,
        };
        let m = ExportManifest::new(&rp, &record, now, vec![entry("b", 2), entry("a", 3)]);
        assert_eq!((m.objects, m.bytes, m.entries[0].key.as_str()), (2, 5, "a"));
        assert_eq!(m.prefix, "lifeboat/exports/data/db1/snap/lbx-snap-1/");
        let (bytes, sha) = m.encode().unwrap();
        assert_eq!(ExportManifest::decode(&bytes, &sha).unwrap(), m);
        assert!(ExportManifest::decode(&bytes, "00").unwrap_err().contains("differs"));
    }
}
