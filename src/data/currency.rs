//! Currency conversion into one base currency (USD) so prices are comparable across listings.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Base-currency value of one unit of each currency: `price_usd = amount * rate`.
///
/// Stored in the model's `config.json`, so a model scores with the rates it was trained with
/// unless an operator overrides them (rates drift; the model's price features should not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrencyRates {
    pub base: String,
    pub rates: BTreeMap<String, f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RateError {
    #[error("currency rate `{0}` is not of the form CODE=VALUE, e.g. CNY=0.14")]
    Syntax(String),
    #[error("currency code `{0}` is not a three-letter ISO 4217 code")]
    Code(String),
    #[error("rate for {code} must be a positive finite number, got `{value}`")]
    Value { code: String, value: String },
}

impl Default for CurrencyRates {
    /// Approximate late-2020s reference rates; operators override them with `--currency-rate`.
    fn default() -> Self {
        let rates = [
            ("USD", 1.0),
            ("EUR", 1.08),
            ("GBP", 1.27),
            ("CNY", 0.138),
            ("JPY", 0.0067),
            ("INR", 0.012),
            ("HKD", 0.128),
            ("KRW", 0.00072),
            ("AUD", 0.65),
            ("CAD", 0.73),
            ("CHF", 1.13),
            ("SGD", 0.74),
        ];
        CurrencyRates {
            base: "USD".to_string(),
            rates: rates.iter().map(|(c, r)| (c.to_string(), *r)).collect(),
        }
    }
}

impl CurrencyRates {
    /// Normalises a user-given code (`usd`, ` USD `) to the key form used in the table.
    pub fn normalise_code(code: &str) -> String {
        code.trim().to_ascii_uppercase()
    }

    pub fn rate(&self, code: &str) -> Option<f64> {
        self.rates.get(code).copied()
    }

    pub fn to_base(&self, amount: f64, code: &str) -> Option<f64> {
        self.rate(code).map(|r| amount * r)
    }

    /// Applies one `CODE=VALUE` override, adding the currency if it is new.
    pub fn apply_override(&mut self, spec: &str) -> Result<(), RateError> {
        let (code, value) = spec
            .split_once('=')
            .ok_or_else(|| RateError::Syntax(spec.to_string()))?;
        let code = Self::normalise_code(code);
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(RateError::Code(code));
        }
        let rate: f64 = value.trim().parse().map_err(|_| RateError::Value {
            code: code.clone(),
            value: value.to_string(),
        })?;
        if !rate.is_finite() || rate <= 0.0 {
            return Err(RateError::Value {
                code,
                value: value.to_string(),
            });
        }
        self.rates.insert(code, rate);
        Ok(())
    }

    pub fn with_overrides<S: AsRef<str>>(mut self, specs: &[S]) -> Result<Self, RateError> {
        for spec in specs {
            self.apply_override(spec.as_ref())?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_the_required_currencies() {
        let rates = CurrencyRates::default();
        for code in ["USD", "EUR", "GBP", "CNY", "JPY", "INR"] {
            assert!(rates.rate(code).is_some(), "{code} missing");
        }
        assert_eq!(rates.to_base(10.0, "USD"), Some(10.0));
        assert!(rates.to_base(100.0, "CNY").unwrap() < 20.0);
    }

    #[test]
    fn override_replaces_and_adds() {
        let rates = CurrencyRates::default()
            .with_overrides(&["cny=0.2", "BRL=0.18"])
            .unwrap();
        assert_eq!(rates.rate("CNY"), Some(0.2));
        assert_eq!(rates.rate("BRL"), Some(0.18));
    }

    #[test]
    fn bad_overrides_are_rejected_with_the_reason() {
        let mut rates = CurrencyRates::default();
        assert_eq!(
            rates.apply_override("CNY"),
            Err(RateError::Syntax("CNY".into()))
        );
        assert_eq!(
            rates.apply_override("DOLLAR=1"),
            Err(RateError::Code("DOLLAR".into()))
        );
        assert!(matches!(
            rates.apply_override("CNY=-1"),
            Err(RateError::Value { .. })
        ));
        assert!(matches!(
            rates.apply_override("CNY=abc"),
            Err(RateError::Value { .. })
        ));
    }
}
