//! Fixtures shared by the evaluation tests.

use crate::decision::Thresholds;

pub const T: bool = true;
pub const F: bool = false;

pub fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

// Descending: 0.9 T, 0.8 T, 0.7 F, 0.6 T, 0.5 F, 0.4 F.
// Precision: 1, 1, 2/3, 3/4, 3/5, 1/2. Recall (3 positives): 1/3, 2/3, 2/3, 1, 1, 1.
pub const SEL_SCORES: [f32; 6] = [0.4, 0.9, 0.6, 0.5, 0.8, 0.7];
pub const SEL_LABELS: [bool; 6] = [F, T, T, F, T, F];

pub const TH: Thresholds = Thresholds {
    review: 0.5,
    block: 0.8,
};
