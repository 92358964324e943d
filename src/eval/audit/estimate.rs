//! The design-based estimate of a share from a labelled stratified sample: the stratified
//! (combined ratio) estimator, its linearised variance with the finite-population
//! correction, and a Wilson interval on the design's effective sample size.

use serde::{Deserialize, Serialize};

use crate::eval::prevalence::interval::wilson_effective;

/// One labelled audit row: its label and whether it belongs to the domain (the group)
/// being estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleUnit {
    pub label: bool,
    pub in_domain: bool,
}

/// One stratum's size in the population and its labelled rows.
#[derive(Debug, Clone, PartialEq)]
pub struct StratumSample {
    pub rows: usize,
    pub units: Vec<SampleUnit>,
}

/// A share with its 95% interval, and what it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AuditInterval {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub std_error: f64,
    /// Labelled rows in the domain.
    pub labelled: usize,
    /// `p(1 - p) / variance`: the simple random sample this design is worth.
    pub effective_n: f64,
}

/// Stratified estimate of the share of counterfeits in the domain; `None` when no labelled
/// row is in it. Strata without labelled rows must have been refused before.
///
/// Per stratum the variance of the linearised values is never taken below that of a
/// binomial share `(x + ½) / (m + 1)` (x counterfeit of m labelled domain rows): a stratum
/// whose labels all agree would otherwise claim no uncertainty at all.
pub fn domain_estimate(strata: &[StratumSample]) -> Option<AuditInterval> {
    let weight = |s: &StratumSample| s.rows as f64 / s.units.len().max(1) as f64;
    let (mut total, mut size, mut labelled) = (0.0, 0.0, 0usize);
    for s in strata {
        for u in s.units.iter().filter(|u| u.in_domain) {
            total += weight(s) * f64::from(u8::from(u.label));
            size += weight(s);
            labelled += 1;
        }
    }
    if labelled == 0 || size <= 0.0 {
        return None;
    }
    let share = total / size;
    let mut variance = 0.0;
    let mut census = true;
    for s in strata {
        let n = s.units.len() as f64;
        let correction = 1.0 - n / s.rows as f64;
        census &= correction <= 0.0;
        variance +=
            (s.rows as f64).powi(2) * correction.max(0.0) / n * stratum_variance(s, share, size);
    }
    Some(interval(share, variance, labelled, census))
}

/// Sample variance of `d (y - share) / size` in one stratum, with the binomial floor.
fn stratum_variance(s: &StratumSample, share: f64, size: f64) -> f64 {
    let z: Vec<f64> = s
        .units
        .iter()
        .map(|u| {
            if u.in_domain {
                (f64::from(u8::from(u.label)) - share) / size
            } else {
                0.0
            }
        })
        .collect();
    let n = z.len() as f64;
    let mean = z.iter().sum::<f64>() / n;
    let sample = if z.len() > 1 {
        z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let in_domain = s.units.iter().filter(|u| u.in_domain).count();
    if in_domain == 0 {
        return sample;
    }
    let positives = s.units.iter().filter(|u| u.in_domain && u.label).count();
    let smoothed = (positives as f64 + 0.5) / (in_domain as f64 + 1.0);
    let floor = in_domain as f64 / n * smoothed * (1.0 - smoothed) / (size * size);
    sample.max(floor)
}

/// Wilson interval on the effective sample size (Korn & Graubard 1998); a design whose
/// labels all agree uses the labelled count, and a census is exact.
fn interval(share: f64, variance: f64, labelled: usize, census: bool) -> AuditInterval {
    let share = share.clamp(0.0, 1.0);
    if census {
        return AuditInterval {
            estimate: share,
            ci_low: share,
            ci_high: share,
            std_error: 0.0,
            labelled,
            effective_n: f64::INFINITY,
        };
    }
    let effective_n = if variance > 0.0 && share > 0.0 && share < 1.0 {
        share * (1.0 - share) / variance
    } else {
        labelled as f64
    };
    let (ci_low, ci_high) = wilson_effective(share, effective_n);
    AuditInterval {
        estimate: share,
        ci_low: ci_low.min(share),
        ci_high: ci_high.max(share),
        std_error: variance.sqrt(),
        labelled,
        effective_n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::audit::design::tests::{draw_from, rows as scored};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn unit(label: bool) -> SampleUnit {
        SampleUnit {
            label,
            in_domain: true,
        }
    }

    #[test]
    fn stratified_estimate_weights_strata_by_size() {
        // 900 rows with 1 of 10 labelled counterfeit, 100 rows with 9 of 10.
        let strata = vec![
            StratumSample {
                rows: 900,
                units: (0..10).map(|i| unit(i == 0)).collect(),
            },
            StratumSample {
                rows: 100,
                units: (0..10).map(|i| unit(i != 0)).collect(),
            },
        ];
        let e = domain_estimate(&strata).unwrap();
        assert!((e.estimate - 0.18).abs() < 1e-12, "{e:?}");
        assert!(e.ci_low < 0.18 && e.ci_high > 0.18 && e.ci_low > 0.0);
        assert_eq!(e.labelled, 20);
    }

    #[test]
    fn agreeing_labels_still_leave_uncertainty_and_a_census_none() {
        let zeros = vec![StratumSample {
            rows: 10_000,
            units: vec![unit(false); 50],
        }];
        let e = domain_estimate(&zeros).unwrap();
        assert_eq!(e.estimate, 0.0);
        assert!(e.ci_high > 0.03 && e.ci_high < 0.1, "{e:?}");
        let census = vec![StratumSample {
            rows: 4,
            units: vec![unit(true), unit(false), unit(false), unit(false)],
        }];
        let e = domain_estimate(&census).unwrap();
        assert_eq!((e.ci_low, e.estimate, e.ci_high), (0.25, 0.25, 0.25));
    }

    /// A population of `rows` listings whose true counterfeit chance is `truth[i]`, scored
    /// by a model that says `model(truth)`; draws, labels and estimates one audit.
    fn audit_once(
        rng: &mut StdRng,
        rows: usize,
        sample: usize,
        model: impl Fn(f64) -> f64,
    ) -> (f64, AuditInterval) {
        let truth: Vec<f64> = (0..rows)
            .map(|_| {
                let x: f64 = rng.random::<f64>();
                x.powi(6)
            })
            .collect();
        let labels: Vec<bool> = truth.iter().map(|&t| rng.random::<f64>() < t).collect();
        let scores: Vec<f32> = truth.iter().map(|&t| model(t) as f32).collect();
        let d = draw_from(&scored(&scores), sample, rng.random()).unwrap();
        let mut strata: Vec<StratumSample> = d
            .strata
            .iter()
            .map(|s| StratumSample {
                rows: s.rows,
                units: Vec::new(),
            })
            .collect();
        for p in &d.picks {
            strata[p.stratum].units.push(unit(labels[p.row]));
        }
        let share = labels.iter().filter(|&&l| l).count() as f64 / rows as f64;
        (share, domain_estimate(&strata).unwrap())
    }

    #[test]
    fn intervals_cover_the_truth_about_95_percent_of_the_time_with_a_miscalibrated_model() {
        let mut rng = StdRng::seed_from_u64(2024);
        // The model ranks well but is far from calibrated: it halves and flattens.
        let model = |t: f64| 0.5 * t.sqrt();
        let runs = 200;
        let covered = (0..runs)
            .filter(|_| {
                let (truth, e) = audit_once(&mut rng, 3_000, 200, model);
                e.ci_low <= truth && truth <= e.ci_high
            })
            .count();
        let coverage = covered as f64 / runs as f64;
        assert!((0.91..=0.995).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn a_shifted_model_misleads_the_mean_probability_but_not_the_audit() {
        let mut rng = StdRng::seed_from_u64(7);
        // Sellers changed their words: the model sees a tenth of the risk it should.
        let model = |t: f64| t / 10.0;
        let (truth, e) = audit_once(&mut rng, 5_000, 300, model);
        let model_says = truth / 10.0;
        assert!(e.ci_low <= truth && truth <= e.ci_high, "{truth} {e:?}");
        assert!(model_says < e.ci_low, "{model_says} {e:?}");
        assert!((e.estimate - truth).abs() < 0.03, "{truth} {e:?}");
    }
}
