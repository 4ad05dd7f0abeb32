//! The SHA-256 tree hash Glacier vaults check every upload against, computed by Lifeboat.
//!
//! The bytes are cut into 1 MiB leaves (the last one may be shorter) and each leaf is
//! hashed with SHA-256. Then, level by level, adjacent hashes are paired and the
//! concatenation of each pair is hashed again; an odd hash at the end of a level is carried
//! up unchanged; the last hash left is the tree hash. Up to 1 MiB it is the plain SHA-256
//! of the bytes (and the SHA-256 of nothing for no bytes).
//!
//! [`TreeHasher`] takes the bytes in chunks of any size and keeps at most one pending hash
//! per level (constant memory: 64 levels cover any size). [`PartHasher`] also gives the
//! tree hash and byte range of each part of a multipart upload: with a part size that is a
//! power-of-two number of MiB, the parts' tree hashes combine (as nodes of one level) into
//! the archive's tree hash.

use std::fmt;

use sha2::{Digest, Sha256};

use super::manifest::hex;

/// One MiB: the leaf size, and the unit of part sizes.
pub const MIB: u64 = 1024 * 1024;
const LEAF: usize = 1024 * 1024;
/// The largest part Glacier accepts in a multipart upload (4 GiB).
pub const MAX_PART_SIZE: u64 = 4 * 1024 * MIB;

/// A SHA-256 tree hash (or one node of the tree).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeHash([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeHashError {
    #[error("{0:.80?} is not a SHA-256 tree hash (64 hex digits)")]
    Malformed(String),
    #[error("part size {0} is not a power-of-two number of MiB from 1 MiB to 4 GiB")]
    PartSize(u64),
}

impl TreeHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as Glacier spells it (`x-amz-sha256-tree-hash`, `SHA256TreeHash`).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, TreeHashError> {
        let malformed = || TreeHashError::Malformed(s.to_owned());
        if s.len() != 64 || !s.is_ascii() {
            return Err(malformed());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| malformed())?;
        }
        Ok(Self(out))
    }

    fn pair(left: &Self, right: &Self) -> Self {
        let mut h = Sha256::new();
        h.update(left.0);
        h.update(right.0);
        Self(h.finalize().into())
    }

    fn of_leaf(leaf: Sha256) -> Self {
        Self(leaf.finalize().into())
    }
}

impl fmt::Display for TreeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TreeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreeHash({})", self.to_hex())
    }
}

/// The root over the nodes of one level, as Glacier builds it: adjacent pairs hashed
/// together, an odd last node carried up, until one node is left. `None` for no nodes.
pub fn combine(nodes: &[TreeHash]) -> Option<TreeHash> {
    let mut level: Vec<TreeHash> = nodes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .filter_map(|pair| pair.iter().copied().reduce(|left, right| TreeHash::pair(&left, &right)))
            .collect();
    }
    level.first().copied()
}

/// The tree hash of bytes held in memory.
pub fn tree_hash(bytes: &[u8]) -> TreeHash {
    let mut h = TreeHasher::new();
    h.update(bytes);
    h.finish()
}

/// Streaming tree hash: feed chunks of any size, in order.
#[derive(Clone)]
pub struct TreeHasher {
    leaf: Sha256,
    leaf_len: usize,
    /// Complete subtrees not yet paired, as (level, hash); levels strictly decrease from
    /// the bottom of the stack to the top, like the bits of a binary counter.
    pending: Vec<(u32, TreeHash)>,
    bytes: u64,
}

impl fmt::Debug for TreeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeHasher")
            .field("bytes", &self.bytes)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Default for TreeHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeHasher {
    pub fn new() -> Self {
        Self {
            leaf: Sha256::new(),
            leaf_len: 0,
            pending: Vec::new(),
            bytes: 0,
        }
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (LEAF - self.leaf_len).min(data.len());
            self.leaf.update(&data[..take]);
            self.leaf_len += take;
            self.bytes += take as u64;
            data = &data[take..];
            if self.leaf_len == LEAF {
                self.push_leaf();
            }
        }
    }

    fn push_leaf(&mut self) {
        let leaf = std::mem::replace(&mut self.leaf, Sha256::new());
        self.leaf_len = 0;
        let mut node = TreeHash::of_leaf(leaf);
        let mut level = 0;
        // Two complete subtrees of the same level are exactly a pair of the level-by-level
        // construction: join them at once.
        while let Some((top, left)) = self.pending.last().copied()
            && top == level
        {
            self.pending.pop();
            node = TreeHash::pair(&left, &node);
            level += 1;
        }
        self.pending.push((level, node));
    }

    /// The tree hash of everything fed.
    pub fn finish(mut self) -> TreeHash {
        if self.leaf_len > 0 || self.pending.is_empty() {
            self.push_leaf();
        }
        // What is left are the complete subtrees on the left and ever smaller ones to the
        // right; Glacier carries each odd node up until it meets its left neighbour, which
        // is folding from the right.
        let Some((_, mut root)) = self.pending.pop() else {
            // Not reached: a leaf was just pushed. The hash of no bytes, to be total.
            return TreeHash(Sha256::digest([]).into());
        };
        while let Some((_, left)) = self.pending.pop() {
            root = TreeHash::pair(&left, &root);
        }
        root
    }
}

/// A multipart upload's part size: a power-of-two number of MiB, from 1 MiB to 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSize(u64);

impl PartSize {
    /// 1 MiB, the smallest part.
    pub const MIN: Self = Self(MIB);

    pub fn new(bytes: u64) -> Result<Self, TreeHashError> {
        if (MIB..=MAX_PART_SIZE).contains(&bytes) && bytes.is_power_of_two() {
            Ok(Self(bytes))
        } else {
            Err(TreeHashError::PartSize(bytes))
        }
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// One part of a multipart upload: its byte range in the archive (inclusive, as Glacier's
/// `Content-Range: bytes <first>-<last>/*` says it) and its own tree hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHash {
    pub first: u64,
    pub last: u64,
    pub tree_hash: TreeHash,
}

impl PartHash {
    /// The part's size in bytes.
    pub fn size(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// Streaming tree hashes of the parts of a multipart upload and of the whole archive.
#[derive(Debug, Clone)]
pub struct PartHasher {
    size: PartSize,
    current: TreeHasher,
    start: u64,
    parts: Vec<PartHash>,
}

impl PartHasher {
    pub fn new(size: PartSize) -> Self {
        Self {
            size,
            current: TreeHasher::new(),
            start: 0,
            parts: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.size.bytes() - self.current.bytes();
            let take = usize::try_from(room).map_or(data.len(), |r| r.min(data.len()));
            self.current.update(&data[..take]);
            data = &data[take..];
            if self.current.bytes() == self.size.bytes() {
                self.close_part();
            }
        }
    }

    fn close_part(&mut self) {
        let part = std::mem::take(&mut self.current);
        let len = part.bytes();
        self.parts.push(PartHash {
            first: self.start,
            last: self.start + len - 1,
            tree_hash: part.finish(),
        });
        self.start += len;
    }

    /// The archive's tree hash and its parts, in order (no parts for no bytes).
    pub fn finish(mut self) -> (TreeHash, Vec<PartHash>) {
        if self.current.bytes() > 0 {
            self.close_part();
        }
        let nodes: Vec<TreeHash> = self.parts.iter().map(|p| p.tree_hash).collect();
        let root = combine(&nodes).unwrap_or_else(|| tree_hash(&[]));
        (root, self.parts)
    }
}

/// The parts of `bytes` (held in memory) for a multipart upload in parts of `size`, with
/// the archive's tree hash.
pub fn parts(bytes: &[u8], size: PartSize) -> (TreeHash, Vec<PartHash>) {
    let mut h = PartHasher::new(size);
    h.update(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Deterministic test bytes: byte `i` is `(31 i + 7) mod 251`.
    fn data(n: u64) -> Vec<u8> {
        (0..n).map(|i| u8::try_from((i * 31 + 7) % 251).unwrap()).collect()
    }

    /// The definition, written out: every leaf hashed, then the levels combined.
    fn reference(bytes: &[u8]) -> TreeHash {
        let leaves: Vec<TreeHash> = bytes.chunks(LEAF).map(|c| TreeHash(Sha256::digest(c).into())).collect();
        combine(&leaves).unwrap_or_else(|| TreeHash(Sha256::digest([]).into()))
    }

    // Expected values computed independently with botocore 1.44.5 (the project venv's
    // boto3), `botocore.utils.calculate_tree_hash(io.BytesIO(data(n)))`, with `data` as
    // above: `bytes(((i * 31 + 7) % 251) for i in range(n))`.
    const VECTORS: [(u64, &str); 9] = [
        (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (1, "ca358758f6d27e6cf45272937977a748fd88391db679ceda7dc7bf1f005ee879"),
        (
            MIB - 1,
            "14446dd49471dd263c478a8bd520ff2c4838ba97b15b4b53aaec61356f27b038",
        ),
        (MIB, "1c59b8670027384143781a8a8bff2f3b44bd8818d0f53b13b064c2375a1afe38"),
        (
            MIB + 1,
            "bdbb3466665ed8cbe8fc26d6cd3ee2d7c88f427bef2982246317b76917649519",
        ),
        (
            2 * MIB,
            "fef73e6be8f9dd6f083b04c99d6fd732691441f983b2305c8137cd5cd9ace701",
        ),
        (
            3 * MIB,
            "81a3077073609f2b1b874527a1643f699ea522b188a05975fbf0a07009ddd50e",
        ),
        (
            5 * MIB + MIB / 2,
            "db9164c735110d52962bdc462f0615dce8a6057a3dacafa14d0faf9fc730de30",
        ),
        (
            7 * MIB + 13,
            "420f167308719519b0c12f2eaa42d14d7347268c4221f026f4823cec8cc214a4",
        ),
    ];

    #[test]
    fn matches_botocore_for_every_shape_of_tree() {
        for (n, expected) in VECTORS {
            let bytes = data(n);
            assert_eq!(tree_hash(&bytes).to_hex(), expected, "{n} bytes");
            assert_eq!(reference(&bytes).to_hex(), expected, "{n} bytes (reference)");
        }
    }

    #[test]
    fn up_to_one_mib_it_is_the_plain_sha256() {
        for n in [0, 1, 4096, MIB - 1, MIB] {
            let bytes = data(n);
            assert_eq!(tree_hash(&bytes).to_hex(), hex(&Sha256::digest(&bytes)), "{n} bytes");
        }
        assert_ne!(tree_hash(&data(MIB + 1)).to_hex(), hex(&Sha256::digest(data(MIB + 1))));
    }

    #[test]
    fn parts_of_a_power_of_two_mib_combine_into_the_archive_hash() {
        // botocore 1.44.5, the tree hash of each 2 MiB slice of data(5.5 MiB).
        let expected = [
            (
                0,
                2 * MIB - 1,
                "fef73e6be8f9dd6f083b04c99d6fd732691441f983b2305c8137cd5cd9ace701",
            ),
            (
                2 * MIB,
                4 * MIB - 1,
                "15c8dd69c646fd8a91d0b73686b1aef23abec96a2889f81442603be92baa55ae",
            ),
            (
                4 * MIB,
                5 * MIB + MIB / 2 - 1,
                "ea9a945010087805e8604f76341611aa997f0a1c7b802f9c27889baac9a16b37",
            ),
        ];
        let bytes = data(5 * MIB + MIB / 2);
        let (root, got) = parts(&bytes, PartSize::new(2 * MIB).unwrap());
        assert_eq!(root.to_hex(), VECTORS[7].1);
        let got: Vec<(u64, u64, String)> = got.iter().map(|p| (p.first, p.last, p.tree_hash.to_hex())).collect();
        let expected: Vec<(u64, u64, String)> = expected.iter().map(|(a, b, h)| (*a, *b, (*h).to_owned())).collect();
        assert_eq!(got, expected);
        // One part for a body no larger than the part size; none for no bytes.
        let (root, one) = parts(&data(MIB), PartSize::new(MIB).unwrap());
        assert_eq!((one.len(), root.to_hex()), (1, VECTORS[3].1.to_owned()));
        assert!(parts(&[], PartSize::new(MIB).unwrap()).1.is_empty());
    }

    #[test]
    fn part_sizes_are_powers_of_two_mib() {
        for ok in [MIB, 2 * MIB, 64 * MIB, MAX_PART_SIZE] {
            assert!(PartSize::new(ok).is_ok(), "{ok}");
        }
        for bad in [0, MIB / 2, 3 * MIB, 2 * MAX_PART_SIZE, MIB + 1] {
            assert_eq!(PartSize::new(bad), Err(TreeHashError::PartSize(bad)));
        }
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let h = tree_hash(b"lifeboat");
        assert_eq!(TreeHash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(TreeHash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
        for bad in ["", "abc", &"g".repeat(64), &"é".repeat(32), &"a".repeat(66)] {
            assert!(TreeHash::from_hex(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// However the bytes are cut into chunks, the hashes are the same (and equal the
        /// definition); the part hashes combine into the same root.
        #[test]
        fn chunking_does_not_change_the_hash(
            len in 0u64..(3 * MIB + 5),
            cuts in proptest::collection::vec(0u64..(3 * MIB + 5), 0..12),
            part_mib in 0u32..3,
        ) {
            let bytes = data(len);
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < len).map(|c| usize::try_from(c).unwrap()).collect();
            cuts.sort_unstable();
            let mut h = TreeHasher::new();
            let mut p = PartHasher::new(PartSize::new(MIB << part_mib).unwrap());
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                h.update(&bytes[at..cut]);
                p.update(&bytes[at..cut]);
                at = cut;
            }
            prop_assert_eq!(h.bytes(), len);
            let root = h.finish();
            prop_assert_eq!(root, reference(&bytes));
            let (part_root, parts) = p.finish();
            prop_assert_eq!(part_root, root);
            prop_assert_eq!(parts.iter().map(PartHash::size).sum::<u64>(), len);
        }
    }
}
