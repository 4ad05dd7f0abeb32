#![allow(clippy::unwrap_used)]
use super::*;
use proptest::prelude::*;

fn at() -> DateTime<Utc> {
    "2026-11-23T18:25:00Z".parse().unwrap()
}

#[test]
fn one_line_per_location_with_units_dimensions_and_run_id() {
    let mut m = Metrics::new("track-recovery-points", "req-1", at());
    let west = Region::parse("us-west-2").unwrap();
    m.count(Metric::BackupsSucceeded, 2);
    m.count(Metric::BackupsSucceeded, 1);
    m.count(Metric::BackupsFailed, 0);
    m.count_in(&west, Metric::CopiesSucceeded, 1);
    m.sample_in(&west, Metric::CopyLag, 840);
    m.sample_in(&west, Metric::CopyLag, 905);
    let lines = m.lines();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(validate_emf(l).is_empty(), "{l}: {:?}", validate_emf(l));
    }
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["_aws"]["Timestamp"], json!(at().timestamp_millis()));
    assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Lifeboat");
    assert_eq!(
        first["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Service"], ["Service", "Function"]])
    );
    assert_eq!(first["BackupsSucceeded"], 3);
    assert_eq!(first["BackupsFailed"], 0);
    assert_eq!(first["Function"], "track-recovery-points");
    assert_eq!(first["RunId"], "req-1");
    assert!(first.get("Location").is_none());
    let second: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(second["Location"], "us-west-2");
    assert_eq!(second["CopyLag"], json!([840, 905]));
    let defs = &second["_aws"]["CloudWatchMetrics"][0]["Metrics"];
    assert!(
        defs.as_array()
            .unwrap()
            .contains(&json!({"Name": "CopyLag", "Unit": "Seconds"}))
    );
    assert_eq!(
        second["_aws"]["CloudWatchMetrics"][0]["Dimensions"][2],
        json!(["Service", "Location"])
    );
}

#[test]
fn flush_writes_once_and_empties_the_collector() {
    let sink = MemorySink::new();
    let mut m = Metrics::new("f", "r", at());
    m.count(Metric::RpoBreaches, 1);
    m.flush(&sink);
    m.flush(&sink);
    assert_eq!(sink.lines().len(), 1);
    assert_eq!(sink.total(Metric::RpoBreaches), Some(1));
    assert!(m.is_empty());
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    for (bad, why) in [
        ("not json", "not JSON"),
        (r#"{"a":1}"#, "no _aws"),
        (
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"M":1}"#,
            "dimension \"D\"",
        ),
        (
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"M","Unit":"Furlongs"}]}]},"M":1}"#,
            "unit",
        ),
        (
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":"x"}"#,
            "no numeric member",
        ),
    ] {
        let problems = validate_emf(bad);
        assert!(problems.iter().any(|p| p.contains(why)), "{bad}: {problems:?}");
    }
}

/// The alarms in template.yaml watch metrics Lifeboat emits (a renamed metric would
/// leave an alarm that never fires), and every function has its errors and throttles
/// alarms.
#[test]
fn template_alarms_watch_emitted_metrics_and_every_function() {
    let path = lifeboat_testkit::repo_root().join("template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = template.lines().collect();
    let mut watched = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "Namespace: Lifeboat" {
            let name = lines[i + 1].trim().strip_prefix("MetricName: ").unwrap();
            let metric = Metric::from_name(name);
            assert!(metric.is_some(), "alarm on {name}, which Lifeboat does not emit");
            watched.extend(metric);
        }
    }
    for must in [
        Metric::BackupsFailed,
        Metric::CopiesFailed,
        Metric::RpoBreaches,
        Metric::VerificationMismatches,
        Metric::DrillRtoOverTarget,
        Metric::DrillRpoOverTarget,
        Metric::DrStepFailures,
        Metric::ApiServerErrors,
        Metric::ExportFailures,
        Metric::RestoreTestsFailed,
    ] {
        assert!(watched.contains(&must), "no alarm on {}", must.name());
    }
    let functions: Vec<&str> = lines
        .windows(2)
        .filter(|w| w[1].trim() == "Type: AWS::Serverless::Function")
        .map(|w| w[0].trim().trim_end_matches(':'))
        .collect();
    assert!(functions.len() >= 11, "{functions:?}");
    for f in functions {
        let base = f.trim_end_matches("Function");
        for kind in ["Errors", "Throttles"] {
            let alarm = format!("  {base}{kind}Alarm:");
            assert!(
                lines.contains(&alarm.as_str()),
                "{f} has no {kind} alarm ({})",
                alarm.trim()
            );
        }
    }
    assert!(
        template.contains("MetricName: ExecutionsFailed"),
        "no alarm on failed DR executions"
    );
}

proptest! {
    /// Any mix of metrics, locations and sample counts gives valid lines that carry
    /// every value exactly once (counters summed, samples kept).
    #[test]
    fn lines_are_valid_emf_and_lose_nothing(
        records in proptest::collection::vec((0..Metric::ALL.len(), 0..3usize, 0..10_000u64), 0..400)
    ) {
        let regions = [None, Region::parse("us-west-2").ok(), Region::parse("eu-west-1").ok()];
        let mut m = Metrics::new("copy-snapshots", "run", at());
        let mut expected: BTreeMap<(Option<String>, &str), u64> = BTreeMap::new();
        for (i, r, v) in &records {
            let metric = Metric::ALL[*i];
            match &regions[*r] {
                Some(region) => m.count_in(region, metric, *v),
                None => m.count(metric, *v),
            }
            *expected.entry((regions[*r].as_ref().map(ToString::to_string), metric.name())).or_default() += v;
        }
        let sink = MemorySink::new();
        m.flush(&sink);
        let mut seen: BTreeMap<(Option<String>, &str), u64> = BTreeMap::new();
        for line in sink.lines() {
            prop_assert!(validate_emf(&line).is_empty(), "{}", line);
            let v: Value = serde_json::from_str(&line).unwrap();
            let loc = v.get("Location").and_then(Value::as_str).map(str::to_owned);
            for metric in Metric::ALL {
                if let Some(x) = v.get(metric.name()) {
                    *seen.entry((loc.clone(), metric.name())).or_default() += value_sum(x);
                }
            }
        }
        prop_assert_eq!(seen, expected);
    }
}
