//! Shards of a backup run: contiguous key ranges that together cover the key space of
//! the protected prefix exactly once, so that a Step Functions Map can back them up in
//! parallel (each shard its own checkpoint and partial manifest) and the run's manifest
//! is their merge in key order.

use serde::{Deserialize, Serialize};

/// Shards a run is split into when the request does not say.
pub const DEFAULT_MAX_SHARDS: u32 = 16;
/// The most shards a run may have: the shard list travels in Step Functions payloads
/// (256 KiB at most).
pub const MAX_SHARDS: u32 = 100;

/// Keys in `[from, to)`, in S3's (UTF-8 byte) order; `to: None` is the end of the key
/// space. The first shard starts at `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
}

impl Shard {
    /// The whole key space: one shard.
    pub fn whole() -> Self {
        Self {
            index: 0,
            from: String::new(),
            to: None,
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        key >= self.from.as_str() && self.to.as_deref().is_none_or(|to| key < to)
    }

    /// The key is at or past the end of the range.
    pub fn is_past(&self, key: &str) -> bool {
        self.to.as_deref().is_some_and(|to| key >= to)
    }

    /// A `StartAfter` for listing the range: a string below `from` such that no key in
    /// the range is skipped (the listing drops the few keys between it and `from`).
    /// `None` when the range starts at the beginning.
    pub fn start_after(&self) -> Option<String> {
        let mut s = self.from.clone();
        let last = s.pop()?;
        // The character just below `last` (skipping the surrogate gap): every key that
        // sorts below `from` and above the result starts with the result.
        let below = match u32::from(last) {
            0 => None,
            0xE000 => Some('\u{D7FF}'),
            c => char::from_u32(c - 1),
        };
        if let Some(c) = below {
            s.push(c);
        }
        Some(s)
    }
}

/// Groups the prefix's first-level sub-prefixes (sorted, as a delimited listing gives
/// them) into at most `max_shards` contiguous ranges of about as many sub-prefixes each.
/// Boundaries fall on sub-prefixes; loose objects belong to the range their key falls
/// in. No sub-prefixes: one shard.
pub fn plan(sub_prefixes: &[String], max_shards: u32) -> Vec<Shard> {
    let n = sub_prefixes.len();
    let k = usize::try_from(max_shards.max(1)).unwrap_or(1).min(n);
    if k <= 1 {
        return vec![Shard::whole()];
    }
    // Shard i starts at sub-prefix floor(i*n/k): strictly increasing because k <= n.
    let starts: Vec<&str> = (0..k)
        .map(|i| if i == 0 { "" } else { sub_prefixes[i * n / k].as_str() })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, from)| Shard {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            from: (*from).to_owned(),
            to: starts.get(i + 1).map(|s| (*s).to_owned()),
        })
        .collect()
}

/// Checks that `shards` is a plan: indexes 0.., the first from `""`, each ending where
/// the next starts, boundaries strictly increasing, the last open-ended. Such a list
/// puts every key in exactly one shard.
pub fn check_cover(shards: &[Shard]) -> Result<(), String> {
    let Some(first) = shards.first() else {
        return Err("the shard list is empty".into());
    };
    if shards.len() > usize::try_from(MAX_SHARDS).unwrap_or(usize::MAX) {
        return Err(format!("{} shards, more than {MAX_SHARDS}", shards.len()));
    }
    if !first.from.is_empty() {
        return Err("shard 0 must start at the beginning (from \"\")".into());
    }
    for (i, s) in shards.iter().enumerate() {
        if usize::try_from(s.index).ok() != Some(i) {
            return Err(format!("shard at position {i} has index {}", s.index));
        }
        match (s.to.as_deref(), shards.get(i + 1)) {
            (Some(to), Some(next)) if to == next.from && to > s.from.as_str() => {}
            (None, None) => {}
            (None, Some(_)) => return Err(format!("shard {i} is open-ended but not the last")),
            (Some(_), None) => return Err(format!("the last shard ({i}) must be open-ended (to null)")),
            (Some(to), Some(next)) => {
                return Err(format!(
                    "shard {i} ends at {to:.80?} but shard {} starts at {:.80?} (or the range is empty)",
                    i + 1,
                    next.from
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn prefixes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_sub_prefixes_is_one_shard() {
        assert_eq!(plan(&[], 16), vec![Shard::whole()]);
        assert_eq!(plan(&prefixes(&["p/a/"]), 16), vec![Shard::whole()]);
        assert_eq!(plan(&prefixes(&["p/a/", "p/b/"]), 1), vec![Shard::whole()]);
    }

    #[test]
    fn sub_prefixes_are_grouped_into_contiguous_ranges() {
        let p = prefixes(&["p/a/", "p/b/", "p/c/", "p/d/", "p/e/"]);
        let shards = plan(&p, 2);
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].from, "");
        assert_eq!(shards[0].to.as_deref(), Some("p/c/"));
        assert_eq!(shards[1].to, None);
        assert!(check_cover(&shards).is_ok());
        assert_eq!(plan(&p, 16).len(), 5);
    }

    #[test]
    fn start_after_never_skips_a_key_of_the_range() {
        let s = Shard {
            index: 1,
            from: "p/b/".into(),
            to: None,
        };
        let after = s.start_after().unwrap();
        // The character below '/' is '.': only keys starting "p/b." are listed and dropped.
        assert_eq!(after, "p/b.");
        assert!(after.as_str() < "p/b/" && after.as_str() < "p/b.x");
        assert_eq!(Shard::whole().start_after(), None);
        let odd = Shard {
            index: 1,
            from: "a\u{E000}".into(),
            to: None,
        };
        assert!(odd.start_after().unwrap().as_str() < "a\u{E000}");
    }

    #[test]
    fn bad_lists_are_refused_with_a_reason() {
        let good = plan(&prefixes(&["a/", "b/", "c/"]), 3);
        assert!(check_cover(&good).is_ok());
        assert!(check_cover(&[]).unwrap_err().contains("empty"));
        let mut gap = good.clone();
        gap[1].from = "b0/".into();
        assert!(check_cover(&gap).unwrap_err().contains("ends at"));
        let mut open = good.clone();
        open[1].to = None;
        assert!(check_cover(&open).unwrap_err().contains("open-ended"));
        let mut closed = good.clone();
        closed[2].to = Some("z".into());
        assert!(check_cover(&closed).unwrap_err().contains("last shard"));
        let mut renumbered = good;
        renumbered[2].index = 7;
        assert!(check_cover(&renumbered).unwrap_err().contains("index"));
    }

    proptest! {
        /// Every key lies in exactly one shard, whatever the sub-prefixes and the cap.
        #[test]
        fn every_key_is_in_exactly_one_shard(
            subs in proptest::collection::btree_set("p/[a-z\u{e9}\u{1F600}]{1,3}/", 0..40),
            keys in proptest::collection::vec("(p/)?[a-z\u{e9}\u{1F600}/.-]{0,6}", 0..60),
            max in 1u32..20,
        ) {
            let subs: Vec<String> = subs.into_iter().collect();
            let shards = plan(&subs, max);
            prop_assert!(check_cover(&shards).is_ok());
            prop_assert!(shards.len() <= usize::try_from(max).unwrap());
            prop_assert_eq!(shards.len(), subs.len().clamp(1, usize::try_from(max).unwrap()));
            for key in keys.iter().chain(subs.iter()) {
                let holders = shards.iter().filter(|s| s.contains(key)).count();
                prop_assert_eq!(holders, 1, "{:?} in {} shards of {:?}", key, holders, shards);
                // The listing of the shard that holds it starts before it.
                let holder = shards.iter().find(|s| s.contains(key)).unwrap();
                prop_assert!(holder.start_after().is_none_or(|a| a.as_str() < key.as_str()));
            }
        }
    }
}
