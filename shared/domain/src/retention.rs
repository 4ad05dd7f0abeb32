//! Retention: grandfather-father-son (keep the newest point of each of the last N hours,
//! days, ISO weeks, months and years, counted in the policy's time zone), the last N
//! points, and a minimum age. A point is kept if any rule keeps it.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// The newest N points, whatever their age.
    #[serde(default)]
    pub last: u32,
    #[serde(default)]
    pub hourly: u32,
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default)]
    pub yearly: u32,
    /// Every point younger than this is kept.
    #[serde(default, with = "humantime_opt", skip_serializing_if = "Option::is_none")]
    pub min_age: Option<Duration>,
}

mod humantime_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // the signature serde's `with` expects
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        raw.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Why a point is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    MinAge,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Last => "last",
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
            Self::MinAge => "min-age",
        }
    }
}

impl Retention {
    /// Keeps only the newest `n` (the simple `retain: n` policies).
    pub fn last(n: u32) -> Self {
        Self {
            last: n,
            ..Self::default()
        }
    }

    /// False when no rule can keep anything: such a policy would delete every backup.
    pub fn keeps_something(&self) -> bool {
        self.last + self.hourly + self.daily + self.weekly + self.monthly + self.yearly > 0
            || self.min_age.is_some_and(|d| !d.is_zero())
    }

    /// How long a point is expected to stay when backups run on schedule, at least every
    /// `interval`: the longest span any rule keeps (its count of periods plus the current,
    /// partial one), or `min_age`. Gaps in the backups make a GFS rule reach further back,
    /// so this is an expectation, not a bound. `None` when no rule keeps anything.
    pub fn expected_lifetime(&self, interval: Duration) -> Option<Duration> {
        const HOUR: u64 = 3_600;
        const DAY: u64 = 24 * HOUR;
        let span = |n: u32, period_secs: u64| {
            (n > 0).then(|| Duration::from_secs(u64::from(n).saturating_add(1).saturating_mul(period_secs)))
        };
        [
            (self.last > 0).then(|| interval.saturating_mul(self.last)),
            span(self.hourly, HOUR),
            span(self.daily, DAY),
            span(self.weekly, 7 * DAY),
            span(self.monthly, 31 * DAY),
            span(self.yearly, 366 * DAY),
            self.min_age.filter(|d| !d.is_zero()),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.last, "last"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ] {
            if n > 0 {
                parts.push(format!("{what} {n}"));
            }
        }
        if let Some(a) = self.min_age {
            parts.push(format!("min age {}", humantime::format_duration(a)));
        }
        parts.join(", ")
    }

    fn counted(&self) -> [(Rule, u32); 5] {
        [
            (Rule::Hourly, self.hourly),
            (Rule::Daily, self.daily),
            (Rule::Weekly, self.weekly),
            (Rule::Monthly, self.monthly),
            (Rule::Yearly, self.yearly),
        ]
    }

    /// For each of `times` (any order), the first rule that keeps it, or `None` when no
    /// rule does. One sort (none when the times come in order), then per rule one local
    /// conversion per period kept and a comparison per point passed over.
    pub fn select(&self, times: &[DateTime<Utc>], tz: Tz, now: DateTime<Utc>) -> Vec<Option<Rule>> {
        // Newest first, ties by index (latest first). Times usually come oldest first (a
        // resource's history as listed): then the order is the indices reversed.
        let mut order: Vec<usize> = (0..times.len()).rev().collect();
        if !times.is_sorted() {
            order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
        }
        let mut kept: Vec<Option<Rule>> = vec![None; times.len()];
        for &i in order.iter().take(self.last as usize) {
            kept[i] = Some(Rule::Last);
        }
        if let Some(min_age) = self.min_age {
            for (i, t) in times.iter().enumerate() {
                if (now - *t).to_std().unwrap_or_default() < min_age {
                    kept[i].get_or_insert(Rule::MinAge);
                }
            }
        }
        let local = |i: usize| times[i].with_timezone(&tz).naive_local();
        for (rule, n) in self.counted() {
            if n == 0 {
                continue;
            }
            // Newest first: the first point of each period is its newest; the period's
            // other points are passed over by comparing instants with the period's start,
            // so only one point per period is converted to local time.
            let mut pos = 0;
            let mut count = 0u32;
            while count < n
                && let Some(&i) = order.get(pos)
            {
                let t = local(i);
                kept[i].get_or_insert(rule);
                count += 1;
                pos += 1;
                if let Some(start) = period_start(rule, &t, tz) {
                    while order.get(pos).is_some_and(|&j| times[j] >= start) {
                        pos += 1;
                    }
                } else {
                    // The period's first local instant falls in a DST gap: its points
                    // are told by their local time.
                    let b = bucket(rule, &t);
                    while order.get(pos).is_some_and(|&j| bucket(rule, &local(j)) == b) {
                        pos += 1;
                    }
                }
            }
        }
        kept
    }
}

/// The first instant of `rule`'s period (hour, day, ISO week, month, year) holding the
/// local time `t`: the earliest instant whose local time is the period's first (the first
/// pass of a repeated hour), or `None` when that local time is skipped by a DST gap.
fn period_start(rule: Rule, t: &NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let d = t.date();
    let first = match rule {
        Rule::Hourly => d.and_hms_opt(t.hour(), 0, 0)?,
        Rule::Daily => d.and_hms_opt(0, 0, 0)?,
        Rule::Weekly => d
            .checked_sub_days(chrono::Days::new(u64::from(d.weekday().num_days_from_monday())))?
            .and_hms_opt(0, 0, 0)?,
        Rule::Monthly => d.with_day(1)?.and_hms_opt(0, 0, 0)?,
        Rule::Yearly => d.with_ordinal(1)?.and_hms_opt(0, 0, 0)?,
        Rule::Last | Rule::MinAge => return None,
    };
    tz.from_local_datetime(&first).earliest().map(|x| x.with_timezone(&Utc))
}

/// The period a local instant falls in, per rule, as one comparable number.
pub fn bucket(rule: Rule, t: &NaiveDateTime) -> i64 {
    let year = i64::from(t.year());
    match rule {
        Rule::Hourly => (year * 400 + i64::from(t.ordinal())) * 24 + i64::from(t.hour()),
        Rule::Daily => year * 400 + i64::from(t.ordinal()),
        Rule::Weekly => {
            let w = t.iso_week();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }
        Rule::Monthly => year * 100 + i64::from(t.month()),
        Rule::Yearly => year,
        Rule::Last | Rule::MinAge => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn hours_ago(now: DateTime<Utc>, h: i64) -> DateTime<Utc> {
        now - chrono::Duration::hours(h)
    }

    #[test]
    fn the_expected_lifetime_is_the_longest_rule() {
        let day = Duration::from_hours(24);
        let hour = Duration::from_hours(1);
        assert_eq!(Retention::default().expected_lifetime(hour), None);
        assert_eq!(Retention::last(7).expected_lifetime(day), Some(day * 7));
        let gfs = Retention {
            daily: 35,
            weekly: 4,
            ..Retention::default()
        };
        assert_eq!(gfs.expected_lifetime(hour), Some(day * 36));
        let yearly = Retention {
            hourly: 24,
            yearly: 2,
            min_age: Some(day * 10),
            ..Retention::default()
        };
        assert_eq!(yearly.expected_lifetime(hour), Some(day * 366 * 3));
    }

    #[test]
    fn hourly_snapshots_for_a_month_keep_what_the_counts_say() {
        let now: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
        let times: Vec<_> = (0..24 * 31).map(|h| hours_ago(now, h)).collect();
        let r = Retention {
            hourly: 24,
            daily: 7,
            weekly: 4,
            monthly: 2,
            ..Retention::default()
        };
        let kept = r.select(&times, Tz::UTC, now);
        let n = kept.iter().filter(|k| k.is_some()).count();
        // 24 hourly (back to 19:00 yesterday); daily adds the 21st-17th (5); ISO weeks add
        // the 15th and 8th (2: this week's and last week's newest are hourly points); monthly
        // adds 31 Oct (1).
        assert_eq!(
            n,
            24 + 5 + 2 + 1,
            "{:?}",
            kept.iter().zip(&times).filter(|(k, _)| k.is_some()).collect::<Vec<_>>()
        );
        assert_eq!(
            Retention::last(3)
                .select(&times, Tz::UTC, now)
                .iter()
                .filter(|k| k.is_some())
                .count(),
            3
        );
    }

    #[test]
    fn days_are_counted_in_the_policy_time_zone() {
        // 23:30 UTC and 00:30 UTC are the same day in Tokyo (08:30, 09:30) but not in UTC.
        let times = [
            Utc.with_ymd_and_hms(2026, 11, 22, 23, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 30, 0).unwrap(),
        ];
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap();
        let r = Retention {
            daily: 5,
            ..Retention::default()
        };
        assert_eq!(r.select(&times, Tz::UTC, now).iter().flatten().count(), 2);
        assert_eq!(
            r.select(&times, chrono_tz::Asia::Tokyo, now).iter().flatten().count(),
            1
        );
    }

    #[test]
    fn nothing_kept_is_detected() {
        assert!(!Retention::default().keeps_something());
        assert!(Retention::last(1).keeps_something());
        assert!(
            Retention {
                min_age: Some(Duration::from_mins(1)),
                ..Retention::default()
            }
            .keeps_something()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        /// GFS keeps exactly the newest point of each of the N newest buckets per rule
        /// (checked against a brute-force count), plus the newest `last`.
        #[test]
        fn gfs_keeps_exactly_what_its_counts_say(
            offsets in proptest::collection::vec(0i64..(400 * 24 * 60), 0..120),
            last in 0u32..4, hourly in 0u32..30, daily in 0u32..10, weekly in 0u32..6, monthly in 0u32..14, yearly in 0u32..3,
            zone in 0usize..4,
        ) {
            let now = Utc.with_ymd_and_hms(2026, 11, 23, 18, 0, 0).unwrap();
            let times: Vec<_> = offsets.iter().map(|m| now - chrono::Duration::minutes(*m)).collect();
            let r = Retention { last, hourly, daily, weekly, monthly, yearly, min_age: None };
            // DST at 02:00 (Berlin), at midnight (Santiago: days that start at 01:00),
            // by half an hour (Lord Howe), and none (UTC).
            let tz = [chrono_tz::Europe::Berlin, chrono_tz::America::Santiago, chrono_tz::Australia::Lord_Howe, chrono_tz::UTC][zone];
            let kept = r.select(&times, tz, now);
            let mut expected = BTreeSet::new();
            let mut by_time: Vec<usize> = (0..times.len()).collect();
            by_time.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
            expected.extend(by_time.iter().take(last as usize).copied());
            for (rule, n) in r.counted() {
                let mut newest_per_bucket: BTreeMap<i64, usize> = BTreeMap::new();
                for &i in by_time.iter().rev() {
                    newest_per_bucket.insert(bucket(rule, &times[i].with_timezone(&tz).naive_local()), i);
                }
                expected.extend(newest_per_bucket.values().rev().take(n as usize).copied());
            }
            let actual: BTreeSet<usize> = kept.iter().enumerate().filter_map(|(i, k)| k.map(|_| i)).collect();
            prop_assert_eq!(actual, expected);
        }
    }
}
