//! Bundles (S3 run manifests, config bundles) archived in a Glacier vault, as the catalog
//! records them on their recovery point: where the archive is, the tree hash Lifeboat
//! computed before uploading it, and the latest retrieval job with what reading its output
//! back found.
//!
//! A retrieval is `in_progress` until its job completes; then the bytes are read back,
//! hashed by Lifeboat and compared with the recorded tree hash (and the SHA-256 the bundle
//! has in the catalog) and with what Glacier claims: `verified` when all agree, `mismatch`
//! when any differs, `failed` when the job failed or its output is gone.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Region;

/// How long Glacier keeps a completed job's output: within this a retrieval is still the
/// current one, and a request for another is answered with it.
pub const OUTPUT_KEPT: Duration = Duration::hours(24);

/// Retrieval speed (and price) of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RetrievalTier {
    /// 1-5 minutes (when capacity is available).
    Expedited,
    /// 3-5 hours.
    Standard,
    /// 5-12 hours.
    Bulk,
}

impl RetrievalTier {
    /// As Glacier spells it (`Tier` of InitiateJob).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expedited => "Expedited",
            Self::Standard => "Standard",
            Self::Bulk => "Bulk",
        }
    }
}

impl fmt::Display for RetrievalTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalStatus {
    /// The job is running in Glacier.
    InProgress,
    /// The output was read back and matches the archive's record.
    Verified,
    /// The output differs from the record or from what Glacier claims: see `problems`.
    Mismatch,
    /// The job failed, or its output could not be had (e.g. expired): see `problems`.
    Failed,
}

impl RetrievalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Verified => "verified",
            Self::Mismatch => "mismatch",
            Self::Failed => "failed",
        }
    }
}

/// One archive-retrieval job and what its output turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrieval {
    pub job_id: String,
    pub tier: RetrievalTier,
    pub started_at: DateTime<Utc>,
    pub status: RetrievalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Tree hash (hex) of the bytes Lifeboat read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved_tree_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved_bytes: Option<u64>,
    /// The tree hash Glacier claimed for the output (the job's `SHA256TreeHash`), when it
    /// gave one: compared, never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_tree_hash: Option<String>,
    /// What did not match, or why the retrieval failed: one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Retrieval {
    pub fn started(job_id: &str, tier: RetrievalTier, at: DateTime<Utc>) -> Self {
        Self {
            job_id: job_id.to_owned(),
            tier,
            started_at: at,
            status: RetrievalStatus::InProgress,
            completed_at: None,
            retrieved_tree_hash: None,
            retrieved_bytes: None,
            claimed_tree_hash: None,
            problems: Vec::new(),
        }
    }

    /// Still the retrieval of record: running, or completed less than [`OUTPUT_KEPT`] ago.
    pub fn is_current(&self, now: DateTime<Utc>) -> bool {
        match (self.status, self.completed_at) {
            (RetrievalStatus::InProgress, _) => true,
            (_, Some(done)) => now - done < OUTPUT_KEPT,
            (_, None) => false,
        }
    }
}

/// An archive of a recovery point's bundle in a Glacier vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRef {
    pub vault: String,
    /// The vault's region.
    pub region: Region,
    pub archive_id: String,
    /// SHA-256 tree hash (hex) of the archived bytes, computed by Lifeboat before upload.
    pub tree_hash: String,
    /// Plain SHA-256 (hex) of the archived bytes: the bundle's checksum in the catalog.
    pub sha256: String,
    pub size: u64,
    /// Requests the upload took (1, or the parts of a multipart upload).
    pub parts: u32,
    pub archived_at: DateTime<Utc>,
    /// The latest retrieval, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Retrieval>,
}

/// What reading an archive back produced, as Lifeboat measured it, and Glacier's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBack {
    pub tree_hash: String,
    pub sha256: String,
    pub bytes: u64,
    /// The tree hashes Glacier claims for the output (the job's `SHA256TreeHash`, the
    /// output's `x-amz-sha256-tree-hash`), those it gave.
    pub claims: Vec<String>,
}

impl ArchiveRef {
    /// Compares what was read back with the record and with Glacier's claim: every
    /// difference, one line each (none: verified).
    pub fn check(&self, read: &ReadBack) -> Vec<String> {
        let mut problems = Vec::new();
        if read.bytes != self.size {
            problems.push(format!("{} bytes read back, {} archived", read.bytes, self.size));
        }
        if !read.tree_hash.eq_ignore_ascii_case(&self.tree_hash) {
            problems.push(format!(
                "tree hash of the bytes read back is {}, the archive was recorded with {}",
                read.tree_hash, self.tree_hash
            ));
        }
        if !read.sha256.eq_ignore_ascii_case(&self.sha256) {
            problems.push(format!(
                "SHA-256 of the bytes read back is {}, the bundle's is {}",
                read.sha256, self.sha256
            ));
        }
        for claimed in &read.claims {
            if !claimed.eq_ignore_ascii_case(&read.tree_hash) {
                problems.push(format!(
                    "Glacier claims tree hash {claimed:.64} for the output, its bytes hash to {}",
                    read.tree_hash
                ));
            }
        }
        problems
    }

    /// The next record after reading back the output of the current retrieval: verified
    /// or mismatch.
    #[must_use]
    pub fn with_read_back(&self, read: &ReadBack, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        if let Some(r) = &mut next.retrieval {
            r.problems = self.check(read);
            r.status = if r.problems.is_empty() {
                RetrievalStatus::Verified
            } else {
                RetrievalStatus::Mismatch
            };
            r.completed_at = Some(now);
            r.retrieved_tree_hash = Some(read.tree_hash.clone());
            r.retrieved_bytes = Some(read.bytes);
            r.claimed_tree_hash = read.claims.first().cloned();
        }
        next
    }

    /// The next record when the current retrieval failed for `reason`.
    #[must_use]
    pub fn with_failed_retrieval(&self, reason: &str, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        if let Some(r) = &mut next.retrieval {
            r.status = RetrievalStatus::Failed;
            r.completed_at = Some(now);
            r.problems = vec![reason.chars().take(1000).collect()];
        }
        next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn archive() -> ArchiveRef {
        ArchiveRef {
            vault: "lifeboat-archive".into(),
            region: Region::parse("us-west-2").unwrap(),
            archive_id: "a1".into(),
            tree_hash: "ab".repeat(32),
            sha256: "cd".repeat(32),
            size: 10,
            parts: 1,
            archived_at: at("2026-11-23T18:00:00Z"),
            retrieval: Some(Retrieval::started(
                "j1",
                RetrievalTier::Standard,
                at("2026-11-24T00:00:00Z"),
            )),
        }
    }

    fn read(tree: &str, sha: &str, bytes: u64, claimed: Option<&str>) -> ReadBack {
        ReadBack {
            tree_hash: tree.into(),
            sha256: sha.into(),
            bytes,
            claims: claimed.into_iter().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn matching_bytes_verify_and_any_difference_is_a_mismatch() {
        let a = archive();
        let now = at("2026-11-24T04:00:00Z");
        let good = a.with_read_back(&read(&"AB".repeat(32), &"cd".repeat(32), 10, None), now);
        let r = good.retrieval.as_ref().unwrap();
        assert_eq!(
            (r.status, r.completed_at, r.problems.len()),
            (RetrievalStatus::Verified, Some(now), 0)
        );

        let claimed_ok = a.with_read_back(
            &read(&"ab".repeat(32), &"cd".repeat(32), 10, Some(&"ab".repeat(32))),
            now,
        );
        assert_eq!(claimed_ok.retrieval.unwrap().status, RetrievalStatus::Verified);

        for (bad, needle) in [
            (
                read(&"ee".repeat(32), &"cd".repeat(32), 10, None),
                "tree hash of the bytes",
            ),
            (read(&"ab".repeat(32), &"ee".repeat(32), 10, None), "SHA-256"),
            (read(&"ab".repeat(32), &"cd".repeat(32), 9, None), "9 bytes read back"),
            // The bytes are right but Glacier's claim is not: still a mismatch.
            (
                read(&"ab".repeat(32), &"cd".repeat(32), 10, Some(&"ff".repeat(32))),
                "Glacier claims",
            ),
        ] {
            let next = a.with_read_back(&bad, now);
            let r = next.retrieval.unwrap();
            assert_eq!(r.status, RetrievalStatus::Mismatch, "{needle}");
            assert!(
                r.problems.iter().any(|p| p.contains(needle)),
                "{needle}: {:?}",
                r.problems
            );
        }
    }

    #[test]
    fn a_retrieval_stays_current_while_running_and_a_day_after() {
        let a = archive();
        let r = a.retrieval.clone().unwrap();
        assert!(r.is_current(at("2026-12-30T00:00:00Z")), "in progress, however long");
        let failed = a.with_failed_retrieval("job failed", at("2026-11-24T05:00:00Z"));
        let r = failed.retrieval.unwrap();
        assert_eq!(
            (r.status, r.problems.clone()),
            (RetrievalStatus::Failed, vec!["job failed".to_owned()])
        );
        assert!(r.is_current(at("2026-11-25T04:59:00Z")));
        assert!(!r.is_current(at("2026-11-25T05:00:00Z")));
    }

    #[test]
    fn records_round_trip_and_tiers_are_spelled_as_glacier_does() {
        let a = archive();
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["retrieval"]["tier"], "Standard");
        assert_eq!(json["retrieval"]["status"], "in_progress");
        assert!(json["retrieval"].get("problems").is_none());
        assert_eq!(serde_json::from_value::<ArchiveRef>(json).unwrap(), a);
        assert_eq!(RetrievalTier::Bulk.to_string(), "Bulk");
    }
}
