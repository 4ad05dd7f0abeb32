//! Storage tiers of S3 backup copies.
//!
//! A policy's `tiers` say which S3 storage class a run's copies move to as the run ages
//! (e.g. 30 days → `GLACIER_IR`, 120 days → `GLACIER`, 300 days → `DEEP_ARCHIVE`). This
//! module holds the pure parts:
//!
//! - [`TierSchedule`]: the schedule, validated against AWS's lifecycle rules and the
//!   minimum storage duration of each class (leaving a class early is billed as if the
//!   object had stayed), every problem listed.
//! - [`LifecycleRule`]: the backup bucket's lifecycle rules built from it, so that on AWS
//!   the transitions also happen in place, daily, without Lifeboat.
//! - [`due_move`]: whether a run's copies are due an explicit move (by the run's age), or
//!   why not yet. An explicit move is a `CopyObject` onto the same key with the new class.
//!   In a versioned bucket that makes a new version, so a move waits while the old
//!   version is locked or held (it could not be deleted, and would stay billed).
//! - [`MoveSet`]: which copies of a run move (objects under [`MIN_TRANSITION_BYTES`] stay,
//!   as S3 lifecycle leaves them by default) and the monthly cost before and after.
//! - [`Ledger`]: where each moved copy now is (version and class), stored beside the
//!   manifests; manifests stay immutable and readers resolve copies through the ledger.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Write as _};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cost::{DAYS_PER_MONTH, GIB, PriceBook, StorageTier, Stored, monthly_cost, storage_units};
use super::manifest::{Manifest, ManifestEntry, ManifestError, area};
use super::{PolicyName, RecoveryPoint, Region};

/// Objects smaller than this stay where they are: S3 lifecycle does not transition them by
/// default, and the per-object minimums and overheads make moving them cost more.
pub const MIN_TRANSITION_BYTES: u64 = 128 * 1024;
/// The most steps a schedule may have (one per colder class).
pub const MAX_STEPS: usize = 4;
/// Lifecycle rules Lifeboat owns carry ids starting with this; others are left alone.
pub const RULE_ID_PREFIX: &str = "lifeboat-tiers ";
const LEDGER_FORMAT: &str = "lifeboat-tier-ledger/1";
const ZSTD_LEVEL: i32 = 9;
const DAY_SECS: i64 = 86_400;

/// The S3 storage classes backup copies live in, warmest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum S3Class {
    #[serde(rename = "STANDARD")]
    Standard,
    #[serde(rename = "STANDARD_IA")]
    StandardIa,
    #[serde(rename = "GLACIER_IR")]
    GlacierIr,
    #[serde(rename = "GLACIER")]
    Glacier,
    #[serde(rename = "DEEP_ARCHIVE")]
    DeepArchive,
}

impl S3Class {
    pub const ALL: [Self; 5] = [
        Self::Standard,
        Self::StandardIa,
        Self::GlacierIr,
        Self::Glacier,
        Self::DeepArchive,
    ];

    /// The name S3's API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::StandardIa => "STANDARD_IA",
            Self::GlacierIr => "GLACIER_IR",
            Self::Glacier => "GLACIER",
            Self::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    /// Parses S3's name (any case). S3 reports no class for STANDARD objects: pass "".
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() {
            return Some(Self::Standard);
        }
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// Where its bytes are billed.
    pub fn tier(self) -> StorageTier {
        match self {
            Self::Standard => StorageTier::S3Standard,
            Self::StandardIa => StorageTier::S3StandardIa,
            Self::GlacierIr => StorageTier::S3GlacierInstant,
            Self::Glacier => StorageTier::S3GlacierFlexible,
            Self::DeepArchive => StorageTier::S3GlacierDeepArchive,
        }
    }

    /// Leaving the class sooner is billed as if the object had stayed this long.
    pub fn min_storage_days(self) -> u32 {
        self.tier().rules().min_storage_days
    }

    /// Reading needs a restore first (Glacier Flexible Retrieval, Deep Archive).
    pub fn archived(self) -> bool {
        matches!(self, Self::Glacier | Self::DeepArchive)
    }
}

impl fmt::Display for S3Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a schedule as written: `{"after": "30d", "class": "GLACIER_IR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierStepDocument {
    pub after: String,
    pub class: String,
}

/// Copies of a run move to `class` once the run is `after_days` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierStep {
    pub after_days: u32,
    pub class: S3Class,
}

/// A validated tier schedule: steps in increasing age, each class colder than the last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSchedule(Vec<TierStep>);

impl TierSchedule {
    /// Validates the steps, listing every problem (prefixed `tiers`).
    pub fn from_documents(docs: &[TierStepDocument]) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        if docs.len() > MAX_STEPS {
            problems.push(format!("tiers: {} steps, at most {MAX_STEPS}", docs.len()));
        }
        let mut steps = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let days = match humantime::parse_duration(&d.after) {
                Ok(t) if t.as_secs() % 86_400 == 0 && t.as_secs() > 0 => u32::try_from(t.as_secs() / 86_400).ok(),
                Ok(_) => {
                    problems.push(format!(
                        "tiers[{i}].after: {:.20?} must be a whole number of days, at least 1d",
                        d.after
                    ));
                    None
                }
                Err(e) => {
                    problems.push(format!(
                        "tiers[{i}].after: {:.20?} is not a duration like 30d ({e})",
                        d.after
                    ));
                    None
                }
            };
            let class = match S3Class::parse(&d.class) {
                _ if d.class.is_empty() => {
                    problems.push(format!("tiers[{i}].class: missing"));
                    None
                }
                Some(S3Class::Standard) => {
                    problems.push(format!(
                        "tiers[{i}].class: copies start in STANDARD; name a colder class"
                    ));
                    None
                }
                Some(c) => Some(c),
                None => {
                    problems.push(format!(
                        "tiers[{i}].class: {:.20?} is not one of STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE",
                        d.class
                    ));
                    None
                }
            };
            if let (Some(after_days), Some(class)) = (days, class) {
                steps.push(TierStep { after_days, class });
            }
        }
        if let Some(ia) = steps
            .iter()
            .find(|s| s.class == S3Class::StandardIa && s.after_days < 30)
        {
            problems.push(format!(
                "tiers: STANDARD_IA after {} days; S3 moves objects to STANDARD_IA only after 30 days",
                ia.after_days
            ));
        }
        for pair in steps.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.after_days <= a.after_days {
                problems.push(format!(
                    "tiers: {} after {}d does not come after {} at {}d; list steps by increasing age",
                    b.class, b.after_days, a.class, a.after_days
                ));
            } else if b.class <= a.class {
                problems.push(format!(
                    "tiers: {} is not colder than {} before it; each step must move to a colder class",
                    b.class, a.class
                ));
            } else if b.after_days - a.after_days < a.class.min_storage_days() {
                problems.push(format!(
                    "tiers: {} from day {} to day {} is {} days, under its {}-day minimum storage duration \
                     (billed as {}): move to {} at day {} or later",
                    a.class,
                    a.after_days,
                    b.after_days,
                    b.after_days - a.after_days,
                    a.class.min_storage_days(),
                    a.class.min_storage_days(),
                    b.class,
                    a.after_days + a.class.min_storage_days()
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self(steps))
        } else {
            Err(problems)
        }
    }

    pub fn to_documents(&self) -> Vec<TierStepDocument> {
        self.0
            .iter()
            .map(|s| TierStepDocument {
                after: format!("{}d", s.after_days),
                class: s.class.as_str().to_owned(),
            })
            .collect()
    }

    pub fn steps(&self) -> &[TierStep] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The class copies of a run this old belong in (`None`: not yet moved anywhere).
    pub fn target(&self, age: chrono::Duration) -> Option<TierStep> {
        let days = age.num_seconds().div_euclid(DAY_SECS);
        self.0.iter().rev().find(|s| i64::from(s.after_days) <= days).copied()
    }
}

/// One lifecycle rule of the backup bucket: objects under `prefix` larger than
/// `larger_than` bytes transition to each class after its days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    pub larger_than: u64,
    pub transitions: Vec<TierStep>,
}

/// The rules for the copies of `bucket`/`prefix` (its `data/` and `hashed/` areas; the
/// manifests and checkpoints beside them stay in STANDARD, always readable).
pub fn lifecycle_rules(bucket: &str, prefix: &str, schedule: &TierSchedule) -> Vec<LifecycleRule> {
    if schedule.is_empty() {
        return Vec::new();
    }
    let area = area(bucket, prefix);
    ["data", "hashed"]
        .into_iter()
        .map(|dir| {
            let prefix = format!("{area}/{dir}/");
            LifecycleRule {
                // S3 allows 255 characters; the area is at most ~120.
                id: format!("{RULE_ID_PREFIX}{prefix}").chars().take(255).collect(),
                prefix,
                larger_than: MIN_TRANSITION_BYTES - 1,
                transitions: schedule.steps().to_vec(),
            }
        })
        .collect()
}

/// Where a run's copies are now (recorded on its catalog record once they have moved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRecord {
    /// The class of the run's moved copies.
    pub class: S3Class,
    pub moved_at: DateTime<Utc>,
    /// The ledger in the backup bucket, and its SHA-256 (checked on every read).
    pub ledger_key: String,
    pub ledger_sha256: String,
    /// Copies moved, and their bytes.
    pub objects: u64,
    pub bytes: u64,
    /// Copies under [`MIN_TRANSITION_BYTES`], left in their class.
    pub small_kept: u64,
    /// Superseded versions not deleted yet (retried by the next move run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub superseded_pending: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a run's copies are not moved now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierWait {
    pub run: String,
    pub target: S3Class,
    pub reason: String,
}

/// A run's copies due a move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueMove {
    pub run: String,
    pub from: S3Class,
    pub to: S3Class,
    pub reason: String,
}

/// Whether the copies of run `rp` (an S3 backup run) are due a move under `schedule`, at
/// `now`; `base` is the class copies are written in. `Ok(None)`: already where they belong.
pub fn due_move(
    rp: &RecoveryPoint,
    schedule: &TierSchedule,
    base: S3Class,
    now: DateTime<Utc>,
) -> Result<Option<DueMove>, TierWait> {
    let age = now - rp.created_at;
    let Some(step) = schedule.target(age) else {
        return Ok(None);
    };
    let (current, since) = rp
        .tiering()
        .as_ref()
        .map_or((base, rp.created_at), |t| (t.class, t.moved_at));
    if step.class <= current {
        return Ok(None);
    }
    let run = rp.snapshot_name.clone();
    let wait = |reason: String| TierWait {
        run: run.clone(),
        target: step.class,
        reason,
    };
    if current.archived() {
        return Err(wait(format!(
            "copies in {current} move to {} through the bucket's lifecycle rule (a copy would need a restore first)",
            step.class
        )));
    }
    let min_until = since + chrono::Duration::days(i64::from(current.min_storage_days()));
    if now < min_until {
        return Err(wait(format!(
            "in {current} since {}: its {}-day minimum storage duration runs until {}",
            since.format("%Y-%m-%d"),
            current.min_storage_days(),
            min_until.format("%Y-%m-%d")
        )));
    }
    if let Some(until) = rp.holds.locked_until.filter(|u| *u > now) {
        return Err(wait(format!(
            "copies are locked until {}: a copy into {} would leave the locked {current} version billed \
             until then (the bucket's lifecycle rule moves them in place)",
            until.format("%Y-%m-%d"),
            step.class
        )));
    }
    if rp.holds.legal_hold {
        return Err(wait(format!(
            "copies are under legal hold: the {current} versions could not be deleted after a copy \
             (the bucket's lifecycle rule moves them in place)"
        )));
    }
    Ok(Some(DueMove {
        run: run.clone(),
        from: current,
        to: step.class,
        reason: format!(
            "run is {} days old; policy {} moves copies to {} after {} days",
            age.num_days(),
            rp.policy,
            step.class,
            step.after_days
        ),
    }))
}

/// The runs whose copies are due a move, and those that wait (with their reasons).
#[derive(Debug, Clone, Default)]
pub struct TierPlan<'a> {
    pub moves: Vec<(&'a RecoveryPoint, DueMove)>,
    pub waiting: Vec<TierWait>,
}

impl TierPlan<'_> {
    /// One line per move and per wait.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (rp, m) in &self.moves {
            let _ = writeln!(out, "  tier   {} {} → {}: {}", rp.id, m.from, m.to, m.reason);
        }
        for w in &self.waiting {
            let _ = writeln!(out, "  wait   {} → {}: {}", w.run, w.target, w.reason);
        }
        out
    }
}

/// [`due_move`] for every run (S3 backup runs, oldest first) whose policy has a schedule;
/// `base` is the class copies are written in.
pub fn plan_moves<'a>(
    runs: &'a [RecoveryPoint],
    schedules: &BTreeMap<PolicyName, TierSchedule>,
    base: S3Class,
    now: DateTime<Utc>,
) -> TierPlan<'a> {
    let mut plan = TierPlan::default();
    for rp in runs {
        let Some(schedule) = schedules.get(&rp.policy) else {
            continue;
        };
        match due_move(rp, schedule, base, now) {
            Ok(Some(m)) => plan.moves.push((rp, m)),
            Ok(None) => {}
            Err(wait) => plan.waiting.push(wait),
        }
    }
    plan
}

/// The monthly cost of some copies in one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CostEffect {
    pub before_micro_usd: u64,
    pub after_micro_usd: u64,
    /// One-time: the copy requests (priced per 1,000) of the move.
    pub requests_micro_usd: u64,
}

/// USD per 1,000 PUT/COPY requests by destination class, in micro-dollars (us-east-1).
fn copy_request_price_per_1000(class: S3Class) -> u64 {
    match class {
        S3Class::Standard => 5_000,
        S3Class::StandardIa => 10_000,
        S3Class::GlacierIr => 20_000,
        S3Class::Glacier => 30_000,
        S3Class::DeepArchive => 50_000,
    }
}

/// How long a copy is expected to stay in the backup bucket from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Horizon {
    /// No end in sight: the copy is still the current backup of its object.
    Unbounded,
    /// About this many days more.
    Days(u32),
}

/// Whether moving one copy of `bytes` from `from` to `to` costs less than leaving it where
/// it is, over `horizon`. The move pays its copy request and the target's storage for the
/// horizon but at least the target's minimum storage duration; leaving it pays `from`'s
/// storage for the horizon (its own minimum has passed: [`due_move`] waits for it). An
/// unbounded copy moves when a month in `to` costs less than a month in `from`: the
/// one-time request is repaid in time. Missing prices never hold a move back.
pub fn move_pays_off(
    bytes: u64,
    from: S3Class,
    to: S3Class,
    horizon: Horizon,
    region: &Region,
    prices: &PriceBook,
) -> bool {
    let (Some(p_from), Some(p_to), Some(standard)) = (
        prices.price(region, from.tier()),
        prices.price(region, to.tier()),
        prices.price(region, StorageTier::S3Standard),
    ) else {
        return true;
    };
    match horizon {
        Horizon::Unbounded => {
            storage_units(to.tier(), bytes, 1, DAYS_PER_MONTH, false, p_to, standard)
                < storage_units(from.tier(), bytes, 1, DAYS_PER_MONTH, false, p_from, standard)
        }
        Horizon::Days(days) => {
            // Both sides times 1,000: the request is priced per 1,000.
            let keep = storage_units(from.tier(), bytes, 1, days, false, p_from, standard).saturating_mul(1000);
            let request = u128::from(copy_request_price_per_1000(to))
                .saturating_mul(u128::from(GIB) * u128::from(DAYS_PER_MONTH));
            let moved = storage_units(to.tier(), bytes, 1, days, true, p_to, standard)
                .saturating_mul(1000)
                .saturating_add(request);
            moved < keep
        }
    }
}

/// The copies of one run that move: those made by the run itself (an unchanged object
/// keeps an earlier run's copy, moved with that run) of at least [`MIN_TRANSITION_BYTES`],
/// whose move pays off within their expected stay ([`move_pays_off`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MoveSet {
    #[serde(skip)]
    pub entries: Vec<ManifestEntry>,
    pub objects: u64,
    pub bytes: u64,
    pub small_kept: u64,
    /// Copies left where they are because moving them would cost more than it saves
    /// before they are expected to go.
    #[serde(skip_serializing_if = "is_zero")]
    pub uneconomic_kept: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub uneconomic_bytes: u64,
    pub cost: CostEffect,
}

impl MoveSet {
    /// `manifest` is the run's own manifest (its copies are all listed in it); `horizon`
    /// says how long each copy is expected to stay.
    pub fn of(
        manifest: &Manifest,
        from: S3Class,
        to: S3Class,
        region: &Region,
        prices: &PriceBook,
        horizon: &dyn Fn(&ManifestEntry) -> Horizon,
    ) -> Self {
        let run = &manifest.header.run;
        let mut set = Self::default();
        for e in manifest.live().filter(|e| &e.copied_in == run) {
            if e.size < MIN_TRANSITION_BYTES {
                set.small_kept += 1;
            } else if !move_pays_off(e.size, from, to, horizon(e), region, prices) {
                set.uneconomic_kept += 1;
                set.uneconomic_bytes += e.size;
            } else {
                set.objects += 1;
                set.bytes += e.size;
                set.entries.push(e.clone());
            }
        }
        let cost_in = |class: S3Class| {
            let item = Stored {
                region: region.clone(),
                tier: class.tier(),
                bytes: set.bytes,
                objects: set.objects,
                stored_days: 0,
                expires_in_days: None,
            };
            let standard = prices.price(region, StorageTier::S3Standard).unwrap_or(0);
            prices
                .price(region, class.tier())
                .map_or(0, |p| monthly_cost(&item, p, standard).total_micro_usd)
        };
        set.cost = CostEffect {
            before_micro_usd: cost_in(from),
            after_micro_usd: cost_in(to),
            requests_micro_usd: set
                .objects
                .saturating_mul(copy_request_price_per_1000(to))
                .div_ceil(1000),
        };
        set
    }
}

/// Where one moved copy is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub backup_key: String,
    /// The version the manifests name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_version: Option<String>,
    /// The version holding the bytes now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub class: S3Class,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LedgerHeader {
    format: String,
    run: String,
    class: S3Class,
    moved_at: DateTime<Utc>,
    objects: u64,
}

/// Every moved copy of one run, from the version the manifests name to the current one.
/// Each move writes a complete ledger, so readers need only the newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub run: String,
    pub class: S3Class,
    pub moved_at: DateTime<Utc>,
    pub entries: Vec<LedgerEntry>,
}

/// The ledger key of a run's move into `class`.
pub fn ledger_key(bucket: &str, prefix: &str, run: &str, class: S3Class) -> String {
    format!("{}/tiers/{run}.{}.jsonl.zst", area(bucket, prefix), class.as_str())
}

impl Ledger {
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        let header = LedgerHeader {
            format: LEDGER_FORMAT.into(),
            run: self.run.clone(),
            class: self.class,
            moved_at: self.moved_at,
            objects: self.entries.len() as u64,
        };
        let mut raw = json_line(&header)?;
        for e in &self.entries {
            raw.extend(json_line(e)?);
        }
        let mut enc =
            zstd::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(|e| ManifestError::Compression(e.to_string()))?;
        enc.write_all(&raw)
            .map_err(|e| ManifestError::Compression(e.to_string()))?;
        enc.finish().map_err(|e| ManifestError::Compression(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let dec = zstd::Decoder::new(bytes).map_err(|e| ManifestError::Compression(e.to_string()))?;
        let mut lines = BufReader::new(dec).lines();
        let bad = |line: usize, reason: String| ManifestError::Line { line, reason };
        let first = lines
            .next()
            .ok_or(ManifestError::NoHeader)?
            .map_err(|e| ManifestError::Compression(e.to_string()))?;
        let header: LedgerHeader = serde_json::from_str(&first).map_err(|e| bad(1, e.to_string()))?;
        if header.format != LEDGER_FORMAT {
            return Err(ManifestError::Format(header.format));
        }
        let mut entries = Vec::new();
        for (n, line) in lines.enumerate() {
            let line = line.map_err(|e| ManifestError::Compression(e.to_string()))?;
            entries.push(serde_json::from_str(&line).map_err(|e| bad(n + 2, e.to_string()))?);
        }
        if entries.len() as u64 != header.objects {
            return Err(bad(
                entries.len() + 1,
                format!("{} copies listed, the header says {}", entries.len(), header.objects),
            ));
        }
        Ok(Self {
            run: header.run,
            class: header.class,
            moved_at: header.moved_at,
            entries,
        })
    }

    /// Points `entries` copied in this ledger's run at their current version and class.
    /// Returns how many were redirected.
    pub fn apply(&self, entries: &mut [ManifestEntry]) -> usize {
        let by: HashMap<(&str, Option<&str>), &LedgerEntry> = self
            .entries
            .iter()
            .map(|l| ((l.backup_key.as_str(), l.original_version.as_deref()), l))
            .collect();
        let mut n = 0;
        for e in entries.iter_mut().filter(|e| e.copied_in == self.run) {
            let hit = by
                .get(&(e.backup_key.as_str(), e.backup_version_id.as_deref()))
                .map(|l| (l.version.clone(), l.class));
            if let Some((version, class)) = hit {
                e.backup_version_id = version;
                class.as_str().clone_into(&mut e.storage_class);
                n += 1;
            }
        }
        n
    }
}

fn json_line<T: Serialize>(v: &T) -> Result<Vec<u8>, ManifestError> {
    let mut line = serde_json::to_vec(v).map_err(|e| ManifestError::Format(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests;
