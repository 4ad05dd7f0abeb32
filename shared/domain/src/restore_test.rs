//! Restore tests of database recovery points: the proof that a snapshot restores.
//!
//! By each policy's [`RestoreTestRule`], the newest restorable snapshot of every RDS
//! instance and Aurora cluster in each chosen location is restored into a throwaway
//! database (an Aurora cluster gets one writer instance), on an isolated network, never
//! publicly accessible, in the smallest class its engine allows. Once it is available, it
//! is compared with the snapshot (engine, version, storage, encryption key, tags) and
//! handed to the policy's validation Lambda; the verdict, the restore's duration and who
//! ran it are recorded on the recovery point ([`RestoreTest`]), which is verified when
//! every check passed. The throwaway database is then deleted without a final snapshot:
//! it is a copy of a copy.
//!
//! A test's state is written before each step it takes (write-ahead), so a crash leaves a
//! record that the next run continues from: a test database left behind is always named
//! by a record in [`Phase::Restoring`] or [`Phase::TearingDown`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dr::plan::RestoreSettings;
use super::{RecoveryPoint, Region, ResourceKind};

/// Every test database's name starts with this.
pub const TARGET_PREFIX: &str = "lbrt-";
/// The tag naming the recovery point a test database was restored from.
pub const TAG_RESTORE_TEST: &str = "lifeboat:restore-test";
/// How often each database is tested when the policy does not say.
pub const DEFAULT_EVERY: Duration = Duration::from_hours(7 * 24);
/// The names of the validation functions restore tests may invoke (the template grants
/// `lambda:InvokeFunction` on these only).
pub const VALIDATION_PREFIX: &str = "lifeboat-restore-validate-";
/// RDS bills an instance for at least ten minutes.
pub const MIN_BILLED: Duration = Duration::from_mins(10);

/// Which copies of a database a policy's restore tests cover.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// The database's own region.
    Source,
    /// Every region the policy copies to.
    Copies,
    /// One region.
    Region(Region),
}

/// A policy's restore tests of its databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreTestRule {
    pub enabled: bool,
    /// Each database and location is tested this often.
    pub every: Duration,
    pub locations: Vec<Location>,
    /// The test database's instance class (default: the smallest the engine allows).
    pub class: Option<String>,
    /// Per region: the isolated subnet group and the security groups (no ingress) test
    /// databases are placed in. A region not named here uses the deployment's default.
    pub networks: BTreeMap<Region, RestoreSettings>,
    /// Given the test database's endpoint once it is available: SQL checks, row counts.
    /// Answers `{"ok": false, "reason": "..."}` to fail the test.
    pub validation_lambda: Option<String>,
}

impl Default for RestoreTestRule {
    fn default() -> Self {
        Self {
            enabled: true,
            every: DEFAULT_EVERY,
            locations: vec![Location::Source, Location::Copies],
            class: None,
            networks: BTreeMap::new(),
            validation_lambda: None,
        }
    }
}

/// The written form of a [`RestoreTestRule`]: `{"every": "7days", "locations": ["source",
/// "copies"], "class": "db.t4g.micro", "networks": {"us-east-1": {"subnet_group": "...",
/// "security_groups": ["sg-..."]}}, "validation_lambda": "arn:aws:lambda:..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreTestDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// `source`, `copies` or region names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, RestoreSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_lambda: Option<String>,
}

impl RestoreTestRule {
    /// The rule a document describes; every problem is added to `problems`.
    pub fn from_document(doc: &RestoreTestDocument, problems: &mut Vec<String>) -> Option<Self> {
        let before = problems.len();
        let mut rule = Self {
            enabled: doc.enabled.unwrap_or(true),
            ..Self::default()
        };
        if let Some(every) = &doc.every {
            match humantime::parse_duration(every) {
                Ok(d) if d >= Duration::from_hours(1) && d <= Duration::from_hours(366 * 24) => rule.every = d,
                Ok(d) => problems.push(format!(
                    "restore_tests.every: {} is outside 1 hour to 366 days",
                    humantime::format_duration(d)
                )),
                Err(e) => problems.push(format!(
                    "restore_tests.every: {:?} is not a duration like 7days ({e})",
                    every.chars().take(40).collect::<String>()
                )),
            }
        }
        if !doc.locations.is_empty() {
            rule.locations = doc
                .locations
                .iter()
                .filter_map(|l| match l.as_str() {
                    "source" => Some(Location::Source),
                    "copies" => Some(Location::Copies),
                    other => {
                        let region = Region::parse(other).ok().map(Location::Region);
                        if region.is_none() {
                            problems.push(format!(
                                "restore_tests.locations: {:?} is not \"source\", \"copies\" or a region",
                                other.chars().take(40).collect::<String>()
                            ));
                        }
                        region
                    }
                })
                .collect();
        }
        if let Some(class) = &doc.class {
            if class.starts_with("db.")
                && class.len() <= 40
                && class.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
            {
                rule.class = Some(class.clone());
            } else {
                problems.push(format!(
                    "restore_tests.class: {class:.40?} is not a DB instance class like db.t4g.micro"
                ));
            }
        }
        for (region, settings) in &doc.networks {
            match Region::parse(region) {
                Ok(r) => {
                    if settings.subnet_group.is_none() || settings.security_groups.is_empty() {
                        problems.push(format!(
                            "restore_tests.networks.{r}: name an isolated subnet_group and at least one security group with no ingress"
                        ));
                    }
                    rule.networks.insert(r, settings.clone());
                }
                Err(e) => problems.push(format!("restore_tests.networks: {e}")),
            }
        }
        if let Some(arn) = &doc.validation_lambda {
            let name = arn.split(':').nth(6).unwrap_or_default();
            if !(arn.starts_with("arn:") && arn.split(':').nth(2) == Some("lambda")) {
                problems.push(format!(
                    "restore_tests.validation_lambda: {arn:.80?} is not a Lambda function ARN"
                ));
            } else if !name.starts_with(VALIDATION_PREFIX) {
                problems.push(format!(
                    "restore_tests.validation_lambda: {name:.64?} must be named {VALIDATION_PREFIX}…, the only functions test-restores may invoke"
                ));
            } else {
                rule.validation_lambda = Some(arn.clone());
            }
        }
        (problems.len() == before).then_some(rule)
    }

    /// The document form (`None` for the default rule).
    pub fn to_document(&self) -> Option<RestoreTestDocument> {
        (*self != Self::default()).then(|| RestoreTestDocument {
            enabled: (!self.enabled).then_some(false),
            every: (self.every != DEFAULT_EVERY).then(|| humantime::format_duration(self.every).to_string()),
            locations: self
                .locations
                .iter()
                .map(|l| match l {
                    Location::Source => "source".to_owned(),
                    Location::Copies => "copies".to_owned(),
                    Location::Region(r) => r.to_string(),
                })
                .collect(),
            class: self.class.clone(),
            networks: self.networks.iter().map(|(r, s)| (r.to_string(), s.clone())).collect(),
            validation_lambda: self.validation_lambda.clone(),
        })
    }

    /// True when copies of a resource of `home` held in `location` are tested (`copies`:
    /// every region but the home one).
    pub fn covers(&self, home: &Region, location: &Region) -> bool {
        self.locations.iter().any(|l| match l {
            Location::Source => location == home,
            Location::Copies => location != home,
            Location::Region(r) => r == location,
        })
    }
}

/// The kinds restore tests are for.
pub fn is_tested(kind: ResourceKind) -> bool {
    matches!(kind, ResourceKind::RdsInstance | ResourceKind::AuroraCluster)
}

/// The smallest instance class an engine runs on: what a test database gets unless the
/// policy names one. (Aurora needs a burstable medium; SQL Server and Oracle a small.)
pub fn smallest_class(engine: &str) -> &'static str {
    if engine.starts_with("aurora") {
        "db.t4g.medium"
    } else if engine.starts_with("sqlserver") || engine.starts_with("oracle") || engine.starts_with("custom-") {
        "db.t3.small"
    } else {
        "db.t4g.micro"
    }
}

/// Where a restore test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The test database is being restored (and, for Aurora, its writer created).
    Restoring,
    /// Judged; the test database is being deleted.
    TearingDown,
    /// The test database is gone.
    Done,
}

/// One restore test of a recovery point, and its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreTest {
    /// The throwaway database (an Aurora cluster's writer is `<target>-w`).
    pub target: String,
    pub phase: Phase,
    pub started_at: DateTime<Utc>,
    /// The run that started it (the function and its request id).
    pub by: String,
    /// When the test database (with its writer) was available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// Checks that passed, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Checks that failed (empty when the test passed), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// When the test database was gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl RestoreTest {
    /// A test of `point` started at `now` by `by`; its database's name is derived from
    /// the point and the start, so a retest never meets a name RDS still holds.
    pub fn start(point: &RecoveryPoint, by: &str, now: DateTime<Utc>) -> Self {
        Self {
            target: target_name(point, now),
            phase: Phase::Restoring,
            started_at: now,
            by: by.to_owned(),
            ready_at: None,
            checks: Vec::new(),
            problems: Vec::new(),
            finished_at: None,
        }
    }

    /// The writer instance of an Aurora test cluster.
    pub fn writer(&self) -> String {
        format!("{}-w", self.target)
    }

    /// What the point's `in_use_by` hold says while this test reads it.
    pub fn hold(&self) -> String {
        format!("restore test {}", self.target)
    }

    pub fn in_flight(&self) -> bool {
        self.phase != Phase::Done
    }

    /// Judged, and every check passed.
    pub fn passed(&self) -> bool {
        self.ready_at.is_some() && self.phase != Phase::Restoring && self.problems.is_empty()
    }

    /// From the restore request to a database one can connect to: the RTO evidence.
    pub fn restore_secs(&self) -> Option<u64> {
        self.ready_at
            .and_then(|r| (r - self.started_at).to_std().ok())
            .map(|d| d.as_secs())
    }

    /// The instance time this test costs (billed at least [`MIN_BILLED`]), to `now` while
    /// it runs.
    pub fn instance_secs(&self, now: DateTime<Utc>) -> u64 {
        let end = self.finished_at.unwrap_or(now);
        let took = (end - self.started_at).to_std().unwrap_or_default();
        took.max(MIN_BILLED).as_secs()
    }
}

/// `lbrt-` and 16 hex digits of the point and the start: unique, deterministic, a valid
/// RDS identifier of 21 characters (a writer's `-w` makes 23).
pub fn target_name(point: &RecoveryPoint, started_at: DateTime<Utc>) -> String {
    let digest = Sha256::digest(format!("{}@{}", point.id, started_at.timestamp()).as_bytes());
    let hex: String = digest.iter().take(8).fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    });
    format!("{TARGET_PREFIX}{hex}")
}

/// What is compared between a snapshot and the database restored from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub storage_gb: Option<i32>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    /// `(key, value)`, the snapshot's own tags (Lifeboat's `lifeboat:` tags excluded).
    pub tags: Vec<(String, String)>,
}

/// The key's id, from an id or an ARN (`arn:aws:kms:…:key/<id>`), for comparing the two
/// forms RDS reports.
fn key_id(k: &str) -> &str {
    k.rsplit_once("key/").map_or(k, |(_, id)| id)
}

/// One fact compared: the snapshot's (if it names one) against the restored database's.
fn same(what: &str, snapshot: Option<&str>, restored: Option<&str>, ok: &mut Vec<String>, bad: &mut Vec<String>) {
    match (snapshot, restored) {
        (Some(a), Some(b)) if a == b => ok.push(format!("{what} {a} as in the snapshot")),
        (Some(a), Some(b)) => bad.push(format!("{what} is {b}, the snapshot's is {a}")),
        (Some(a), None) => bad.push(format!(
            "{what}: the snapshot's is {a}, the restored database reports none"
        )),
        (None, _) => {}
    }
}

/// Compares the restored database with its snapshot: lines that passed, and problems.
pub fn compare(snapshot: &Facts, restored: &Facts) -> (Vec<String>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    same(
        "engine",
        snapshot.engine.as_deref(),
        restored.engine.as_deref(),
        &mut ok,
        &mut bad,
    );
    same(
        "engine version",
        snapshot.engine_version.as_deref(),
        restored.engine_version.as_deref(),
        &mut ok,
        &mut bad,
    );
    match (snapshot.storage_gb, restored.storage_gb) {
        (Some(a), Some(b)) if b >= a => ok.push(format!("storage {b} GiB (the snapshot's {a} GiB)")),
        (Some(a), Some(b)) => bad.push(format!("storage {b} GiB is less than the snapshot's {a} GiB")),
        _ => {}
    }
    match (snapshot.encrypted, restored.encrypted) {
        (Some(true), Some(false)) => bad.push("the snapshot is encrypted, the restored database is not".into()),
        (Some(a), Some(b)) if a == b => ok.push(if a {
            "encrypted, as the snapshot".into()
        } else {
            "not encrypted, as the snapshot".into()
        }),
        _ => {}
    }
    same(
        "encryption key",
        snapshot.kms_key_id.as_deref().map(key_id),
        restored.kms_key_id.as_deref().map(key_id),
        &mut ok,
        &mut bad,
    );
    let missing: Vec<String> = snapshot
        .tags
        .iter()
        .filter(|t| !restored.tags.contains(t))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if missing.is_empty() {
        if !snapshot.tags.is_empty() {
            ok.push(format!("{} tag(s) of the snapshot carried over", snapshot.tags.len()));
        }
    } else {
        bad.push(format!("tags of the snapshot missing: {}", missing.join(", ")));
    }
    (ok, bad)
}

/// The recovery points due a restore test now, newest first per (resource, location):
/// for each database and location the rule covers, the newest restorable point, when no
/// test of that database there is in flight and none started within `every`.
pub fn due<'a>(points: &'a [RecoveryPoint], rule: &RestoreTestRule, now: DateTime<Utc>) -> Vec<&'a RecoveryPoint> {
    if !rule.enabled {
        return Vec::new();
    }
    let mut groups: BTreeMap<(&str, &Region), Vec<&RecoveryPoint>> = BTreeMap::new();
    for p in points.iter().filter(|p| is_tested(p.resource.kind)) {
        if rule.covers(&p.resource.region, &p.location) {
            groups
                .entry((p.resource.arn.as_str(), &p.location))
                .or_default()
                .push(p);
        }
    }
    let recent = |t: &RestoreTest| {
        t.in_flight() || (now - t.started_at).to_std().is_ok_and(|age| age < rule.every) || t.started_at > now
    };
    groups
        .into_values()
        .filter(|g| !g.iter().any(|p| p.restore_test().is_some_and(recent)))
        .filter_map(|g| {
            g.into_iter()
                .filter(|p| p.is_restorable() && p.created_at <= now)
                .max_by_key(|p| (p.created_at, p.id.clone()))
        })
        .collect()
}

/// The instance time restore tests used in the 24 hours before `now`.
pub fn used_today(points: &[RecoveryPoint], now: DateTime<Utc>) -> Duration {
    let since = now - chrono::Duration::hours(24);
    Duration::from_secs(
        points
            .iter()
            .filter_map(|p| p.restore_test())
            .filter(|t| t.started_at > since || t.in_flight())
            .map(|t| t.instance_secs(now))
            .sum(),
    )
}

#[cfg(test)]
mod tests;
