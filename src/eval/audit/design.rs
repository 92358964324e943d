//! The audit design: strata by score rank (each about 1/√2 the size of the one below it, so
//! the top of the score range, where counterfeits concentrate, gets the most strata), the
//! allocation of the sample among them, and the seeded draw.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{AuditError, ScoredId};

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

/// One drawn row: which scored row (counted in the scores file, failed rows left out),
/// its id and probability, its stratum and its design weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub row: usize,
    pub id: String,
    pub probability: f32,
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

/// Probabilities are ranked in steps of 10⁻⁶, the precision of the scores file: the draw
/// keeps one count per step (8 MB) however many rows there are, and rows of one step
/// (ties) fall in the same stratum.
const STEPS: usize = 1_000_001;

fn step(p: f32) -> usize {
    (f64::from(p).clamp(0.0, 1.0) * 1e6).round() as usize
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

/// Where each stratum starts, as a step: the rank targets of [`stratum_sizes`] moved to the
/// nearest step boundary; strata left with fewer than [`MIN_PER_STRATUM`] rows (ties, or a
/// small population) join the one above (the top one joins the one below).
fn stratum_starts(counts: &[u64], rows: usize, strata: usize) -> Vec<usize> {
    let sizes = stratum_sizes(rows, strata);
    // Rows below each stratum's start, from the second stratum up.
    let targets: Vec<u64> = sizes[..sizes.len() - 1]
        .iter()
        .scan(0u64, |below, &s| {
            *below += s as u64;
            Some(*below)
        })
        .collect();
    let mut starts = vec![0];
    let mut pending = targets.iter().copied().peekable();
    let mut below = 0u64;
    for (b, &count) in counts.iter().enumerate() {
        while let Some(&target) = pending.peek() {
            if below + count <= target {
                break;
            }
            // The target falls inside step b: cut before or after it, whichever is nearer.
            starts.push(if target - below <= below + count - target {
                b
            } else {
                b + 1
            });
            pending.next();
        }
        below += count;
    }
    starts.dedup();
    starts.retain(|&b| b < counts.len());
    let size = |starts: &[usize], h: usize| -> u64 {
        let end = starts.get(h + 1).copied().unwrap_or(counts.len());
        counts[starts[h]..end].iter().sum()
    };
    let mut h = 0;
    while h < starts.len() && starts.len() > 1 {
        if size(&starts, h) >= MIN_PER_STRATUM as u64 {
            h += 1;
        } else if h + 1 < starts.len() {
            starts.remove(h + 1);
        } else {
            starts.remove(h);
        }
    }
    starts
}

/// Draws a stratified random sample of `sample` rows from the scored rows that `pass`
/// streams (it is called twice and must give the same rows both times): a count per
/// probability step, the strata and allocation from those counts, then one reservoir per
/// stratum. Memory follows the sample, not the rows; the draw depends only on the rows,
/// their order and `seed`.
pub fn draw<I>(
    mut pass: impl FnMut() -> Result<I, AuditError>,
    sample: usize,
    seed: u64,
) -> Result<Draw, AuditError>
where
    I: Iterator<Item = Result<ScoredId, AuditError>>,
{
    let mut counts = vec![0u64; STEPS];
    let mut rows = 0usize;
    for item in pass()? {
        counts[step(item?.probability)] += 1;
        rows += 1;
    }
    if rows == 0 {
        return Err(AuditError::EmptyPopulation);
    }
    if sample == 0 {
        return Err(AuditError::EmptySample);
    }
    let starts = stratum_starts(&counts, rows, stratum_count(rows, sample));
    let strata = strata_of(&counts, &starts, sample);
    let picks = reservoirs(pass()?, &starts, &strata, seed)?;
    Ok(Draw { strata, picks })
}

/// The strata that start at `starts` (steps), with their sizes, mean probabilities and
/// bounds from the step counts, and the sample allocated among them.
fn strata_of(counts: &[u64], starts: &[usize], sample: usize) -> Vec<Stratum> {
    let ranges: Vec<std::ops::Range<usize>> = (0..starts.len())
        .map(|h| starts[h]..starts.get(h + 1).copied().unwrap_or(counts.len()))
        .collect();
    let sizes: Vec<usize> = ranges
        .iter()
        .map(|r| counts[r.clone()].iter().sum::<u64>() as usize)
        .collect();
    let means: Vec<f64> = ranges
        .iter()
        .zip(&sizes)
        .map(|(r, &n)| {
            let total: f64 = r.clone().map(|b| b as f64 * 1e-6 * counts[b] as f64).sum();
            total / n as f64
        })
        .collect();
    let drawn = allocate(&sizes, &means, sample);
    let bound = |r: &std::ops::Range<usize>, last: bool| {
        let mut nonempty = r.clone().filter(|&b| counts[b] > 0);
        let b = if last {
            nonempty.next_back()
        } else {
            nonempty.next()
        };
        b.unwrap_or(r.start) as f32 * 1e-6
    };
    ranges
        .iter()
        .enumerate()
        .map(|(h, r)| Stratum {
            index: h,
            rows: sizes[h],
            sampled: drawn[h],
            min_probability: bound(r, false),
            max_probability: bound(r, true),
            mean_probability: means[h],
        })
        .collect()
}

/// The second pass: one reservoir per stratum (Algorithm R, one seeded stream), the picks
/// in row order. Refuses rows that no longer add up to the strata of the first pass.
fn reservoirs(
    rows: impl Iterator<Item = Result<ScoredId, AuditError>>,
    starts: &[usize],
    strata: &[Stratum],
    seed: u64,
) -> Result<Vec<Pick>, AuditError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = vec![0usize; strata.len()];
    let mut kept: Vec<Vec<Pick>> = strata
        .iter()
        .map(|s| Vec::with_capacity(s.sampled))
        .collect();
    for (row, item) in rows.enumerate() {
        let item = item?;
        let h = starts.partition_point(|&b| b <= step(item.probability)) - 1;
        let stratum = &strata[h];
        seen[h] += 1;
        let pick = || Pick {
            row,
            id: item.id.clone(),
            probability: item.probability,
            stratum: h,
            weight: stratum.rows as f64 / stratum.sampled as f64,
        };
        if kept[h].len() < stratum.sampled {
            kept[h].push(pick());
        } else {
            let j = rng.random_range(0..seen[h]);
            if j < stratum.sampled {
                kept[h][j] = pick();
            }
        }
    }
    if seen.iter().zip(strata).any(|(&n, s)| n != s.rows) {
        return Err(AuditError::Changed);
    }
    let mut picks: Vec<Pick> = kept.into_iter().flatten().collect();
    picks.sort_by_key(|p| p.row);
    Ok(picks)
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// Scored rows for [`draw`]: `r0`, `r1`, … with these probabilities.
    pub(crate) fn rows(probabilities: &[f32]) -> Vec<ScoredId> {
        probabilities
            .iter()
            .enumerate()
            .map(|(i, &probability)| ScoredId {
                id: format!("r{i}"),
                probability,
                line: i as u64 + 2,
            })
            .collect()
    }

    pub(crate) fn draw_from(
        rows: &[ScoredId],
        sample: usize,
        seed: u64,
    ) -> Result<Draw, AuditError> {
        draw(|| Ok(rows.iter().cloned().map(Ok)), sample, seed)
    }

    #[test]
    fn draws_are_deterministic_for_a_seed_and_weights_add_up() {
        let probabilities: Vec<f32> = (0..2_000).map(|i| (i % 97) as f32 / 97.0).collect();
        let rows = rows(&probabilities);
        let a = draw_from(&rows, 120, 7).unwrap();
        assert_eq!(a, draw_from(&rows, 120, 7).unwrap());
        assert_ne!(a.picks, draw_from(&rows, 120, 8).unwrap().picks);
        assert_eq!(a.picks.len(), 120);
        let covered: f64 = a.picks.iter().map(|p| p.weight).sum();
        assert!((covered - 2_000.0).abs() < 1e-6, "{covered}");
        // Higher strata hold higher scores, and each pick is its row.
        assert!(a
            .strata
            .windows(2)
            .all(|w| w[0].max_probability < w[1].min_probability));
        for p in &a.picks {
            assert_eq!(p.id, format!("r{}", p.row));
            assert_eq!(p.probability, probabilities[p.row]);
            let s = &a.strata[p.stratum];
            // Strata bound probabilities to the scores file's precision (10⁻⁶).
            let (low, high) = (step(s.min_probability), step(s.max_probability));
            assert!((low..=high).contains(&step(p.probability)));
        }
        assert!(matches!(
            draw_from(&[], 10, 1),
            Err(AuditError::EmptyPopulation)
        ));
        assert!(matches!(
            draw_from(&rows, 0, 1),
            Err(AuditError::EmptySample)
        ));
    }

    #[test]
    fn strata_follow_the_rank_targets_and_ties_stay_together() {
        // Distinct scores: the strata are the rank targets exactly.
        let distinct: Vec<f32> = (0..1_000).map(|i| i as f32 / 1_000.0).collect();
        let d = draw_from(&rows(&distinct), 400, 1).unwrap();
        let sizes: Vec<usize> = d.strata.iter().map(|s| s.rows).collect();
        assert_eq!(sizes, stratum_sizes(1_000, d.strata.len()));
        // Half the rows share one score: they land in one stratum, and no stratum is
        // left with fewer than the minimum.
        let tied: Vec<f32> = (0..1_000)
            .map(|i| if i < 500 { 0.01 } else { i as f32 / 1_000.0 })
            .collect();
        let d = draw_from(&rows(&tied), 400, 1).unwrap();
        assert_eq!(d.strata[0].rows, 500, "{:?}", d.strata);
        assert!(d.strata.iter().all(|s| s.rows >= MIN_PER_STRATUM));
        assert_eq!(d.strata.iter().map(|s| s.rows).sum::<usize>(), 1_000);
        // Every row the same: one stratum.
        let d = draw_from(&rows(&[0.5; 50]), 10, 1).unwrap();
        assert_eq!(d.strata.len(), 1);
        assert_eq!(d.picks.len(), 10);
    }

    #[test]
    fn rows_that_change_between_the_passes_are_refused() {
        let mut calls = 0;
        let result = draw(
            || {
                calls += 1;
                let n = if calls == 1 { 100 } else { 99 };
                Ok(rows(&vec![0.3; n]).into_iter().map(Ok))
            },
            10,
            1,
        );
        assert!(matches!(result, Err(AuditError::Changed)));
    }
}
