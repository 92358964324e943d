//! The small numeric helpers every evaluation module shares: one `ratio`, one
//! overflow-safe `sigmoid`, its inverse `logit`, and `softplus`.

/// `num / den` as a share, with **0/0 = NaN**.
///
/// A rate over nothing (precision when nothing is flagged, recall on a sample without
/// counterfeits, a share of an empty sample) is undefined, and this module family never
/// reports a made-up number for it: NaN is what every metric here means by "undefined", and
/// it serialises as JSON `null`. The few callers whose documented answer for an empty
/// denominator is a number say so at the call site with [`or_zero`].
pub fn ratio(num: usize, den: usize) -> f64 {
    num as f64 / den as f64
}

/// `value`, or 0 when it is NaN: for the callers whose documented answer to an undefined
/// [`ratio`] is 0 (e.g. "share flagged of an empty sample").
pub fn or_zero(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

/// Logistic function `1 / (1 + e^-z)`, computed so that no intermediate overflows: for
/// negative `z` it uses `e^z / (1 + e^z)`, so ±1000 give exactly 0 and 1, never NaN.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Log-odds `ln(p / (1 - p))`, the inverse of [`sigmoid`]; ±infinity at 1 and 0, so callers
/// that need finite values clamp `p` first.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Overflow-free `ln(1 + e^z)`.
pub fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_nothing_is_undefined_not_zero() {
        assert!(ratio(0, 0).is_nan());
        assert_eq!(ratio(1, 4), 0.25);
        assert_eq!(ratio(0, 3), 0.0);
        assert_eq!(or_zero(ratio(0, 0)), 0.0);
        assert_eq!(or_zero(ratio(3, 4)), 0.75);
    }

    #[test]
    fn sigmoid_does_not_overflow_at_extremes() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        // The naive 1 / (1 + e^-z) needs e^1000 = inf on the way to 0 here.
        assert!(sigmoid(-745.0).is_finite() && sigmoid(-745.0) >= 0.0);
        let expected = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((sigmoid(2.0) - expected).abs() < 1e-15);
        assert!((sigmoid(-2.0) - (1.0 - expected)).abs() < 1e-15);
    }

    #[test]
    fn logit_inverts_sigmoid_and_softplus_is_stable() {
        for z in [-8.0, -0.5, 0.0, 0.3, 7.0] {
            assert!((logit(sigmoid(z)) - z).abs() < 1e-9, "{z}");
        }
        assert_eq!(logit(0.5), 0.0);
        assert_eq!(softplus(1000.0), 1000.0);
        assert_eq!(softplus(-1000.0), 0.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
