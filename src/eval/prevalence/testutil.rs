//! Simulated validation sets and samples shared by the prevalence tests.

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use super::QuantificationStats;
use crate::decision::Thresholds;
use crate::eval::math::{logit, sigmoid};

pub const THRESHOLDS: Thresholds = Thresholds {
    review: 0.5,
    block: 0.9,
};

/// Raw scores x ~ N(+mu, 1) for counterfeits and N(-mu, 1) for genuine listings; the
/// model reports sigmoid(a + b·x).
#[derive(Clone, Copy)]
pub struct World {
    pub mu: f64,
    pub a: f64,
    pub b: f64,
}

impl World {
    /// The exact posterior when the counterfeit share is `prior`: perfectly calibrated.
    pub fn calibrated(mu: f64, prior: f64) -> World {
        World {
            mu,
            a: logit(prior),
            b: 2.0 * mu,
        }
    }

    pub fn prob(&self, x: f64) -> f32 {
        sigmoid(self.a + self.b * x) as f32
    }
}

pub fn draw_raw(rng: &mut StdRng, n: usize, prevalence: f64, mu: f64) -> (Vec<f64>, Vec<bool>) {
    (0..n)
        .map(|_| {
            let y = rng.random::<f64>() < prevalence;
            let z: f64 = rng.sample(StandardNormal);
            (if y { mu + z } else { -mu + z }, y)
        })
        .unzip()
}

pub fn draw(rng: &mut StdRng, n: usize, prevalence: f64, world: World) -> (Vec<f32>, Vec<bool>) {
    let (x, y) = draw_raw(rng, n, prevalence, world.mu);
    (x.iter().map(|&x| world.prob(x)).collect(), y)
}

/// Platt scaling by Newton's method, as a trainer would calibrate on validation.
pub fn fit_platt(x: &[f64], y: &[bool]) -> (f64, f64) {
    let (mut a, mut b) = (0.0, 1.0);
    for _ in 0..50 {
        let mut g = [0.0; 2];
        let mut h = [0.0; 3];
        for (&xi, &yi) in x.iter().zip(y) {
            let p = sigmoid(a + b * xi);
            let r = f64::from(u8::from(yi)) - p;
            let w = p * (1.0 - p);
            g[0] += r;
            g[1] += r * xi;
            h[0] += w;
            h[1] += w * xi;
            h[2] += w * xi * xi;
        }
        let det = h[0] * h[2] - h[1] * h[1];
        let da = (h[2] * g[0] - h[1] * g[1]) / det;
        let db = (h[0] * g[1] - h[1] * g[0]) / det;
        a += da;
        b += db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

pub fn stats_for(rng: &mut StdRng, n: usize, prior: f64, world: World) -> QuantificationStats {
    let (p, y) = draw(rng, n, prior, world);
    QuantificationStats::from_validation(&p, &y, &THRESHOLDS)
}
