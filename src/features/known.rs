//! Which terms the model learned: a bitset of term fingerprints, and the counter that learns it.

use super::*;

/// Bits of a term's hash that name it in [`KnownTerms`]: 2^24 bits (2 MiB), so that even
/// with a million known terms an unseen one is taken for a known one only about one time
/// in sixteen.
pub const KNOWN_TERM_BITS: u32 = 24;

/// The terms the training data held often enough for the model to have learned them,
/// learned by [`KnownTermCounter`]. Featurising leaves every other term out: the bucket of
/// an unseen term holds an untrained random row, or through a hash collision what some
/// other term learned, and neither says anything about the listing at hand. Terms are kept
/// by a fingerprint of their hash (bits the bucket index does not use), one bit each.
#[derive(Clone, PartialEq, Eq)]
pub struct KnownTerms {
    bits: Vec<u64>,
}

impl std::fmt::Debug for KnownTerms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownTerms")
            .field("terms", &self.len())
            .finish()
    }
}

impl KnownTerms {
    /// Bytes of [`KnownTerms::to_bytes`].
    pub const BYTES: usize = 1 << (KNOWN_TERM_BITS - 3);

    pub(super) fn fingerprint(hash: u64) -> usize {
        (hash >> (64 - KNOWN_TERM_BITS)) as usize
    }

    /// The word of `bits` that holds fingerprint `f`, and its mask there.
    fn slot(f: usize) -> (usize, u64) {
        (f / 64, 1 << (f % 64))
    }

    pub(super) fn contains_hash(&self, hash: u64) -> bool {
        let (word, mask) = Self::slot(Self::fingerprint(hash));
        self.bits[word] & mask != 0
    }

    /// Known fingerprints (set bits).
    pub fn len(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Little-endian bytes, for the weights file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bits.iter().flat_map(|b| b.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<KnownTerms, FeatureError> {
        if bytes.len() != Self::BYTES {
            return Err(FeatureError::Config(format!(
                "known terms: {} bytes, expected {}",
                bytes.len(),
                Self::BYTES
            )));
        }
        let bits = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut word = [0u8; 8];
                word.copy_from_slice(c);
                u64::from_le_bytes(word)
            })
            .collect();
        Ok(KnownTerms { bits })
    }
}

/// Counts in how many listings each term occurs, to learn [`KnownTerms`].
pub struct KnownTermCounter {
    /// Listing counts by fingerprint, saturating at 255.
    counts: Vec<u8>,
    /// Reused for each listing's fingerprints.
    listing: Vec<u32>,
}

impl Default for KnownTermCounter {
    fn default() -> Self {
        KnownTermCounter {
            counts: vec![0; 1 << KNOWN_TERM_BITS],
            listing: Vec::new(),
        }
    }
}

impl KnownTermCounter {
    /// Counts each distinct term of one listing once, however often the listing repeats it.
    pub fn add(&mut self, featurizer: &Featurizer, listing: &Listing) {
        let mut fingerprints = std::mem::take(&mut self.listing);
        fingerprints.clear();
        fingerprints.extend(
            featurizer
                .build_with_price(listing, None, EmitMode::Fingerprints)
                .0
                .ids,
        );
        fingerprints.sort_unstable();
        fingerprints.dedup();
        for &f in &fingerprints {
            let count = &mut self.counts[f as usize];
            *count = count.saturating_add(1);
        }
        self.listing = fingerprints;
    }

    /// Adds another counter's counts (counters of parallel chunks).
    pub fn merge(mut self, other: KnownTermCounter) -> KnownTermCounter {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
        self
    }

    /// The terms found in at least `min_listings` listings.
    pub fn known(&self, min_listings: u8) -> KnownTerms {
        let mut bits = vec![0u64; (1 << KNOWN_TERM_BITS) / 64];
        for (f, &count) in self.counts.iter().enumerate() {
            if count >= min_listings.max(1) {
                let (word, mask) = KnownTerms::slot(f);
                bits[word] |= mask;
            }
        }
        KnownTerms { bits }
    }
}
