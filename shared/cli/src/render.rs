//! Printing answers: the JSON as it came, or a table a person reads.

use std::fmt::Write as _;

use serde_json::Value;

/// The widest a cell gets before it is cut (with `…`).
const MAX_CELL: usize = 60;
/// The most columns a list shows (the JSON output has every field).
const MAX_COLUMNS: usize = 8;

/// `value` as a table: a list answer (`items`) as columns, one row per item, with the
/// answer's other scalar fields above it; anything else as `key: value` lines.
pub fn table(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("items") {
                for (k, v) in map
                    .iter()
                    .filter(|(k, v)| *k != "items" && is_scalar(v) && !v.is_null())
                {
                    let _ = writeln!(out, "{k}: {}", cell(v));
                }
                out.push_str(&rows(items));
            } else {
                let width = map.keys().map(String::len).max().unwrap_or(0);
                for (k, v) in map {
                    let _ = writeln!(out, "{k:<width$}  {}", cell(v));
                }
            }
        }
        Value::Array(items) => out.push_str(&rows(items)),
        Value::Null => {}
        other => {
            let _ = writeln!(out, "{}", cell(other));
        }
    }
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// The columns of `items`: their keys in first-seen order, scalar-valued ones first.
fn columns(items: &[Value]) -> Vec<String> {
    let mut scalar = Vec::new();
    let mut nested = Vec::new();
    for item in items {
        if let Value::Object(map) = item {
            for (k, v) in map {
                if scalar.contains(k) || nested.contains(k) {
                    continue;
                }
                if is_scalar(v) {
                    scalar.push(k.clone());
                } else {
                    nested.push(k.clone());
                }
            }
        }
    }
    // What names and places an item first, whatever its keys' order.
    let first = |k: &String| FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len());
    scalar.sort_by_key(first);
    scalar.extend(nested);
    scalar.truncate(MAX_COLUMNS);
    scalar
}

/// Columns shown first, in this order, when an item has them.
const FIRST: &[&str] = &[
    "id",
    "name",
    "plan",
    "execution",
    "mode",
    "resource",
    "status",
    "state",
    "location",
    "created_at",
];

fn rows(items: &[Value]) -> String {
    if items.is_empty() {
        return "(none)\n".to_owned();
    }
    let cols = columns(items);
    if cols.is_empty() {
        return items.iter().fold(String::new(), |mut out, v| {
            let _ = writeln!(out, "{}", cell(v));
            out
        });
    }
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|item| cols.iter().map(|c| item.get(c).map(cell).unwrap_or_default()).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let mut l = String::new();
        for (i, v) in values.iter().enumerate() {
            if i + 1 == values.len() {
                l.push_str(v);
            } else {
                let pad = widths[i].saturating_sub(v.chars().count());
                let _ = write!(l, "{v}{}  ", " ".repeat(pad));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(
        cols.iter()
            .map(|c| c.to_uppercase())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for r in &cells {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// One value in one cell: strings bare, the rest as compact JSON, cut at [`MAX_CELL`].
pub fn cell(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if s.chars().count() > MAX_CELL {
        let cut: String = s.chars().take(MAX_CELL - 1).collect();
        cut + "…"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_is_columns_with_its_totals_above() {
        let out = table(&json!({
            "total": 2,
            "items": [
                {"id": "us-east-1/db/a", "status": "copied", "holds": {"legal_hold": true}},
                {"id": "us-west-2/db/b", "status": "available", "size_bytes": 10},
            ],
        }));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "total: 2");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["ID", "STATUS", "SIZE_BYTES", "HOLDS"]
        );
        assert!(lines[2].starts_with("us-east-1/db/a  copied"), "{out}");
        assert!(lines[2].ends_with(r#"{"legal_hold":true}"#), "{out}");
        assert!(lines[3].contains("available") && lines[3].contains("10"), "{out}");
    }

    #[test]
    fn one_item_is_key_value_lines_and_long_cells_are_cut() {
        let long = "x".repeat(200);
        let out = table(&json!({"name": "gold", "note": long}));
        assert!(out.lines().any(|l| l.starts_with("name") && l.ends_with("gold")));
        let note = out.lines().find(|l| l.starts_with("note")).unwrap();
        assert!(note.ends_with('…') && note.chars().count() < 80, "{note}");
        assert_eq!(table(&json!({"items": []})), "(none)\n");
    }
}
