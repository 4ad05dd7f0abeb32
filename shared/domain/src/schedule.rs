//! Schedule slots: the scheduled instant a backup belongs to.
//!
//! A slot is derived from the schedule and the *scheduled* time of the trigger, never from
//! the time an event happens to arrive, so duplicate or late deliveries of one trigger
//! land in the same slot and name the same backup.

use std::fmt;
use std::time::Duration;

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The start of one schedule slot, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slot(DateTime<Utc>);

impl Slot {
    /// The slot of a fixed-interval schedule (`every`, aligned to the Unix epoch) that
    /// contains `at`. `every` is at least one minute (policies guarantee it).
    pub fn containing(at: DateTime<Utc>, every: Duration) -> Self {
        let step = i64::try_from(every.as_secs().max(60)).unwrap_or(i64::MAX);
        let secs = at.timestamp();
        let start = secs - secs.rem_euclid(step);
        Self(Utc.timestamp_opt(start, 0).single().unwrap_or(at))
    }

    pub fn start(self) -> DateTime<Utc> {
        self.0
    }

    /// Compact form used in snapshot names and tags: `20261123-1800`.
    pub fn compact(self) -> String {
        self.0.format("%Y%m%d-%H%M").to_string()
    }

    /// Parses the compact form back (used when adopting tagged snapshots).
    pub fn parse_compact(s: &str) -> Option<Self> {
        chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d-%H%M")
            .ok()
            .map(|n| Self(n.and_utc()))
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

/// When a rule takes its backups: a fixed interval aligned to the Unix epoch, or a cron
/// expression evaluated in the policy's IANA time zone (DST-correct, as croner defines it:
/// a local time that occurs twice on the fall-back day fires once, the first time).
#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron {
        expr: String,
        cron: Box<croner::Cron>,
        tz: Tz,
    },
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Every(a), Self::Every(b)) => a == b,
            (Self::Cron { expr: a, tz: ta, .. }, Self::Cron { expr: b, tz: tb, .. }) => a == b && ta == tb,
            _ => false,
        }
    }
}

impl Eq for Schedule {}

/// How far back a cron slot is searched for: a schedule that fires less often than this
/// (e.g. once a year) is fine; one that never fired in that span has no current slot.
const CRON_LOOKBACK_DAYS: i64 = 400;

impl Schedule {
    /// Parses a 5-field cron expression (minute hour day-of-month month day-of-week).
    pub fn cron(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron = croner::Cron::from_str(expr).map_err(|e| format!("{expr:.60?} is not a cron expression: {e}"))?;
        Ok(Self::Cron {
            expr: expr.to_owned(),
            cron: Box::new(cron),
            tz,
        })
    }

    /// The slot containing `at`: the latest scheduled instant at or before it.
    pub fn slot_at(&self, at: DateTime<Utc>) -> Option<Slot> {
        match self {
            Self::Every(every) => Some(Slot::containing(at, *every)),
            Self::Cron { cron, tz, .. } => {
                let local = at.with_timezone(tz);
                let found = cron.find_previous_occurrence(&local, true).ok()?;
                let found = found.with_timezone(&Utc);
                (at - found <= chrono::Duration::days(CRON_LOOKBACK_DAYS)).then_some(Slot(found))
            }
        }
    }

    /// The first scheduled instant strictly after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(every) => {
                let step = chrono::Duration::from_std(*every).ok()?;
                Some(Slot::containing(at, *every).start() + step)
            }
            Self::Cron { cron, tz, .. } => cron
                .find_next_occurrence(&at.with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The longest gap between consecutive slots over the coming year from `from` (for
    /// validating an RPO against the schedule). `None` if it never fires.
    pub fn longest_gap(&self, from: DateTime<Utc>) -> Option<Duration> {
        match self {
            Self::Every(every) => Some(*every),
            Self::Cron { .. } => {
                let mut longest = Duration::ZERO;
                let mut at = self.next_after(from)?;
                let end = from + chrono::Duration::days(366);
                let mut fired = 0u32;
                while at < end && fired < 200_000 {
                    let next = self.next_after(at)?;
                    longest = longest.max((next - at).to_std().unwrap_or_default());
                    at = next;
                    fired += 1;
                }
                Some(longest)
            }
        }
    }

    /// Human-readable form for plans and alerts.
    pub fn describe(&self) -> String {
        match self {
            Self::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Self::Cron { expr, tz, .. } => format!("cron {expr} ({tz})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cron_slots_follow_local_time_across_dst() {
        // 01:30 every day in New York: 05:30Z in summer (EDT), 06:30Z in winter (EST).
        let s = Schedule::cron("30 1 * * *", chrono_tz::America::New_York).unwrap();
        let summer = s.slot_at(t("2026-10-30T12:00:00Z")).unwrap();
        assert_eq!(summer.start(), t("2026-10-30T05:30:00Z"));
        let winter = s.slot_at(t("2026-11-03T12:00:00Z")).unwrap();
        assert_eq!(winter.start(), t("2026-11-03T06:30:00Z"));
        // On 2026-11-01 01:30 happens twice (EDT, then EST): it fires once, the first time.
        let fallback = s.slot_at(t("2026-11-01T07:00:00Z")).unwrap();
        assert_eq!(fallback.start(), t("2026-11-01T05:30:00Z"));
        // On 2026-03-08 02:30 does not exist in New York.
        let spring = Schedule::cron("30 2 * * *", chrono_tz::America::New_York).unwrap();
        println!(
            "spring slot: {:?}",
            spring.slot_at(t("2026-03-08T12:00:00Z")).map(Slot::start)
        );
        assert_eq!(s.longest_gap(t("2026-01-01T00:00:00Z")), Some(Duration::from_hours(25)));
    }

    #[test]
    fn cron_rejects_garbage_and_every_matches_slot() {
        assert!(Schedule::cron("every day", Tz::UTC).is_err());
        assert!(Schedule::cron("61 * * * *", Tz::UTC).is_err());
        let e = Schedule::Every(Duration::from_mins(15));
        assert_eq!(
            e.slot_at(t("2026-11-23T18:29:00Z")).unwrap().start(),
            t("2026-11-23T18:15:00Z")
        );
        assert_eq!(e.next_after(t("2026-11-23T18:29:00Z")), Some(t("2026-11-23T18:30:00Z")));
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn hourly_slot_floors_to_the_hour() {
        let slot = Slot::containing(t("2026-11-23T18:47:12Z"), Duration::from_hours(1));
        assert_eq!(slot.start(), t("2026-11-23T18:00:00Z"));
        assert_eq!(slot.compact(), "20261123-1800");
        assert_eq!(Slot::parse_compact("20261123-1800"), Some(slot));
    }

    proptest! {
        #[test]
        fn every_instant_of_a_slot_maps_to_that_slot(secs in 0i64..4_000_000_000, every_min in 1u64..10_000) {
            let every = Duration::from_secs(every_min * 60);
            let at = Utc.timestamp_opt(secs, 0).unwrap();
            let slot = Slot::containing(at, every);
            prop_assert!(slot.start() <= at);
            prop_assert!(at - slot.start() < chrono::Duration::from_std(every).unwrap());
            prop_assert_eq!(Slot::containing(slot.start(), every), slot);
        }
    }
}
