//! `send-digest`: once a day, one SNS message that summarises the state of protection:
//! RPO compliance per location (met by a verified point, unverified, breached), 3-2-1 gaps
//! per resource, backups and failures of the last 24 hours, and storage with its estimated
//! monthly cost per region and tier.
//!
//! The digest is judged at the tick's *scheduled* time and named by its day (in
//! `DIGEST_TIMEZONE`), and is sent through the alert markers: a replayed or retried tick of
//! the same day sends nothing more, and a failed publish leaves the day unsent for the retry.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::app::{Ports, RunLog, gather_plan_input, load_policies};
use lifeboat::config::Config;
use lifeboat::events::ScheduleTick;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::StdoutSink;
use lifeboat::reports::{
    ComplianceReport, ComplianceSummary, FailureItem, compliance_report, failures_since, recorded_sizes, storage_items,
};
use lifeboat_domain::compliance::RpoState;
use lifeboat_domain::cost::{CostEstimate, GIB, PriceBook, StorageTier, estimate, format_usd};
use lifeboat_domain::{Alert, AlertKind, Severity, Status};
use serde::Serialize;
use serde_json::Value;

pub const FUNCTION: &str = "send-digest";
/// Lines listed per section of the message at most (the rest is counted).
pub const MAX_LINES: usize = 20;

/// The digest's own settings.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// `STORAGE_PRICES` over the built-in list prices (see [`PriceBook::from_lookup`]).
    pub prices: PriceBook,
    /// `DIGEST_TIMEZONE` (IANA, default UTC): the zone that names the digest's day.
    pub timezone: Tz,
}

impl DigestConfig {
    /// Every problem is listed.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, lifeboat::config::ConfigError> {
        let mut problems = Vec::new();
        let prices = PriceBook::from_lookup(&get).unwrap_or_else(|p| {
            problems.extend(p);
            PriceBook::default()
        });
        let timezone = match get("DIGEST_TIMEZONE").filter(|s| !s.trim().is_empty()) {
            None => Tz::UTC,
            Some(raw) => raw.trim().parse::<Tz>().unwrap_or_else(|_| {
                problems.push(format!("DIGEST_TIMEZONE: {raw:.40?} is not an IANA time zone"));
                Tz::UTC
            }),
        };
        if problems.is_empty() {
            Ok(Self { prices, timezone })
        } else {
            Err(lifeboat::config::ConfigError::new("digest", problems))
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deps {
    pub ports: Ports,
    pub config: Config,
    pub digest: DigestConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub day: NaiveDate,
    /// False when this day's digest had already been sent.
    pub sent: bool,
    pub summary: String,
    pub compliance: ComplianceSummary,
    pub failures_24h: usize,
    pub storage: CostEstimate,
    pub unsized_points: usize,
}

/// send-digest as one invocation: a schedule tick in, a report out. It records no metrics.
#[derive(Debug)]
pub struct SendDigest;

impl Function for SendDigest {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = ScheduleTick;
    type Output = Report;

    fn now(deps: &Deps) -> chrono::DateTime<chrono::Utc> {
        deps.ports.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<ScheduleTick, FunctionError> {
        ScheduleTick::parse(payload, deps.ports.clock.now(), deps.config.event_time)
    }

    async fn run(deps: &Deps, tick: ScheduleTick, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        run(deps, &tick, invocation.run_id()).await
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    invoke::<SendDigest>(deps, event, &StdoutSink).await
}

pub async fn run(deps: &Deps, tick: &ScheduleTick, run_id: &str) -> Result<Report, FunctionError> {
    let ports = &deps.ports;
    let alerter = ports.alerter();
    let now = ports.clock.now();
    let at = tick.scheduled_time;
    let day = at.with_timezone(&deps.digest.timezone).date_naive();
    let mut log = RunLog::start(FUNCTION, run_id, now);

    let policies = load_policies(ports.catalog.as_ref(), &alerter, run_id, now).await?;
    let (mut resources, points, _problems) = gather_plan_input(ports, &deps.config, &policies).await?;
    if let Some(p) = &tick.policy {
        resources.retain(|r| &r.policy == p);
    }
    let failed = ports.catalog.by_status(Status::Failed).await?;
    let compliance = compliance_report(&resources, &policies, &points, at, Duration::hours(24));
    let failures = failures_since(&failed, at - Duration::hours(24), at);
    let size_of = recorded_sizes(&points);
    let (items, unsized_points) = storage_items(&points, &size_of, at);
    let storage = estimate(&items, &deps.digest.prices);
    let stored = stored_by_tier(&points);

    let summary = summary_line(day, &compliance, failures.len(), &storage, unsized_points);
    let alert = Alert::new(AlertKind::Digest, Severity::Info, summary.clone(), day.to_string(), now)
        .detail("day", day.to_string())
        .detail("rpo", rpo_section(&compliance))
        .detail("three_two_one", three_two_one_section(&compliance))
        .detail("backups_24h", backups_section(&compliance.summary))
        .detail("failures_24h", failures_section(&failures))
        .detail("storage", storage_section(&stored, &storage, unsized_points));
    let sent = alerter.raise(alert, run_id).await?;
    log.action("digest", day.to_string(), if sent { "sent" } else { "already sent" });
    log.finish(ports.catalog.as_ref(), ports.clock.now()).await;
    Ok(Report {
        run_id: run_id.to_owned(),
        day,
        sent,
        summary,
        compliance: compliance.summary,
        failures_24h: failures.len(),
        storage,
        unsized_points,
    })
}

fn summary_line(
    day: NaiveDate,
    c: &ComplianceReport,
    failures: usize,
    storage: &CostEstimate,
    unsized_points: usize,
) -> String {
    let s = &c.summary;
    let cost = if storage.tiers.is_empty() && unsized_points > 0 {
        "cost not estimated (sizes not recorded)".to_owned()
    } else {
        format!("est. ${}/month", format_usd(storage.total_micro_usd))
    };
    format!(
        "Lifeboat digest {day}: RPO {} met, {} unverified, {} breached of {} locations; {} of {} resources fully 3-2-1; {failures} failure(s) in 24 h; {cost}",
        s.rpo_met, s.rpo_unverified, s.rpo_breached, s.locations, s.three_two_one_full, s.resources
    )
}

/// At most [`MAX_LINES`] lines, then how many more there were.
fn capped(lines: Vec<String>, none: &str) -> String {
    if lines.is_empty() {
        return none.to_owned();
    }
    let more = lines.len().saturating_sub(MAX_LINES);
    let mut out: Vec<String> = lines.into_iter().take(MAX_LINES).collect();
    if more > 0 {
        out.push(format!("… and {more} more"));
    }
    out.join("\n")
}

fn age(secs: Option<u64>) -> String {
    secs.map_or_else(
        || "none".to_owned(),
        |s| {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            format!("{h}h {m:02}m old")
        },
    )
}

fn rpo_section(c: &ComplianceReport) -> String {
    let mut lines = Vec::new();
    for r in &c.resources {
        for l in r.rpo.iter().filter(|l| l.state != RpoState::Met) {
            let state = match l.state {
                RpoState::Breached => "BREACHED",
                RpoState::Unverified | RpoState::Met => "unverified",
            };
            lines.push(format!(
                "{} in {}: {state} (newest {}, RPO {}h {:02}m)",
                r.resource_id,
                l.location,
                age(l.age_secs),
                l.target_secs / 3600,
                (l.target_secs % 3600) / 60
            ));
        }
    }
    capped(lines, "every location meets its RPO with a verified recovery point")
}

fn three_two_one_section(c: &ComplianceReport) -> String {
    let lines = c
        .resources
        .iter()
        .filter(|r| !r.three_two_one.missing.is_empty())
        .map(|r| {
            format!(
                "{} ({}/4): {}",
                r.resource_id,
                r.three_two_one.score,
                r.three_two_one.missing.join("; ")
            )
        })
        .collect();
    capped(lines, "every resource meets 3-2-1 with an immutable copy")
}

fn backups_section(s: &ComplianceSummary) -> String {
    let rate = s.backups.rate_bp.map_or_else(
        || "no backup finished".to_owned(),
        |bp| format!("{}.{:02} % succeeded", bp / 100, bp % 100),
    );
    format!(
        "{} succeeded, {} failed, {} pending: {rate}",
        s.backups.succeeded, s.backups.failed, s.backups.pending
    )
}

fn failures_section(failures: &[FailureItem]) -> String {
    let lines = failures
        .iter()
        .map(|f| {
            format!(
                "{} {} ({} step): {} {}",
                f.at.format("%H:%M"),
                f.id,
                f.step,
                f.code,
                f.message
            )
        })
        .collect();
    capped(lines, "no failures")
}

/// Restorable recovery points per (location, tier).
fn stored_by_tier(points: &[lifeboat_domain::RecoveryPoint]) -> BTreeMap<(String, StorageTier), usize> {
    let mut out = BTreeMap::new();
    for p in points.iter().filter(|p| p.is_restorable()) {
        *out.entry((p.location.to_string(), StorageTier::of_kind(p.resource.kind)))
            .or_default() += 1;
    }
    out
}

fn gib(bytes: u64) -> String {
    let tenths = u128::from(bytes) * 10 / u128::from(GIB);
    format!("{}.{} GiB", tenths / 10, tenths % 10)
}

fn storage_section(
    stored: &BTreeMap<(String, StorageTier), usize>,
    storage: &CostEstimate,
    unsized_points: usize,
) -> String {
    let mut lines: Vec<String> = stored
        .iter()
        .map(|((location, tier), n)| {
            let priced = storage
                .tiers
                .iter()
                .find(|t| &t.region == location && t.tier == tier.as_str());
            match priced {
                Some(t) if t.priced => format!(
                    "{location} {tier}: {n} recovery point(s), {}, ${}/month",
                    gib(t.bytes),
                    format_usd(t.total_micro_usd)
                ),
                Some(t) => format!(
                    "{location} {tier}: {n} recovery point(s), {}, no price configured",
                    gib(t.bytes)
                ),
                None => format!("{location} {tier}: {n} recovery point(s), size not recorded"),
            }
        })
        .collect();
    lines.push(format!(
        "estimated total ${}/month for {} priced item(s); {unsized_points} recovery point(s) without a recorded size are not priced",
        format_usd(storage.total_micro_usd),
        storage.tiers.iter().filter(|t| t.priced).map(|t| t.items).sum::<u64>()
    ));
    capped(lines, "nothing stored")
}
