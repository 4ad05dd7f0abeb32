//! S3 data-protection figures: SHA-256 throughput of the verification hasher against
//! `openssl speed -evp sha256` on the same machine, CRC64/NVME throughput, and the peak
//! memory of hashing a multi-GB streamed object (the verification path) against a small
//! one. Each is measured in a child process of its own (`--child s3-hash`,
//! `--child s3-memory --bytes N`).

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;
use lifeboat::object_store::{StreamHasher, digest};
use lifeboat_ports::objects::ObjectBody;
use serde_json::{Value, json};

use super::{Figure, Result, err, memory_kb, num, run_child};

/// Bytes hashed per throughput run, in chunks of `CHUNK` (what a streamed GET delivers).
const HASHED: usize = 1 << 30;
const CHUNK: usize = 1 << 20;
const RUNS: usize = 3;
/// openssl's buffer size for the peer figure (its largest default block).
const OPENSSL_BLOCK: &str = "16384";

/// Child: `s3-hash` or `s3-memory`.
pub fn child(args: &[String]) -> Result<Value> {
    match args.first().map(String::as_str) {
        Some("s3-hash") => Ok(hash_child()),
        Some("s3-memory") => {
            let bytes = super::arg(args, "--bytes", 4 << 30)?;
            memory_child(bytes as u64)
        }
        other => Err(err(format!("unknown S3 child {other:?}"))),
    }
}

fn best_gbps(mut f: impl FnMut(&[u8])) -> f64 {
    let buf: Vec<u8> = (0..CHUNK).map(|i| (i * 131 % 251) as u8).collect();
    let mut best = 0.0f64;
    for _ in 0..RUNS {
        let started = Instant::now();
        for _ in 0..HASHED / CHUNK {
            f(&buf);
        }
        best = best.max(HASHED as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn hash_child() -> Value {
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    let sha_gbps = best_gbps(|c| sha2::Digest::update(&mut sha, c));
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
    let crc_gbps = best_gbps(|c| crc.update(c));
    let mut both = StreamHasher::default();
    let both_gbps = best_gbps(|c| both.update(c));
    json!({
        "sha256_gbps": sha_gbps,
        "crc64nvme_gbps": crc_gbps,
        "both_gbps": both_gbps,
        "sha_ni": std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" sha_ni")),
    })
}

fn memory_child(bytes: u64) -> Result<Value> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let (hwm_before, _) = memory_kb()?;
    let started = Instant::now();
    let digests = rt.block_on(async move {
        let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 256) as u8).collect();
        let n = bytes.div_ceil(CHUNK as u64);
        let chunks = futures::stream::iter(0..n).map(move |_| Ok(chunk.clone()));
        digest(ObjectBody {
            version_id: None,
            size: bytes,
            etag: None,
            storage_class: None,
            last_modified: None,
            checksum_sha256: None,
            chunks: Box::pin(chunks),
        })
        .await
    })?;
    let (hwm_after, _) = memory_kb()?;
    Ok(json!({
        "bytes": digests.bytes,
        "seconds": started.elapsed().as_secs_f64(),
        "vm_hwm_before_kb": hwm_before,
        "vm_hwm_after_kb": hwm_after,
    }))
}

/// `openssl speed -evp sha256` at its 16 KiB block, in GB/s.
fn openssl_sha256() -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-seconds", "3", "-bytes", OPENSSL_BLOCK])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The result line: `sha256  <k-bytes/s>k` (1000s of bytes per second).
    let line = text.lines().rev().find(|l| l.trim_start().starts_with("sha256"))?;
    let k: f64 = line.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(k * 1000.0 / 1e9)
}

/// Runs the children and returns the figures.
pub fn figures() -> Result<Vec<Figure>> {
    eprintln!("[s3] hashing throughput, openssl peer, and peak memory of a streamed 4 GiB object…");
    let hash = run_child(&["s3-hash"])?;
    let openssl = openssl_sha256();
    let sha = num(&hash, "sha256_gbps")?;
    let crc = num(&hash, "crc64nvme_gbps")?;
    let both = num(&hash, "both_gbps")?;
    let big = run_child(&["s3-memory", "--bytes", &(4u64 << 30).to_string()])?;
    let small = run_child(&["s3-memory", "--bytes", &(64u64 << 20).to_string()])?;
    let big_mb = num(&big, "vm_hwm_after_kb")? / 1024.0;
    let small_mb = num(&small, "vm_hwm_after_kb")? / 1024.0;
    let sha_ratio = openssl.map(|o| sha / o);
    Ok(vec![
        Figure {
            name: "S3 verify: SHA-256 throughput".into(),
            value: Some(sha),
            unit: "GB/s",
            peer: format!("openssl speed -evp sha256 ({OPENSSL_BLOCK} B blocks)"),
            peer_value: openssl,
            target: ">= 0.95x openssl".into(),
            met: sha_ratio.map(|r| r >= 0.95),
            notes: vec![format!(
                "sha2 0.11 picks SHA-NI at run time; CPU has sha_ni: {}; 1 MiB chunks, best of {RUNS} x 1 GiB",
                hash["sha_ni"]
            )],
        },
        Figure {
            name: "S3 verify: CRC64/NVME throughput".into(),
            value: Some(crc),
            unit: "GB/s",
            peer: "target".into(),
            peer_value: Some(8.0),
            target: ">= 8 GB/s".into(),
            met: Some(crc >= 8.0),
            notes: vec!["crc-fast (SIMD carry-less multiplication)".into()],
        },
        Figure {
            name: "S3 verify: SHA-256 + CRC64/NVME in one pass (the verification hasher)".into(),
            value: Some(both),
            unit: "GB/s",
            peer: "SHA-256 alone, same buffers, same run".into(),
            peer_value: Some(sha),
            // Costing at most 1.1x SHA-256 alone: at least 1/1.1 of its throughput.
            target: "cost <= 1.1x SHA-256 alone".into(),
            met: Some(both * 1.1 >= sha),
            notes: vec![format!("one pass over 1 MiB chunks, best of {RUNS} x 1 GiB")],
        },
        Figure {
            name: "S3 verify: peak memory hashing a streamed 4 GiB object".into(),
            value: Some(big_mb),
            unit: "MB (VmHWM)",
            peer: "same, 64 MiB object".into(),
            peer_value: Some(small_mb),
            target: "constant (ratio ~1)".into(),
            met: Some(big_mb <= small_mb * 1.1 + 4.0),
            notes: vec![format!(
                "the verify-backups hashing path over an in-process stream of 1 MiB chunks ({:.1} s for 4 GiB); network not included",
                num(&big, "seconds")?
            )],
        },
    ])
}
