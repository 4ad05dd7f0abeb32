//! Criticality windows: busy periods when data matters most. While a window is open a
//! stricter rule applies (more frequent backups, tighter RPO, copies first in the queue)
//! and nothing of the resource is expired.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// An absolute range, `[from, to)`.
    OneOff { from: DateTime<Utc>, to: DateTime<Utc> },
    /// Every week on `days`, from `from` to `to` local time (`to` ≤ `from` wraps past
    /// midnight; `to` = 24:00 is written as `None`).
    Weekly {
        days: Days,
        from: NaiveTime,
        to: Option<NaiveTime>,
    },
}

/// A set of weekdays (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Days(u8);

impl Days {
    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.num_days_from_monday();
    }

    pub fn has(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn iter(self) -> impl Iterator<Item = Weekday> {
        let mut day = Weekday::Mon;
        (0..7).filter_map(move |_| {
            let d = day;
            day = day.succ();
            self.has(d).then_some(d)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub name: String,
    pub span: Span,
}

/// What changes while a window is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    pub every: Duration,
    pub rpo: Duration,
}

/// The document form of a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowDocument {
    pub name: String,
    /// One-off: RFC 3339 instants. Weekly: `HH:MM` local times (`24:00` allowed for `to`).
    pub from: String,
    pub to: String,
    /// Weekly windows: `mon` … `sun`. Absent for a one-off window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
}

impl Window {
    pub fn from_document(doc: &WindowDocument) -> Result<Self, String> {
        let name: String = doc.name.chars().take(64).collect();
        if name.is_empty() {
            return Err("a window needs a name".into());
        }
        let span = match &doc.days {
            None => {
                let parse = |s: &str| {
                    DateTime::parse_from_rfc3339(s)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|e| format!("window {name:?}: {s:.40?} is not an RFC 3339 instant ({e})"))
                };
                let (from, to) = (parse(&doc.from)?, parse(&doc.to)?);
                if to <= from {
                    return Err(format!("window {name:?}: ends before it starts"));
                }
                Span::OneOff { from, to }
            }
            Some(days) => {
                let mut set = Days::default();
                for d in days {
                    let day = d
                        .parse::<Weekday>()
                        .map_err(|_| format!("window {name:?}: {d:.10?} is not a weekday (mon … sun)"))?;
                    set.insert(day);
                }
                if set.is_empty() {
                    return Err(format!("window {name:?}: no days"));
                }
                let time = |s: &str| {
                    NaiveTime::parse_from_str(s, "%H:%M")
                        .map_err(|_| format!("window {name:?}: {s:.10?} is not a time like 08:00"))
                };
                let from = time(&doc.from)?;
                let to = if doc.to == "24:00" { None } else { Some(time(&doc.to)?) };
                if to == Some(from) {
                    return Err(format!("window {name:?}: from and to are the same time"));
                }
                Span::Weekly { days: set, from, to }
            }
        };
        Ok(Self { name, span })
    }

    pub fn to_document(&self) -> WindowDocument {
        match &self.span {
            Span::OneOff { from, to } => WindowDocument {
                name: self.name.clone(),
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
                days: None,
            },
            Span::Weekly { days, from, to } => WindowDocument {
                name: self.name.clone(),
                from: from.format("%H:%M").to_string(),
                to: to.map_or_else(|| "24:00".to_owned(), |t| t.format("%H:%M").to_string()),
                days: Some(days.iter().map(|d| d.to_string().to_lowercase()).collect()),
            },
        }
    }

    /// Whether the window is open at `at` (weekly windows in local time `tz`).
    pub fn contains(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        match &self.span {
            Span::OneOff { from, to } => *from <= at && at < *to,
            Span::Weekly { days, from, to } => {
                let local = at.with_timezone(&tz);
                let time =
                    NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second()).unwrap_or(NaiveTime::MIN);
                let today = local.weekday();
                match to {
                    None => days.has(today) && time >= *from,
                    Some(to) if to > from => days.has(today) && time >= *from && time < *to,
                    // Wraps past midnight: the tail belongs to the day it started.
                    Some(to) => (days.has(today) && time >= *from) || (days.has(today.pred()) && time < *to),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn doc(from: &str, to: &str, days: Option<&[&str]>) -> WindowDocument {
        WindowDocument {
            name: "w".into(),
            from: from.into(),
            to: to.into(),
            days: days.map(|d| d.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn one_off_and_weekly_windows() {
        let bf = Window::from_document(&doc("2026-11-27T00:00:00-05:00", "2026-12-01T00:00:00-05:00", None)).unwrap();
        assert!(bf.contains(t("2026-11-28T12:00:00Z"), Tz::UTC));
        assert!(!bf.contains(t("2026-12-01T05:00:00Z"), Tz::UTC));
        let weekends = Window::from_document(&doc("00:00", "24:00", Some(&["sat", "sun"]))).unwrap();
        // Saturday 00:30 in Berlin is still Friday 23:30 UTC.
        assert!(weekends.contains(t("2026-11-27T23:30:00Z"), chrono_tz::Europe::Berlin));
        assert!(!weekends.contains(t("2026-11-27T23:30:00Z"), Tz::UTC));
        let nights = Window::from_document(&doc("22:00", "06:00", Some(&["fri"]))).unwrap();
        assert!(
            nights.contains(t("2026-11-28T03:00:00Z"), Tz::UTC),
            "Saturday 03:00 is the tail of Friday night"
        );
        assert!(!nights.contains(t("2026-11-29T03:00:00Z"), Tz::UTC));
        assert_eq!(Window::from_document(&weekends.to_document()).unwrap(), weekends);
    }

    #[test]
    fn bad_windows_are_rejected_with_a_reason() {
        for (d, needle) in [
            (doc("2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z", None), "ends before"),
            (doc("soon", "later", None), "RFC 3339"),
            (doc("08:00", "18:00", Some(&["funday"])), "weekday"),
            (doc("8am", "18:00", Some(&["mon"])), "time like"),
        ] {
            let err = Window::from_document(&d).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
