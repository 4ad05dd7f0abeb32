//! The application layer's helpers against the in-memory fakes: alert dedupe, the leased
//! lifecycle write and token use.

#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod alerting {
    use chrono::Duration;
    use lifeboat::alerting::DedupeConfig;
    use lifeboat_domain::{Alert, AlertKind, Region, Severity};
    use lifeboat_ports::{Catalog, Clock, PortError};
    use lifeboat_testkit::Fakes;

    fn alert(fakes: &Fakes, key: &str, resource: &str) -> Alert {
        Alert::new(
            AlertKind::RpoBreach,
            Severity::High,
            "RPO breach",
            key,
            fakes.clock.now(),
        )
        .resource(resource)
        .location(&Region::parse("us-west-2").unwrap())
    }

    fn fakes() -> Fakes {
        Fakes::new("2026-11-23T18:00:00Z".parse().unwrap())
    }

    #[tokio::test]
    async fn without_a_window_each_distinct_event_is_sent_once() {
        let f = fakes();
        let a = f.ports().alerter();
        assert!(a.raise(alert(&f, "e1", "db1"), "r").await.unwrap());
        assert!(!a.raise(alert(&f, "e1", "db1"), "r").await.unwrap());
        assert!(a.raise(alert(&f, "e2", "db1"), "r").await.unwrap());
        assert_eq!(f.notifier.alerts().len(), 2);
    }

    #[tokio::test]
    async fn sent_alerts_are_logged_newest_first_and_suppressed_ones_are_not() {
        let f = fakes();
        let a = f.ports().alerter().with_window(Some(Duration::hours(1)));
        let start = f.clock.now();
        assert!(a.raise(alert(&f, "e1", "db1"), "r").await.unwrap());
        f.clock.advance(Duration::minutes(5));
        assert!(!a.raise(alert(&f, "e2", "db1"), "r").await.unwrap()); // suppressed
        assert!(a.raise(alert(&f, "e3", "db2"), "r").await.unwrap());
        let log = f.catalog.recent_alerts(start, f.clock.now(), 10).await.unwrap();
        let keys: Vec<&str> = log.iter().map(|(_, a)| a.dedupe_key.as_str()).collect();
        assert_eq!(keys, ["rpo-breach#e3", "rpo-breach#e1"]);
        assert_eq!(log[0].0, f.clock.now());
        assert_eq!(log[1].1.run_id, "r");
        // A period before them, or a limit, cuts the list.
        assert!(
            f.catalog
                .recent_alerts(start - Duration::hours(2), start - Duration::hours(1), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(f.catalog.recent_alerts(start, f.clock.now(), 1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn within_the_window_the_same_alert_for_the_same_resource_is_sent_once() {
        let f = fakes();
        let a = f.ports().alerter().with_window(Some(Duration::hours(1)));
        assert!(a.raise(alert(&f, "e1", "db1"), "r").await.unwrap());
        f.clock.advance(Duration::minutes(20));
        // Another event of the same kind about the same resource: suppressed.
        assert!(!a.raise(alert(&f, "e2", "db1"), "r").await.unwrap());
        // Another resource is not affected.
        assert!(a.raise(alert(&f, "e2b", "db2"), "r").await.unwrap());
        // Once the window has passed since the last one sent, it is sent again.
        f.clock.advance(Duration::minutes(41));
        assert!(a.raise(alert(&f, "e3", "db1"), "r").await.unwrap());
        // A suppressed event stays handled: replaying it later sends nothing.
        f.clock.advance(Duration::hours(2));
        assert!(!a.raise(alert(&f, "e2", "db1"), "r").await.unwrap());
        let sent: Vec<_> = f.notifier.alerts().into_iter().map(|a| a.dedupe_key).collect();
        assert_eq!(sent, ["rpo-breach#e1", "rpo-breach#e2b", "rpo-breach#e3"]);
    }

    #[tokio::test]
    async fn a_failed_publish_frees_the_window_so_the_alert_is_not_lost() {
        let f = fakes();
        let a = f.ports().alerter().with_window(Some(Duration::hours(1)));
        f.notifier.fail_next(PortError::Unavailable("sns down".into()));
        assert!(a.raise(alert(&f, "e1", "db1"), "r").await.is_err());
        assert!(a.raise(alert(&f, "e1", "db1"), "r").await.unwrap());
        assert_eq!(f.notifier.alerts().len(), 1);
    }

    #[test]
    fn the_window_is_configured_by_duration() {
        let get = |v: &'static str| move |k: &str| (k == "ALERT_DEDUPE_WINDOW").then(|| v.to_owned());
        assert_eq!(DedupeConfig::from_lookup(|_| None).unwrap().window, None);
        assert_eq!(DedupeConfig::from_lookup(get("0")).unwrap().window, None);
        assert_eq!(
            DedupeConfig::from_lookup(get("90m")).unwrap().window,
            Some(Duration::minutes(90))
        );
        assert!(DedupeConfig::from_lookup(get("soon")).is_err());
        assert!(DedupeConfig::from_lookup(get("40days")).is_err());
    }
}

mod object_store {
    use chrono::{TimeZone, Utc};
    use lifeboat::object_store::{lifecycle_lease, replace_owned_rules_leased};
    use lifeboat_domain::tiering::{LifecycleRule, S3Class, TierStep};
    use lifeboat_ports::{Catalog, Clock, PortError};
    use lifeboat_testkit::objects::InMemoryObjectStore;
    use lifeboat_testkit::{InMemoryCatalog, ManualClock};

    fn rule(id: &str) -> LifecycleRule {
        LifecycleRule {
            id: id.to_owned(),
            prefix: "p/".to_owned(),
            larger_than: 131_072,
            transitions: vec![TierStep {
                after_days: 30,
                class: S3Class::GlacierIr,
            }],
        }
    }

    fn world() -> (InMemoryObjectStore, InMemoryCatalog, ManualClock) {
        let store = InMemoryObjectStore::new();
        store.create_bucket("backups", true);
        store.add_lifecycle_rule("backups", rule("someone-else keep"));
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        (store, InMemoryCatalog::new(), ManualClock::new(now))
    }

    #[tokio::test]
    async fn the_owned_rules_are_replaced_under_the_lease_and_the_lease_is_released() {
        let (store, catalog, clock) = world();
        let n = replace_owned_rules_leased(&store, &catalog, &clock, "backups", "mine ", &[rule("mine a")], "run-1")
            .await
            .unwrap();
        assert_eq!(n, 2);
        let ids: Vec<String> = store.lifecycle_rules("backups").into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["someone-else keep", "mine a"]);
        // Released: another writer takes it at once.
        let now = clock.now();
        assert!(
            catalog
                .acquire_lease(
                    &lifecycle_lease("backups"),
                    "other",
                    now + chrono::Duration::seconds(5),
                    now
                )
                .await
                .unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_cannot_get_the_lease_changes_nothing_and_is_throttled() {
        let (store, catalog, clock) = world();
        let now = clock.now();
        assert!(
            catalog
                .acquire_lease(
                    &lifecycle_lease("backups"),
                    "other",
                    now + chrono::Duration::seconds(60),
                    now
                )
                .await
                .unwrap()
        );
        let err = replace_owned_rules_leased(&store, &catalog, &clock, "backups", "mine ", &[rule("mine a")], "run-1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, PortError::Throttled(ref m) if m.contains("lifecycle#backups")),
            "{err}"
        );
        let ids: Vec<String> = store.lifecycle_rules("backups").into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["someone-else keep"]);
        // Once the holder's lease has expired (it crashed), the writer gets through.
        clock.advance(chrono::Duration::seconds(61));
        replace_owned_rules_leased(&store, &catalog, &clock, "backups", "mine ", &[rule("mine a")], "run-1")
            .await
            .unwrap();
        assert_eq!(store.lifecycle_rules("backups").len(), 2);
    }
}

mod confirm {
    use chrono::{DateTime, Utc};
    use lifeboat::confirm::consume;
    use lifeboat_domain::confirm::*;
    use lifeboat_testkit::InMemoryCatalog;
    use serde_json::json;

    fn key() -> SigningKey {
        SigningKey::new(vec![7; 32]).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_token_is_used_once() {
        let catalog = InMemoryCatalog::default();
        let req = json!({"failover": "plan-a"});
        let (tok, _) = issue(
            &key(),
            &request_digest(&req),
            "p",
            t("2026-11-23T03:00:00Z"),
            chrono::Duration::minutes(5),
            "n-1",
        )
        .unwrap();
        let claims = verify(&key(), &tok, &request_digest(&req), "p", t("2026-11-23T03:01:00Z")).unwrap();
        consume(&catalog, &claims, t("2026-11-23T03:01:00Z")).await.unwrap();
        let again = consume(&catalog, &claims, t("2026-11-23T03:02:00Z")).await;
        assert_eq!(again, Err(TokenError::Reused));
    }
}

mod verify {
    use std::sync::Arc;

    use lifeboat::object_store::StreamHasher;
    use lifeboat::verify::{Problem, check_each};
    use lifeboat_domain::manifest::ManifestEntry;
    use lifeboat_ports::objects::{ObjectStore, WriteOptions};
    use lifeboat_testkit::objects::{InMemoryObjectStore, ObjectOp};

    fn entry(store: &InMemoryObjectStore, key: &str) -> ManifestEntry {
        let data = format!("bytes of {key}").into_bytes();
        let version = store.insert("vault", key, &data);
        let mut h = StreamHasher::default();
        h.update(&data);
        let d = h.finish();
        ManifestEntry {
            key: key.to_owned(),
            version_id: None,
            size: d.bytes,
            etag: String::new(),
            sha256: d.sha256,
            crc64nvme: d.crc64nvme,
            storage_class: "STANDARD".into(),
            last_modified: None,
            backup_key: key.to_owned(),
            backup_version_id: Some(version),
            copied_in: "run-1".into(),
            deleted: false,
        }
    }

    #[tokio::test]
    async fn one_get_per_object_finds_a_key_written_over_and_reads_the_named_version() {
        let store = Arc::new(InMemoryObjectStore::new());
        store.create_bucket("vault", true);
        let entries: Vec<ManifestEntry> = (0..300)
            .map(|i| entry(&store, &format!("lifeboat/s3/photos/p/{i:05}.bin")))
            .collect();
        store.insert("vault", &entries[150].backup_key, b"written behind Lifeboat's back");
        // A delete marker over another key: its named version is still what a restore reads.
        store.delete("vault", &entries[151].backup_key, None).await.unwrap();
        let shared: Arc<dyn ObjectStore> = store.clone();
        let checks = check_each(&shared, "vault", entries.iter().collect()).await.unwrap();
        let found: Vec<_> = checks
            .iter()
            .flat_map(|c| c.problems.iter().map(move |p| (c.key.as_str(), *p)))
            .collect();
        assert_eq!(found, [(entries[150].key.as_str(), Problem::Replaced)]);
        assert!(checks.iter().all(|c| c.bytes > 0), "every named version was read");
        // One GET each; a second for the two keys whose current version is not the named one.
        assert_eq!(store.calls(ObjectOp::Get), 300 + 2);
        assert_eq!(store.calls(ObjectOp::Head), 0);
    }

    #[tokio::test]
    async fn an_object_whose_bytes_disagree_with_the_stored_checksum_is_corrupted_and_store_checksum() {
        let store = Arc::new(InMemoryObjectStore::new());
        store.create_bucket("vault", true);
        let mut e = entry(&store, "lifeboat/s3/photos/p/a.bin");
        // Written as Lifeboat writes its copies: S3 stores a SHA-256 of them.
        let written = store
            .put(
                "vault",
                &e.backup_key,
                b"bytes of lifeboat/s3/photos/p/a.bin".to_vec(),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        e.backup_version_id = written.version_id;
        store.rot("vault", &e.backup_key, 2);
        let shared: Arc<dyn ObjectStore> = store.clone();
        let checks = check_each(&shared, "vault", vec![&e]).await.unwrap();
        assert_eq!(checks[0].problems, [Problem::Corrupted, Problem::StoreChecksum]);
        assert_eq!(
            checks[0].bytes, e.size,
            "every byte was read before the store's check failed"
        );
    }
}
