//! The content checksum of a DynamoDB table: an item count and an order-independent
//! digest of every item, computed while scanning page by page (constant memory: one
//! 32-byte accumulator, whatever the table's size). Pure: no AWS types; the adapter turns
//! each scanned item into [`Value`]s.
//!
//! **Per item**: SHA-256 of a canonical encoding of the item — attributes sorted by name
//! (`BTreeMap`), every value prefixed by its DynamoDB type, every string and byte string
//! length-prefixed (so no two different items encode alike), numbers normalized (`1`,
//! `1.0`, `10E-1` and `+1.00` are one number, as they are to DynamoDB), the members of a
//! set sorted (a set has no order), list order kept (a list has one).
//!
//! **Per table**: the item hashes summed as 256-bit integers modulo 2^256. A sum is
//! commutative and associative, so the scan order, the page boundaries and parallel scan
//! segments do not change the result; it is preferred over XOR because XOR cancels equal
//! hashes in pairs (two equal contributions vanish), while the sum of a multiset changes
//! with every item added, removed or altered. Items are unique by primary key, so pairs
//! cannot occur in one table; the sum costs no more and keeps no such blind spot. The
//! item count is kept beside the sum.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A DynamoDB attribute value, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    /// A number as DynamoDB sends it (decimal text).
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    Ss(Vec<String>),
    Ns(Vec<String>),
    Bs(Vec<Vec<u8>>),
    L(Vec<Value>),
    M(BTreeMap<String, Value>),
}

/// One item: attribute name → value.
pub type Item = BTreeMap<String, Value>;

/// A DynamoDB number in one canonical text: `0`, or `[-]<digits without leading or
/// trailing zeros>e<exponent>` where the value is `0.<digits> × 10^exponent`. Text that
/// is not a decimal number is kept as is behind a `?` (DynamoDB never sends such text; the
/// digest still covers it rather than failing).
pub fn normalize_number(raw: &str) -> String {
    let s = raw.trim();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, "0"),
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return format!("?{raw}");
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return format!("?{raw}");
    }
    let digits = format!("{int}{frac}");
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return "0".into();
    }
    // value = 0.<digits> × 10^(len(int) + exponent); dropping `leading` zeros shifts it.
    let Some(point) = i64::try_from(int.len())
        .ok()
        .and_then(|n| n.checked_add(exponent))
        .and_then(|n| n.checked_sub(i64::try_from(leading).ok()?))
    else {
        return format!("?{raw}");
    };
    format!("{}{significant}e{point}", if negative { "-" } else { "" })
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u64::try_from(n).unwrap_or(u64::MAX).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// Members of a set, each encoded, sorted: a set has no order.
fn put_set(out: &mut Vec<u8>, tag: u8, mut members: Vec<Vec<u8>>) {
    members.sort();
    members.dedup();
    out.push(tag);
    put_len(out, members.len());
    for m in members {
        put_len(out, m.len());
        out.extend_from_slice(&m);
    }
}

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::S(s) => put_bytes(out, b'S', s.as_bytes()),
        Value::N(n) => put_bytes(out, b'N', normalize_number(n).as_bytes()),
        Value::B(b) => put_bytes(out, b'B', b),
        Value::Bool(b) => {
            out.push(b'T');
            out.push(u8::from(*b));
        }
        Value::Null => out.push(b'0'),
        Value::Ss(set) => put_set(out, b's', set.iter().map(|s| s.as_bytes().to_vec()).collect()),
        Value::Ns(set) => put_set(
            out,
            b'n',
            set.iter().map(|n| normalize_number(n).into_bytes()).collect(),
        ),
        Value::Bs(set) => put_set(out, b'b', set.clone()),
        Value::L(list) => {
            out.push(b'L');
            put_len(out, list.len());
            for v in list {
                encode_value(out, v);
            }
        }
        Value::M(map) => encode_map(out, b'M', map),
    }
}

fn encode_map(out: &mut Vec<u8>, tag: u8, map: &BTreeMap<String, Value>) {
    out.push(tag);
    put_len(out, map.len());
    for (k, v) in map {
        put_len(out, k.len());
        out.extend_from_slice(k.as_bytes());
        encode_value(out, v);
    }
}

/// The canonical encoding of an item (what its hash is computed over).
pub fn canonical(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_map(&mut out, b'I', item);
    out
}

/// SHA-256 of the item's canonical encoding.
pub fn item_hash(item: &Item) -> [u8; 32] {
    Sha256::digest(canonical(item)).into()
}

/// The running digest of a scan: items seen and the sum of their hashes mod 2^256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableDigest {
    items: u64,
    sum: [u8; 32],
}

impl TableDigest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, item: &Item) {
        self.add_hash(&item_hash(item));
    }

    /// Adds one item's hash (big-endian 256-bit addition, the carry out dropped).
    pub fn add_hash(&mut self, h: &[u8; 32]) {
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let s = u16::from(self.sum[i]) + u16::from(h[i]) + carry;
            self.sum[i] = s.to_be_bytes()[1];
            carry = s >> 8;
        }
        self.items += 1;
    }

    /// Another digest's items (e.g. a parallel scan segment) added to this one.
    pub fn merge(&mut self, other: &Self) {
        let items = self.items;
        self.add_hash(&other.sum);
        self.items = items + other.items;
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    /// The checksum: [`CHECKSUM_SCHEME`], `:` and 64 lowercase hex digits.
    pub fn checksum(&self) -> String {
        format!("{CHECKSUM_SCHEME}:{}", crate::manifest::hex(&self.sum))
    }

    pub fn content(&self) -> TableContent {
        TableContent {
            items: self.items,
            checksum: self.checksum(),
        }
    }
}

/// Names the encoding and combination, so a later change of either is never compared
/// with a checksum made the old way.
pub const CHECKSUM_SCHEME: &str = "sha256-sum256-v1";

/// What a scan found: the item count and the checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableContent {
    pub items: u64,
    pub checksum: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn numbers_are_normalized_like_dynamodb_compares_them() {
        for same in [
            ["1", "1.0", "+1.00", "10E-1", "0.1e1", "001"],
            ["-12.5", "-125e-1", "-0012.50", "-1.25E1", "-12.5", "-12.50"],
        ] {
            let first = normalize_number(same[0]);
            for s in same {
                assert_eq!(normalize_number(s), first, "{s}");
            }
        }
        assert_eq!(normalize_number("0"), "0");
        assert_eq!(normalize_number("-0.000"), "0");
        assert_eq!(normalize_number("123"), "123e3");
        assert_eq!(normalize_number("0.00123"), "123e-2");
        assert_ne!(normalize_number("10"), normalize_number("1"));
        assert_ne!(normalize_number("-1"), normalize_number("1"));
        for junk in ["", "abc", "1e", "1.2.3", "--1", "e5", "."] {
            assert!(normalize_number(junk).starts_with('?'), "{junk}");
        }
        assert!(normalize_number(&format!("1e{}", i64::MAX)).starts_with('?'));
    }

    #[test]
    fn the_checksum_ignores_order_and_number_spelling_but_not_content() {
        let a = item(&[("pk", Value::S("a".into())), ("n", Value::N("1.50".into()))]);
        let b = item(&[
            ("pk", Value::S("b".into())),
            ("tags", Value::Ss(vec!["x".into(), "y".into()])),
            ("l", Value::L(vec![Value::N("1".into()), Value::N("2".into())])),
        ]);
        let b_other_set_order = item(&[
            ("pk", Value::S("b".into())),
            ("tags", Value::Ss(vec!["y".into(), "x".into()])),
            ("l", Value::L(vec![Value::N("1.0".into()), Value::N("2".into())])),
        ]);
        let a_other_spelling = item(&[("n", Value::N("15e-1".into())), ("pk", Value::S("a".into()))]);
        let mut d1 = TableDigest::new();
        d1.add(&a);
        d1.add(&b);
        let mut d2 = TableDigest::new();
        d2.add(&b_other_set_order);
        d2.add(&a_other_spelling);
        assert_eq!(d1, d2);
        assert_eq!(d1.items(), 2);
        assert!(d1.checksum().starts_with("sha256-sum256-v1:") && d1.checksum().len() == 17 + 64);

        // A list is ordered; a changed value, type or name changes the checksum.
        for changed in [
            item(&[
                ("pk", Value::S("b".into())),
                ("tags", Value::Ss(vec!["x".into(), "y".into()])),
                ("l", Value::L(vec![Value::N("2".into()), Value::N("1".into())])),
            ]),
            item(&[
                ("pk", Value::S("b".into())),
                ("tags", Value::Ss(vec!["x".into()])),
                ("l", Value::L(vec![Value::N("1".into()), Value::N("2".into())])),
            ]),
            item(&[
                ("pk", Value::S("b".into())),
                ("tags", Value::Ss(vec!["x".into(), "y".into()])),
                ("l", Value::L(vec![Value::S("1".into()), Value::N("2".into())])),
            ]),
        ] {
            let mut d3 = TableDigest::new();
            d3.add(&a);
            d3.add(&changed);
            assert_ne!(d3, d1);
        }
        // Adjacent strings cannot trade characters (length prefixes).
        let x = item(&[("a", Value::S("bc".into())), ("d", Value::S(String::new()))]);
        let y = item(&[("a", Value::S("b".into())), ("d", Value::S("c".into()))]);
        assert_ne!(item_hash(&x), item_hash(&y));
        // Maps nest with sorted keys.
        let m1 = item(&[("m", Value::M(item(&[("x", Value::Null), ("y", Value::Bool(true))])))]);
        let m2 = item(&[("m", Value::M(item(&[("y", Value::Bool(true)), ("x", Value::Null)])))]);
        assert_eq!(item_hash(&m1), item_hash(&m2));
    }

    #[test]
    fn segments_merge_to_the_whole_and_the_sum_wraps() {
        let items: Vec<Item> = (0..50)
            .map(|i| {
                item(&[
                    ("pk", Value::N(i.to_string())),
                    ("b", Value::B(vec![u8::try_from(i).unwrap(); 3])),
                ])
            })
            .collect();
        let mut whole = TableDigest::new();
        for it in &items {
            whole.add(it);
        }
        let (mut s1, mut s2) = (TableDigest::new(), TableDigest::new());
        for (i, it) in items.iter().enumerate() {
            if i % 3 == 0 { s1.add(it) } else { s2.add(it) }
        }
        s1.merge(&s2);
        assert_eq!(s1, whole);
        let mut wrap = TableDigest::new();
        wrap.add_hash(&[0xff; 32]);
        wrap.add_hash(&{
            let mut one = [0u8; 32];
            one[31] = 1;
            one
        });
        assert_eq!(wrap.checksum(), format!("{CHECKSUM_SCHEME}:{}", "0".repeat(64)));
    }
}
