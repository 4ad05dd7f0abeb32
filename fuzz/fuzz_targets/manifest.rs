//! Manifests and checkpoints read back from the backup bucket, where anyone with write
//! access could have put anything: decoding never panics, and a manifest that decodes
//! is refused against any digest but its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_domain::manifest::{Checkpoint, Manifest, sha256_hex};

fuzz_target!(|data: &[u8]| {
    if Manifest::decode(data).is_ok() {
        assert!(Manifest::decode_verified(data, &sha256_hex(data)).is_ok());
        assert!(Manifest::decode_verified(data, &sha256_hex(b"something else")).is_err());
    }
    let _ = Checkpoint::decode(data);
});
