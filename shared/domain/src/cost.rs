//! Storage per tier and its estimated monthly cost, in integer micro-dollars (never floats).
//!
//! Prices are configuration, per region and tier ([`PriceBook`]). The billing *rules* of
//! each tier are AWS's and fixed here ([`TierRules`], from the S3 storage class
//! documentation):
//!
//! | tier | minimum storage duration | minimum billable object size | per-object overhead |
//! |---|---|---|---|
//! | S3 Standard | - | - | - |
//! | S3 Standard-IA | 30 days | 128 KB | - |
//! | S3 Glacier Instant Retrieval | 90 days | 128 KB | - |
//! | S3 Glacier Flexible Retrieval | 90 days | - | 32 KB at the tier's price + 8 KB at S3 Standard's |
//! | S3 Glacier Deep Archive | 180 days | - | 32 KB at the tier's price + 8 KB at S3 Standard's |
//! | RDS / DynamoDB / AWS Backup warm | - | - | - |
//! | AWS Backup cold | 90 days | - | - |
//!
//! A month is 30 days and a GB is 2^30 bytes. Each amount is rounded *up* to the next
//! micro-dollar, per item; a total is the sum of its items, so totals are additive.
//! Arithmetic is done in `u128` and saturates: absurd inputs give `u64::MAX`, never a panic.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Region, ResourceKind};

pub const GIB: u64 = 1 << 30;
pub const DAYS_PER_MONTH: u32 = 30;
pub const KIB: u64 = 1024;

/// Where a recovery point's bytes are stored (and billed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageTier {
    /// RDS/Aurora snapshot (backup) storage.
    RdsSnapshot,
    /// DynamoDB on-demand backup storage.
    DynamoDbBackup,
    S3Standard,
    S3StandardIa,
    S3GlacierInstant,
    S3GlacierFlexible,
    S3GlacierDeepArchive,
    BackupVaultWarm,
    BackupVaultCold,
}

/// AWS's billing rules of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierRules {
    pub min_storage_days: u32,
    pub min_billable_object_bytes: u64,
    /// Per object, billed at this tier's price.
    pub overhead_bytes_at_tier: u64,
    /// Per object, billed at S3 Standard's price.
    pub overhead_bytes_at_standard: u64,
}

impl StorageTier {
    pub const ALL: [Self; 9] = [
        Self::RdsSnapshot,
        Self::DynamoDbBackup,
        Self::S3Standard,
        Self::S3StandardIa,
        Self::S3GlacierInstant,
        Self::S3GlacierFlexible,
        Self::S3GlacierDeepArchive,
        Self::BackupVaultWarm,
        Self::BackupVaultCold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RdsSnapshot => "rds-snapshot",
            Self::DynamoDbBackup => "dynamo-db-backup",
            Self::S3Standard => "s3-standard",
            Self::S3StandardIa => "s3-standard-ia",
            Self::S3GlacierInstant => "s3-glacier-instant",
            Self::S3GlacierFlexible => "s3-glacier-flexible",
            Self::S3GlacierDeepArchive => "s3-glacier-deep-archive",
            Self::BackupVaultWarm => "backup-vault-warm",
            Self::BackupVaultCold => "backup-vault-cold",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The tier a snapshot of this kind of resource lives in.
    pub fn of_kind(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::RdsInstance | ResourceKind::AuroraCluster => Self::RdsSnapshot,
            // Object backups land in S3 Standard; tier moves change the class later.
            ResourceKind::S3Prefix | ResourceKind::ConfigBundle => Self::S3Standard,
            ResourceKind::DynamoDbTable => Self::DynamoDbBackup,
        }
    }

    pub fn rules(self) -> TierRules {
        let none = TierRules {
            min_storage_days: 0,
            min_billable_object_bytes: 0,
            overhead_bytes_at_tier: 0,
            overhead_bytes_at_standard: 0,
        };
        match self {
            Self::RdsSnapshot | Self::DynamoDbBackup | Self::S3Standard | Self::BackupVaultWarm => none,
            Self::S3StandardIa => TierRules {
                min_storage_days: 30,
                min_billable_object_bytes: 128 * KIB,
                ..none
            },
            Self::S3GlacierInstant => TierRules {
                min_storage_days: 90,
                min_billable_object_bytes: 128 * KIB,
                ..none
            },
            Self::S3GlacierFlexible => TierRules {
                min_storage_days: 90,
                overhead_bytes_at_tier: 32 * KIB,
                overhead_bytes_at_standard: 8 * KIB,
                ..none
            },
            Self::S3GlacierDeepArchive => TierRules {
                min_storage_days: 180,
                overhead_bytes_at_tier: 32 * KIB,
                overhead_bytes_at_standard: 8 * KIB,
                ..none
            },
            Self::BackupVaultCold => TierRules {
                min_storage_days: 90,
                ..none
            },
        }
    }
}

impl fmt::Display for StorageTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a non-negative dollar amount with at most 6 decimals (`"0.00099"`) into
/// micro-dollars, without floats.
pub fn parse_usd(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:.40?} is not a dollar amount like 0.023 (at most 6 decimals)");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_micro: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac_micro))
        .ok_or_else(bad)
}

/// Micro-dollars as dollars with cents, rounded half up: `12_345_678` → `"12.35"`.
pub fn format_usd(micro: u64) -> String {
    let cents = (u128::from(micro) + 5_000) / 10_000;
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Prices of one region: micro-dollars per GB-month, per tier.
pub type RegionPrices = BTreeMap<StorageTier, u64>;

/// Prices per region, from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceBook {
    pub regions: BTreeMap<Region, RegionPrices>,
}

impl PriceBook {
    /// Parses `{"<region>": {"<tier>": "<USD per GB-month>", ...}, ...}`; every problem is
    /// listed.
    pub fn from_json(json: &str) -> Result<Self, Vec<String>> {
        let doc: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(json)
            .map_err(|e| vec![format!("prices: not a {{region: {{tier: price}}}} map: {e}")])?;
        let mut problems = Vec::new();
        let mut regions = BTreeMap::new();
        for (region, tiers) in doc {
            let Ok(r) = Region::parse(&region) else {
                problems.push(format!("prices: {region:.40?} is not a region"));
                continue;
            };
            let mut prices = RegionPrices::new();
            for (tier, price) in tiers {
                match (StorageTier::parse(&tier), parse_usd(&price)) {
                    (Some(t), Ok(p)) => {
                        prices.insert(t, p);
                    }
                    (None, _) => problems.push(format!("prices for {region}: unknown tier {tier:.40?}")),
                    (_, Err(e)) => problems.push(format!("prices for {region}/{tier}: {e}")),
                }
            }
            regions.insert(r, prices);
        }
        if problems.is_empty() {
            Ok(Self { regions })
        } else {
            Err(problems)
        }
    }

    /// List prices (USD per GB-month) of us-east-1 and us-west-2, which are the same for
    /// these tiers; other regions must be configured.
    pub fn aws_list_prices() -> Self {
        let prices: RegionPrices = [
            (StorageTier::RdsSnapshot, 95_000),
            (StorageTier::DynamoDbBackup, 100_000),
            (StorageTier::S3Standard, 23_000),
            (StorageTier::S3StandardIa, 12_500),
            (StorageTier::S3GlacierInstant, 4_000),
            (StorageTier::S3GlacierFlexible, 3_600),
            (StorageTier::S3GlacierDeepArchive, 990),
            (StorageTier::BackupVaultWarm, 95_000),
            (StorageTier::BackupVaultCold, 10_000),
        ]
        .into_iter()
        .collect();
        let mut regions = BTreeMap::new();
        for r in ["us-east-1", "us-west-2"] {
            if let Ok(region) = Region::parse(r) {
                regions.insert(region, prices.clone());
            }
        }
        Self { regions }
    }

    /// From the `STORAGE_PRICES` setting (JSON as in [`PriceBook::from_json`]), merged
    /// over [`PriceBook::aws_list_prices`]; absent: the list prices.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut book = Self::aws_list_prices();
        if let Some(json) = get("STORAGE_PRICES").filter(|s| !s.trim().is_empty()) {
            for (region, prices) in Self::from_json(&json)?.regions {
                book.regions.entry(region).or_default().extend(prices);
            }
        }
        Ok(book)
    }

    pub fn price(&self, region: &Region, tier: StorageTier) -> Option<u64> {
        self.regions.get(region).and_then(|p| p.get(&tier)).copied()
    }
}

/// Bytes stored in one tier of one region: `objects` objects totalling `bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub region: Region,
    pub tier: StorageTier,
    pub bytes: u64,
    pub objects: u64,
    /// Days already spent in this tier.
    pub stored_days: u32,
    /// Days until retention deletes it, if known.
    pub expires_in_days: Option<u32>,
}

/// The estimated cost of one [`Stored`] item for the coming month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Bytes billed at the tier's price: the data raised to the minimum billable size per
    /// object, plus the per-object overhead at the tier's price.
    pub billable_bytes: u64,
    /// Storage for the days of the month it is kept.
    pub storage_micro_usd: u64,
    /// Minimum storage duration charge when retention deletes it this month, earlier than
    /// the tier's minimum.
    pub early_deletion_micro_usd: u64,
    pub total_micro_usd: u64,
}

fn sat(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// `ceil(bytes × price × days / (GiB × 30))`, saturating.
fn charge(bytes: u64, micro_per_gb_month: u64, days: u32) -> u64 {
    let den = u128::from(GIB) * u128::from(DAYS_PER_MONTH);
    let num = u128::from(bytes)
        .checked_mul(u128::from(micro_per_gb_month))
        .and_then(|x| x.checked_mul(u128::from(days)));
    match num {
        Some(n) => sat(n.div_ceil(den)),
        // Over u128: divide first (the result exceeds u64 anyway).
        None => u64::MAX,
    }
}

/// The cost of `item` for the coming month at `price` (micro-dollars per GB-month of its
/// tier) and `standard_price` (S3 Standard's, for the Glacier per-object overhead).
pub fn monthly_cost(item: &Stored, price: u64, standard_price: u64) -> Cost {
    let rules = item.tier.rules();
    let (billable, standard_bytes) = billable_bytes(item.tier, item.bytes, item.objects);
    let days = item.expires_in_days.map_or(DAYS_PER_MONTH, |e| e.min(DAYS_PER_MONTH));
    let storage = charge(billable, price, days).saturating_add(charge(standard_bytes, standard_price, days));
    let early_days = match item.expires_in_days {
        Some(e) if e <= DAYS_PER_MONTH => rules
            .min_storage_days
            .saturating_sub(item.stored_days.saturating_add(e)),
        _ => 0,
    };
    let early = charge(billable, price, early_days);
    Cost {
        billable_bytes: billable,
        storage_micro_usd: storage,
        early_deletion_micro_usd: early,
        total_micro_usd: storage.saturating_add(early),
    }
}

/// Bytes billed at the tier's price (data raised to the minimum billable size per object,
/// plus the per-object overhead at the tier) and bytes billed at S3 Standard's price (the
/// per-object overhead Glacier classes keep in Standard).
fn billable_bytes(tier: StorageTier, bytes: u64, objects: u64) -> (u64, u64) {
    let rules = tier.rules();
    let data = bytes.max(objects.saturating_mul(rules.min_billable_object_bytes));
    (
        data.saturating_add(objects.saturating_mul(rules.overhead_bytes_at_tier)),
        objects.saturating_mul(rules.overhead_bytes_at_standard),
    )
}

/// The exact cost of storing `objects` objects totalling `bytes` in `tier` for `days`
/// (billed for the tier's minimum storage duration at least when `from_now_on`), in
/// micro-dollars × [`GIB`] × [`DAYS_PER_MONTH`]: comparable across tiers without rounding,
/// even for a single small object. `price` and `standard_price` are micro-dollars per
/// GB-month of the tier and of S3 Standard.
pub fn storage_units(
    tier: StorageTier,
    bytes: u64,
    objects: u64,
    days: u32,
    from_now_on: bool,
    price: u64,
    standard_price: u64,
) -> u128 {
    let (billable, standard_bytes) = billable_bytes(tier, bytes, objects);
    let billed_days = if from_now_on {
        days.max(tier.rules().min_storage_days)
    } else {
        days
    };
    u128::from(billable)
        .saturating_mul(u128::from(price))
        .saturating_mul(u128::from(billed_days))
        .saturating_add(
            u128::from(standard_bytes)
                .saturating_mul(u128::from(standard_price))
                .saturating_mul(u128::from(days)),
        )
}

/// Storage and cost of one (region, tier).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierTotal {
    pub region: String,
    pub tier: String,
    pub items: u64,
    pub bytes: u64,
    pub billable_bytes: u64,
    pub storage_micro_usd: u64,
    pub early_deletion_micro_usd: u64,
    pub total_micro_usd: u64,
    /// False when the price book has no price for this region and tier (costs are 0).
    pub priced: bool,
}

/// Totals per (region, tier) and overall, each the sum of its items.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub tiers: Vec<TierTotal>,
    pub bytes: u64,
    pub total_micro_usd: u64,
    /// Items whose region and tier have no price.
    pub unpriced_items: u64,
}

/// Estimates the coming month's cost of `items` with `book`.
pub fn estimate(items: &[Stored], book: &PriceBook) -> CostEstimate {
    let mut by: BTreeMap<(Region, StorageTier), TierTotal> = BTreeMap::new();
    let mut out = CostEstimate::default();
    for item in items {
        let t = by.entry((item.region.clone(), item.tier)).or_insert_with(|| TierTotal {
            region: item.region.to_string(),
            tier: item.tier.to_string(),
            priced: true,
            ..TierTotal::default()
        });
        t.items += 1;
        t.bytes = t.bytes.saturating_add(item.bytes);
        out.bytes = out.bytes.saturating_add(item.bytes);
        let Some(price) = book.price(&item.region, item.tier) else {
            t.priced = false;
            out.unpriced_items += 1;
            continue;
        };
        let standard = book.price(&item.region, StorageTier::S3Standard).unwrap_or(0);
        let c = monthly_cost(item, price, standard);
        t.billable_bytes = t.billable_bytes.saturating_add(c.billable_bytes);
        t.storage_micro_usd = t.storage_micro_usd.saturating_add(c.storage_micro_usd);
        t.early_deletion_micro_usd = t.early_deletion_micro_usd.saturating_add(c.early_deletion_micro_usd);
        t.total_micro_usd = t.total_micro_usd.saturating_add(c.total_micro_usd);
        out.total_micro_usd = out.total_micro_usd.saturating_add(c.total_micro_usd);
    }
    out.tiers = by.into_values().collect();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn east() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    fn item(tier: StorageTier, bytes: u64, objects: u64) -> Stored {
        Stored {
            region: east(),
            tier,
            bytes,
            objects,
            stored_days: 0,
            expires_in_days: None,
        }
    }

    #[test]
    fn dollars_parse_and_format_without_floats() {
        assert_eq!(parse_usd("0.00099"), Ok(990));
        assert_eq!(parse_usd("0.023"), Ok(23_000));
        assert_eq!(parse_usd("12"), Ok(12_000_000));
        assert_eq!(parse_usd(".5"), Ok(500_000));
        for bad in ["", ".", "-1", "0.0000001", "1e3", "abc", "99999999999999999999"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
        assert_eq!(format_usd(12_345_678), "12.35");
        assert_eq!(format_usd(4_999), "0.00");
        assert_eq!(format_usd(5_000), "0.01");
        assert_eq!(format_usd(u64::MAX), "18446744073709.55");
    }

    #[test]
    fn one_gb_month_costs_the_list_price() {
        let book = PriceBook::aws_list_prices();
        let e = estimate(&[item(StorageTier::S3Standard, GIB, 1)], &book);
        assert_eq!(e.total_micro_usd, 23_000);
        let e = estimate(&[item(StorageTier::RdsSnapshot, 100 * GIB, 1)], &book);
        assert_eq!(format_usd(e.total_micro_usd), "9.50");
    }

    #[test]
    fn small_objects_are_billed_at_the_minimum_size_and_glacier_adds_overhead() {
        // 1000 objects of 1 KB in Glacier Instant Retrieval are billed as 1000 × 128 KB.
        let ir = monthly_cost(&item(StorageTier::S3GlacierInstant, 1000 * KIB, 1000), 4_000, 23_000);
        assert_eq!(ir.billable_bytes, 1000 * 128 * KIB);
        // In Deep Archive, each object adds 32 KB at the tier's price and 8 KB at Standard's.
        let deep = monthly_cost(&item(StorageTier::S3GlacierDeepArchive, 1000 * KIB, 1000), 990, 23_000);
        assert_eq!(deep.billable_bytes, 1000 * KIB + 1000 * 32 * KIB);
        let expected = (1000 * 33 * KIB * 990).div_ceil(GIB) + (1000 * 8 * KIB * 23_000).div_ceil(GIB);
        assert_eq!(deep.storage_micro_usd, expected);
        // A large object is billed as is.
        assert_eq!(
            monthly_cost(&item(StorageTier::S3StandardIa, GIB, 1), 12_500, 23_000).billable_bytes,
            GIB
        );
    }

    #[test]
    fn deleting_before_the_minimum_duration_is_billed_up_to_it() {
        // 10 days in Deep Archive, deleted in 5: billed 5 days of storage plus 165 days early.
        let it = Stored {
            stored_days: 10,
            expires_in_days: Some(5),
            ..item(StorageTier::S3GlacierDeepArchive, 30 * GIB, 1)
        };
        let c = monthly_cost(&it, 990, 0);
        let tier_bytes = 30 * GIB + 32 * KIB;
        assert_eq!(c.storage_micro_usd, charge(tier_bytes, 990, 5));
        assert_eq!(c.early_deletion_micro_usd, charge(tier_bytes, 990, 165));
        // Past the minimum, or in a tier without one, there is no early charge.
        let old = Stored {
            stored_days: 200,
            ..it.clone()
        };
        assert_eq!(monthly_cost(&old, 990, 0).early_deletion_micro_usd, 0);
        let std = Stored {
            tier: StorageTier::S3Standard,
            ..it
        };
        assert_eq!(monthly_cost(&std, 23_000, 23_000).early_deletion_micro_usd, 0);
    }

    #[test]
    fn prices_come_from_configuration_and_every_problem_is_listed() {
        let book = PriceBook::from_lookup(|k| {
            (k == "STORAGE_PRICES").then(|| r#"{"eu-west-1":{"rds-snapshot":"0.095","s3-standard":"0.023"}}"#.into())
        })
        .unwrap();
        assert_eq!(
            book.price(&Region::parse("eu-west-1").unwrap(), StorageTier::RdsSnapshot),
            Some(95_000)
        );
        assert_eq!(book.price(&east(), StorageTier::S3Standard), Some(23_000));
        let problems =
            PriceBook::from_json(r#"{"nowhere":{},"us-east-1":{"tape":"1","s3-standard":"x"}}"#).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        // A region without prices is reported, not guessed.
        let mut far = item(StorageTier::RdsSnapshot, GIB, 1);
        far.region = Region::parse("ap-south-1").unwrap();
        let e = estimate(&[far], &book);
        assert_eq!((e.unpriced_items, e.total_micro_usd, e.tiers[0].priced), (1, 0, false));
    }

    fn arb_item() -> impl Strategy<Value = Stored> {
        (
            0..StorageTier::ALL.len(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            0..2usize,
        )
            .prop_map(|(t, bytes, objects, stored_days, expires_in_days, r)| Stored {
                region: Region::parse(["us-east-1", "us-west-2"][r]).unwrap(),
                tier: StorageTier::ALL[t],
                bytes,
                objects,
                stored_days,
                expires_in_days,
            })
    }

    fn arb_small_item() -> impl Strategy<Value = Stored> {
        (arb_item(), 0..(1u64 << 44), 0..1_000_000u64).prop_map(|(mut i, b, o)| {
            i.bytes = b;
            i.objects = o;
            i
        })
    }

    proptest! {
        /// No input, however large, panics; the parts add up to the total.
        #[test]
        fn never_panics_and_parts_add_up(it in arb_item(), price in any::<u64>(), standard in any::<u64>()) {
            let c = monthly_cost(&it, price, standard);
            prop_assert_eq!(c.total_micro_usd, c.storage_micro_usd.saturating_add(c.early_deletion_micro_usd));
            prop_assert!(c.billable_bytes >= it.bytes);
        }

        /// More bytes, more objects or a higher price never cost less.
        #[test]
        fn cost_is_monotonic(
            it in arb_small_item(),
            more_bytes in 0..(1u64 << 40),
            more_objects in 0..1_000u64,
            price in 0..1_000_000u64,
            more_price in 0..1_000_000u64,
        ) {
            let base = monthly_cost(&it, price, 23_000);
            let bigger = Stored { bytes: it.bytes + more_bytes, ..it.clone() };
            prop_assert!(monthly_cost(&bigger, price, 23_000).total_micro_usd >= base.total_micro_usd);
            let more = Stored { objects: it.objects + more_objects, ..it.clone() };
            prop_assert!(monthly_cost(&more, price, 23_000).total_micro_usd >= base.total_micro_usd);
            prop_assert!(monthly_cost(&it, price + more_price, 23_000).total_micro_usd >= base.total_micro_usd);
        }

        /// The estimate of two sets of items is the sum of their estimates.
        #[test]
        fn estimates_are_additive(
            a in proptest::collection::vec(arb_small_item(), 0..20),
            b in proptest::collection::vec(arb_small_item(), 0..20),
        ) {
            let book = PriceBook::aws_list_prices();
            let (ea, eb) = (estimate(&a, &book), estimate(&b, &book));
            let all: Vec<Stored> = a.iter().chain(&b).cloned().collect();
            let e = estimate(&all, &book);
            prop_assert_eq!(e.total_micro_usd, ea.total_micro_usd + eb.total_micro_usd);
            prop_assert_eq!(e.bytes, ea.bytes + eb.bytes);
            let per_tier: u64 = e.tiers.iter().map(|t| t.total_micro_usd).sum();
            prop_assert_eq!(per_tier, e.total_micro_usd);
        }
    }
}
