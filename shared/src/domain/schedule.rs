//! Schedule slots: the scheduled instant a backup belongs to.
//!
//! A slot is derived from the schedule and the *scheduled* time of the trigger, never from
//! the time an event happens to arrive, so duplicate or late deliveries of one trigger
//! land in the same slot and name the same backup.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn hourly_slot_floors_to_the_hour() {
        let slot = Slot::containing(t("2026-11-23T18:47:12Z"), Duration::from_secs(3600));
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
