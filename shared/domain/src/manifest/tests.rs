#![allow(clippy::unwrap_used)]
use super::*;
use proptest::prelude::*;

fn entry(key: &str, size: u64, etag: &str) -> ManifestEntry {
    ManifestEntry {
        key: key.into(),
        version_id: None,
        size,
        etag: etag.into(),
        sha256: sha256_hex(etag.as_bytes()),
        crc64nvme: "0".into(),
        storage_class: "STANDARD".into(),
        last_modified: None,
        backup_key: format!("b/{key}"),
        backup_version_id: Some("v1".into()),
        copied_in: "r1".into(),
        deleted: false,
    }
}

fn at() -> DateTime<Utc> {
    "2026-11-23T18:00:00Z".parse().unwrap()
}

#[test]
fn round_trips_and_checks_its_own_sha256() {
    let m = Manifest::new("r1", "src", "p/", at(), vec![entry("b", 2, "e2"), entry("a", 1, "e1")]);
    assert_eq!(m.entries[0].key, "a");
    assert_eq!((m.header.objects, m.header.bytes), (2, 3));
    let bytes = m.encode().unwrap();
    let sum = sha256_hex(&bytes);
    assert_eq!(Manifest::decode_verified(&bytes, &sum).unwrap(), m);
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        Manifest::decode_verified(&flipped, &sum),
        Err(ManifestError::Checksum { .. })
    ));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(Manifest::decode(b"not zstd").is_err());
    let no_header = zstd::encode_all(&b""[..], 1).unwrap();
    assert_eq!(Manifest::decode(&no_header), Err(ManifestError::NoHeader));
    let other = zstd::encode_all(&br#"{"format":"x/9","run":"r","source_bucket":"b","prefix":"","created_at":"2026-11-23T18:00:00Z","objects":0,"bytes":0}"#[..], 1).unwrap();
    assert!(matches!(Manifest::decode(&other), Err(ManifestError::Format(_))));
    assert!(Checkpoint::decode(b"\x28\xb5\x2f\xfd garbage").is_err());
}

#[test]
fn diff_sorts_keys_into_new_changed_deleted_unchanged() {
    let prev = Manifest::new(
        "r1",
        "s",
        "",
        at(),
        vec![entry("a", 1, "x"), entry("b", 1, "x"), entry("c", 1, "x")],
    );
    let mut tomb = entry("c", 1, "x");
    tomb.deleted = true;
    let cur = Manifest::new(
        "r2",
        "s",
        "",
        at(),
        vec![entry("a", 1, "x"), entry("b", 2, "y"), entry("d", 1, "x"), tomb],
    );
    let d = diff(&prev, &cur);
    assert_eq!(d.new, vec!["d"]);
    assert_eq!(d.changed, vec!["b"]);
    assert_eq!(d.deleted, vec!["c"]);
    assert_eq!(d.unchanged, vec!["a"]);
    assert_eq!(cur.header.objects, 3);
}

#[test]
fn unchanged_needs_same_size_etag_and_version() {
    let mut e = entry("a", 5, "e");
    let listed = ListedObject {
        key: "a".into(),
        version_id: None,
        size: 5,
        etag: "e".into(),
        storage_class: "STANDARD".into(),
        last_modified: None,
    };
    assert!(e.unchanged(&listed));
    assert!(!e.unchanged(&ListedObject {
        size: 6,
        ..listed.clone()
    }));
    assert!(!e.unchanged(&ListedObject {
        etag: "f".into(),
        ..listed.clone()
    }));
    e.version_id = Some("1".into());
    assert!(!e.unchanged(&ListedObject {
        version_id: Some("2".into()),
        ..listed.clone()
    }));
    e.deleted = true;
    assert!(!e.unchanged(&listed));
}

#[test]
fn names_are_deterministic_and_keys_fit() {
    let r = run_name("gold", "My.Bucket", "photos/", "20261123-1800");
    assert!(r.starts_with("lb-gold-my-bucket-"));
    assert_eq!(r, run_name("gold", "My.Bucket", "photos/", "20261123-1800"));
    assert_ne!(r, run_name("gold", "My.Bucket", "videos/", "20261123-1800"));
    let long = "k".repeat(1024);
    assert!(backup_key("b", "", &r, &long).len() <= MAX_KEY_LEN);
    assert!(backup_key("b", "", &r, "x/y").ends_with("/x/y"));
}

#[test]
fn json_lines_of_typical_listings_compress_well() {
    let entries: Vec<_> = (0..2000)
        .map(|i| {
            let mut e = entry(
                &format!("photos/2026/11/{i:06}.jpg"),
                100_000 + i,
                &format!("{:032x}", i * 7919),
            );
            e.backup_key = format!("lifeboat/src/abcd1234/data/r1/photos/2026/11/{i:06}.jpg");
            e.crc64nvme = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            e
        })
        .collect();
    let m = Manifest::new("r1", "src", "", at(), entries);
    let raw = m.to_jsonl().len();
    let packed = m.encode().unwrap().len();
    // Hashes are incompressible; keys, classes and field names are not.
    eprintln!("manifest of 2000 objects: {raw} bytes of JSON lines, {packed} compressed");
    assert!(packed * 10 < raw * 6, "raw {raw} packed {packed}");
}

#[test]
fn shard_parts_round_trip_and_check_their_sha256() {
    let p = ShardPart::new(
        "r1",
        2,
        "p/b/",
        Some("p/d/"),
        vec![entry("p/c/1", 1, "e"), entry("p/b/1", 2, "e")],
    );
    assert_eq!(p.entries[0].key, "p/b/1");
    let bytes = p.encode().unwrap();
    let sum = sha256_hex(&bytes);
    assert_eq!(ShardPart::decode_verified(&bytes, &sum).unwrap(), p);
    let m = Manifest::new("r1", "b", "p/", at(), vec![]).encode().unwrap();
    assert!(matches!(
        ShardPart::decode_verified(&m, &sha256_hex(&m)),
        Err(ManifestError::Format(_) | ManifestError::Line { .. })
    ));
    assert!(matches!(
        ShardPart::decode_verified(&bytes, &sha256_hex(b"other")),
        Err(ManifestError::Checksum { .. })
    ));
    assert!(shard_part_key("b", "p/", "r1", 2).starts_with(&shard_parts_dir("b", "p/", "r1")));
    assert_ne!(
        shard_checkpoint_key("b", "p/", "r1", 2),
        checkpoint_key("b", "p/", "r1")
    );
}

proptest! {
    #[test]
    fn any_manifest_round_trips(keys in proptest::collection::btree_set("[a-zA-Z0-9/._ -]{1,40}", 0..40), sizes in proptest::collection::vec(0u64..u64::MAX, 40)) {
        let entries: Vec<_> = keys.iter().zip(sizes.iter()).map(|(k, s)| entry(k, *s, "e")).collect();
        let m = Manifest::new("r", "b", "p", at(), entries);
        let bytes = m.encode().unwrap();
        prop_assert_eq!(Manifest::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn diff_partitions_every_key(a in proptest::collection::btree_map("[a-e]{1,2}", 0u64..3, 0..20), b in proptest::collection::btree_map("[a-e]{1,2}", 0u64..3, 0..20)) {
        let m1 = Manifest::new("r1", "b", "", at(), a.iter().map(|(k, s)| entry(k, *s, "e")).collect());
        let m2 = Manifest::new("r2", "b", "", at(), b.iter().map(|(k, s)| entry(k, *s, "e")).collect());
        let d = diff(&m1, &m2);
        prop_assert_eq!(d.new.len() + d.changed.len() + d.unchanged.len(), b.len());
        prop_assert_eq!(d.deleted.len() + d.changed.len() + d.unchanged.len(), a.len());
    }
}
