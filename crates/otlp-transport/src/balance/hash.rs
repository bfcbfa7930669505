//! Rendezvous (highest random weight) hashing of routing keys onto backends.
//!
//! Each key goes to the backend whose `xxh3(key, seed = xxh3(backend name))`
//! is highest. Adding a backend moves only the keys it now wins (1/n of them
//! on average); removing one moves only the keys it owned, to their second
//! choice. The hash is xxh3, specified and stable across processes, versions
//! and platforms, so every agent routes one trace id to the same gateway.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// A set of backends, by name, to hash keys onto.
#[derive(Clone, Debug, Default)]
pub struct Rendezvous {
    seeds: Vec<u64>,
}

impl Rendezvous {
    /// A set of the named backends, in this order (the index [`pick`](Self::pick) returns).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            seeds: names.into_iter().map(|n| xxh3_64(n.as_bytes())).collect(),
        }
    }

    /// How many backends.
    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// The index of the backend that owns `key`, among those `skip` does not
    /// exclude; `None` when none is left.
    pub fn pick(&self, key: &[u8], skip: impl Fn(usize) -> bool) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, &seed) in self.seeds.iter().enumerate() {
            if skip(i) {
                continue;
            }
            let score = xxh3_64_with_seed(key, seed);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random 16-byte trace ids (splitmix64).
    fn trace_ids(n: usize, mut state: u64) -> Vec<[u8; 16]> {
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..n)
            .map(|_| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&next().to_le_bytes());
                id[8..].copy_from_slice(&next().to_le_bytes());
                id
            })
            .collect()
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://10.0.0.{i}:4317")).collect()
    }

    fn owners(ring: &Rendezvous, ids: &[[u8; 16]], names: &[String]) -> Vec<String> {
        ids.iter()
            .map(|id| {
                ring.pick(id, |_| false)
                    .and_then(|i| names.get(i).cloned())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn four_to_five_backends_moves_at_most_a_quarter_and_only_to_the_new_one() {
        for seed in [1u64, 7, 42, 1234] {
            let ids = trace_ids(10_000, seed);
            let four = names(4);
            let five = names(5);
            let before = owners(
                &Rendezvous::new(four.iter().map(String::as_str)),
                &ids,
                &four,
            );
            let after = owners(
                &Rendezvous::new(five.iter().map(String::as_str)),
                &ids,
                &five,
            );
            let mut moved = 0;
            for (b, a) in before.iter().zip(&after) {
                if b != a {
                    moved += 1;
                    assert_eq!(a, &five[4], "a key moved between two old backends");
                }
            }
            let share = f64::from(moved) / ids.len() as f64;
            assert!(share <= 0.25, "{share} of trace ids moved");
            // The new backend takes about its fair share (1/5), not nothing.
            assert!(share >= 0.15, "{share} of trace ids moved");
        }
    }

    #[test]
    fn removing_a_backend_moves_only_its_keys() {
        let ids = trace_ids(10_000, 99);
        let four = names(4);
        let before = owners(
            &Rendezvous::new(four.iter().map(String::as_str)),
            &ids,
            &four,
        );
        // Remove the second backend, in a different order: order must not matter.
        let three: Vec<String> = vec![four[3].clone(), four[0].clone(), four[2].clone()];
        let after = owners(
            &Rendezvous::new(three.iter().map(String::as_str)),
            &ids,
            &three,
        );
        for (b, a) in before.iter().zip(&after) {
            if b != &four[1] {
                assert_eq!(a, b, "a key of a remaining backend moved");
            } else {
                assert_ne!(a, &four[1]);
            }
        }
        // Skipping a backend in pick is the same as removing it.
        let ring = Rendezvous::new(four.iter().map(String::as_str));
        for (id, a) in ids.iter().zip(&after) {
            let i = ring.pick(id, |i| i == 1).unwrap_or(usize::MAX);
            assert_eq!(four.get(i), Some(a));
        }
    }

    #[test]
    fn keys_spread_evenly_and_an_empty_set_picks_nothing() {
        let ids = trace_ids(20_000, 5);
        let four = names(4);
        let ring = Rendezvous::new(four.iter().map(String::as_str));
        let mut counts = [0usize; 4];
        for id in &ids {
            if let Some(i) = ring.pick(id, |_| false) {
                counts[i] += 1;
            }
        }
        for c in counts {
            let share = c as f64 / ids.len() as f64;
            assert!((0.22..=0.28).contains(&share), "{counts:?}");
        }
        assert_eq!(Rendezvous::default().pick(b"x", |_| false), None);
        assert_eq!(ring.pick(b"x", |_| true), None);
    }
}
