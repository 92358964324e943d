//! The audit design: strata by score rank (each about 1/√2 the size of the one below it, so
//! the top of the score range, where counterfeits concentrate, gets the most strata), the
//! allocation of the sample among them, and the seeded draw.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::AuditError;

/// At most this many strata: the top one then holds 1/2^6.5 (about 1/90) of the listings.
///
/// Strata shrink by √2 rather than 2: on populations drawn from the validation file, shifted
/// or not, the finer ranks near the counterfeit boundary cut the audit's standard error by
/// 3–5% at the same 400 labels (BENCHMARKS §8).
pub const MAX_STRATA: usize = 14;
/// Every stratum gets at least this many audit rows, so its variance can be estimated.
pub const MIN_PER_STRATUM: usize = 2;
/// Share of the sample allocated in proportion to stratum size; the rest follows Neyman
/// allocation on the model's probabilities. The proportional half keeps the variance within
/// twice that of proportional allocation however wrong the model is.
pub const PROPORTIONAL_SHARE: f64 = 0.5;

/// One stratum of a design: its rows (by index into the scored population) and how many
/// of them were drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stratum {
    pub index: usize,
    pub rows: usize,
    pub sampled: usize,
    pub min_probability: f32,
    pub max_probability: f32,
    pub mean_probability: f64,
}

/// One drawn row: which population row, in which stratum, with which design weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub row: usize,
    pub stratum: usize,
    /// Stratum size / rows drawn from it.
    pub weight: f64,
}

/// The strata and the rows drawn, in population order.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    pub strata: Vec<Stratum>,
    pub picks: Vec<Pick>,
}

/// Stratum sizes from the lowest scores up: the ranks above stratum h's lower edge number
/// `rows / √2^h`, so the lowest stratum holds 1 − 1/√2 (about 29%) of the rows and each one
/// above about 1/√2 of the one below; the top stratum holds what is left.
fn stratum_sizes(rows: usize, strata: usize) -> Vec<usize> {
    let cut = |h: usize| (rows as f64 / std::f64::consts::SQRT_2.powi(h as i32)).round() as usize;
    (0..strata)
        .map(|h| {
            if h + 1 == strata {
                cut(h)
            } else {
                cut(h) - cut(h + 1)
            }
        })
        .collect()
}

/// The most strata (up to [`MAX_STRATA`]) with at least [`MIN_PER_STRATUM`] rows each
/// and [`MIN_PER_STRATUM`] draws each.
fn stratum_count(rows: usize, sample: usize) -> usize {
    (1..=MAX_STRATA)
        .rev()
        .find(|&h| {
            h * MIN_PER_STRATUM <= sample
                && stratum_sizes(rows, h).iter().all(|&s| s >= MIN_PER_STRATUM)
        })
        .unwrap_or(1)
}

/// Draws per stratum: [`PROPORTIONAL_SHARE`] by size, the rest by size × the standard
/// deviation the model expects (Neyman), at least [`MIN_PER_STRATUM`] and at most the
/// stratum's size, summing to `sample` (largest remainders).
pub fn allocate(sizes: &[usize], means: &[f64], sample: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let sample = sample.min(total);
    let spread: Vec<f64> = sizes
        .iter()
        .zip(means)
        .map(|(&n, &p)| n as f64 * (p * (1.0 - p)).max(1e-12).sqrt())
        .collect();
    let spread_total: f64 = spread.iter().sum();
    let target: Vec<f64> = sizes
        .iter()
        .zip(&spread)
        .map(|(&n, &s)| {
            sample as f64
                * (PROPORTIONAL_SHARE * n as f64 / total as f64
                    + (1.0 - PROPORTIONAL_SHARE) * s / spread_total)
        })
        .collect();
    let mut drawn: Vec<usize> = target
        .iter()
        .zip(sizes)
        .map(|(&t, &n)| (t.floor() as usize).max(MIN_PER_STRATUM).min(n))
        .collect();
    let gap = |h: usize, drawn: &[usize]| target[h] - drawn[h] as f64;
    while drawn.iter().sum::<usize>() < sample {
        let Some(h) = (0..sizes.len())
            .filter(|&h| drawn[h] < sizes[h])
            .max_by(|&a, &b| gap(a, &drawn).total_cmp(&gap(b, &drawn)))
        else {
            break;
        };
        drawn[h] += 1;
    }
    while drawn.iter().sum::<usize>() > sample {
        let Some(h) = (0..sizes.len())
            .filter(|&h| drawn[h] > MIN_PER_STRATUM.min(sizes[h]))
            .min_by(|&a, &b| gap(a, &drawn).total_cmp(&gap(b, &drawn)))
        else {
            break;
        };
        drawn[h] -= 1;
    }
    drawn
}

/// Draws a stratified random sample of `sample` rows. Rows are ranked by probability (ties
/// by id, so the draw depends only on the scores, the ids and `seed`).
pub fn draw(
    probabilities: &[f32],
    ids: &[&str],
    sample: usize,
    seed: u64,
) -> Result<Draw, AuditError> {
    if probabilities.is_empty() {
        return Err(AuditError::EmptyPopulation);
    }
    if sample == 0 {
        return Err(AuditError::EmptySample);
    }
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[a]
            .total_cmp(&probabilities[b])
            .then_with(|| ids[a].cmp(ids[b]))
    });
    let sizes = stratum_sizes(order.len(), stratum_count(order.len(), sample));
    let mut members = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for &size in &sizes {
        members.push(&order[start..start + size]);
        start += size;
    }
    let means: Vec<f64> = members
        .iter()
        .map(|m| m.iter().map(|&i| f64::from(probabilities[i])).sum::<f64>() / m.len() as f64)
        .collect();
    let drawn = allocate(&sizes, &means, sample);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picks = Vec::with_capacity(sample);
    let mut strata = Vec::with_capacity(sizes.len());
    for (h, rows) in members.iter().enumerate() {
        let weight = rows.len() as f64 / drawn[h] as f64;
        for k in rand::seq::index::sample(&mut rng, rows.len(), drawn[h]) {
            picks.push(Pick {
                row: rows[k],
                stratum: h,
                weight,
            });
        }
        strata.push(Stratum {
            index: h,
            rows: rows.len(),
            sampled: drawn[h],
            min_probability: probabilities[rows[0]],
            max_probability: probabilities[rows[rows.len() - 1]],
            mean_probability: means[h],
        });
    }
    picks.sort_by_key(|p| p.row);
    Ok(Draw { strata, picks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_shrink_towards_the_top_and_cover_every_row() {
        // Above-edge counts 1000, 707, 500, 354.
        assert_eq!(stratum_sizes(1000, 4), [293, 207, 146, 354]);
        assert_eq!(
            stratum_sizes(20_000, MAX_STRATA).iter().sum::<usize>(),
            20_000
        );
        assert_eq!(stratum_sizes(7, 1), [7]);
        assert_eq!(stratum_count(20_000, 400), MAX_STRATA);
        // Few rows or a small sample: fewer strata, each still drawable.
        assert_eq!(stratum_count(12, 400), 4);
        assert_eq!(stratum_count(20_000, 5), 2);
    }

    #[test]
    fn allocation_has_a_floor_sums_to_the_sample_and_favours_uncertain_strata() {
        let sizes = [10_000, 5_000, 2_500, 1_250, 625, 625];
        let means = [0.001, 0.01, 0.05, 0.3, 0.6, 0.97];
        let drawn = allocate(&sizes, &means, 400);
        assert_eq!(drawn.iter().sum::<usize>(), 400);
        assert!(drawn.iter().all(|&d| d >= MIN_PER_STRATUM), "{drawn:?}");
        // Half proportional: the big low stratum keeps at least half its proportional share.
        assert!(drawn[0] >= 100, "{drawn:?}");
        // Neyman: the 30% stratum gets more than its proportional share.
        assert!(drawn[3] > 400 * 1_250 / 20_000, "{drawn:?}");
        // A sample larger than the population is a census.
        assert_eq!(allocate(&[3, 2], &[0.1, 0.9], 50), [3, 2]);
    }

    #[test]
    fn draws_are_deterministic_for_a_seed_and_weights_add_up() {
        let probabilities: Vec<f32> = (0..2_000).map(|i| (i % 97) as f32 / 97.0).collect();
        let ids: Vec<String> = (0..2_000).map(|i| format!("r{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let a = draw(&probabilities, &ids, 120, 7).unwrap();
        assert_eq!(a, draw(&probabilities, &ids, 120, 7).unwrap());
        assert_ne!(a.picks, draw(&probabilities, &ids, 120, 8).unwrap().picks);
        assert_eq!(a.picks.len(), 120);
        let covered: f64 = a.picks.iter().map(|p| p.weight).sum();
        assert!((covered - 2_000.0).abs() < 1e-6, "{covered}");
        // Higher strata hold higher scores.
        assert!(a
            .strata
            .windows(2)
            .all(|w| w[0].max_probability <= w[1].min_probability));
        assert!(matches!(
            draw(&[], &[], 10, 1),
            Err(AuditError::EmptyPopulation)
        ));
    }
}
