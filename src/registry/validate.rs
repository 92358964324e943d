//! Checks a brand entry before the store accepts it, naming the field to blame
//! (`name`, `aliases[1]`, `products[0].list_price`); yields the entry in its stored form.

use super::{BrandEntry, RegisteredProduct};
use crate::brand::compact_name;
use crate::data::currency::CurrencyRates;

/// Most characters in a brand name, an alias, a product name or a category.
pub const MAX_NAME_CHARS: usize = 100;
/// Most aliases one brand may register.
pub const MAX_ALIASES: usize = 20;
/// Most products one brand may register.
pub const MAX_PRODUCTS: usize = 500;

/// Why an entry was refused, and the field to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RegistryError {
    /// The field as a client wrote it: `name`, `aliases[1]`, `products[0].list_price`.
    pub field: String,
    pub message: String,
}

impl RegistryError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RegistryError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A brand's name or alias as lookups compare it: folded for case, accents, width,
/// look-alike letters and spacing ("Verdanne" == "VERDANNE" == "ver danne").
pub fn folded(name: &str) -> String {
    compact_name(name)
}

/// A checked entry: trimmed strings, upper-case currency codes, and the folded form of
/// the name and of each alias (in that order), for conflict checks and lookups.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEntry {
    pub name: String,
    pub key: String,
    pub entry: BrandEntry,
    /// `(field, folded)` for the name and every alias.
    pub names: Vec<(String, String)>,
}

/// Checks `name` and `entry` on their own (conflicts with other brands are the store's
/// to check). `known_currency` says whether the served model converts a (normalised) code.
pub fn validate(
    name: &str,
    entry: &BrandEntry,
    known_currency: &dyn Fn(&str) -> bool,
) -> Result<ValidEntry, RegistryError> {
    let name = text("name", name)?;
    let key = folded_non_empty("name", &name)?;
    if entry.aliases.len() > MAX_ALIASES {
        let message = format!(
            "at most {MAX_ALIASES} aliases (got {})",
            entry.aliases.len()
        );
        return Err(RegistryError::new("aliases", message));
    }
    let mut names = vec![("name".to_string(), key.clone())];
    let mut aliases = Vec::with_capacity(entry.aliases.len());
    for (i, alias) in entry.aliases.iter().enumerate() {
        let field = format!("aliases[{i}]");
        let alias = text(&field, alias)?;
        let fold = folded_non_empty(&field, &alias)?;
        if let Some((other, _)) = names.iter().find(|(_, f)| *f == fold) {
            return Err(RegistryError::new(
                field,
                format!("`{alias}` is the same name as {other}"),
            ));
        }
        names.push((field, fold));
        aliases.push(alias);
    }
    let products = products(&entry.products, known_currency)?;
    Ok(ValidEntry {
        name,
        key,
        entry: BrandEntry { aliases, products },
        names,
    })
}

fn products(
    products: &[RegisteredProduct],
    known_currency: &dyn Fn(&str) -> bool,
) -> Result<Vec<RegisteredProduct>, RegistryError> {
    if products.is_empty() {
        return Err(RegistryError::new(
            "products",
            "must list at least one product with its list price",
        ));
    }
    if products.len() > MAX_PRODUCTS {
        let message = format!("at most {MAX_PRODUCTS} products (got {})", products.len());
        return Err(RegistryError::new("products", message));
    }
    products
        .iter()
        .enumerate()
        .map(|(i, p)| product(i, p, known_currency))
        .collect()
}

fn product(
    i: usize,
    product: &RegisteredProduct,
    known_currency: &dyn Fn(&str) -> bool,
) -> Result<RegisteredProduct, RegistryError> {
    let field = |name: &str| format!("products[{i}].{name}");
    let name = text(&field("name"), &product.name)?;
    folded_non_empty(&field("name"), &name)?;
    let category = product.category.trim();
    if category.chars().count() > MAX_NAME_CHARS {
        return Err(too_long(field("category")));
    }
    let price = product.list_price;
    if !price.is_finite() || price <= 0.0 {
        return Err(RegistryError::new(
            field("list_price"),
            format!("must be a positive finite number (got {price})"),
        ));
    }
    let currency = CurrencyRates::normalise_code(&product.currency);
    if !known_currency(&currency) {
        return Err(RegistryError::new(
            field("currency"),
            format!("unknown currency `{}`", product.currency.trim()),
        ));
    }
    Ok(RegisteredProduct {
        name,
        category: category.to_string(),
        list_price: price,
        currency,
    })
}

/// A required, bounded piece of text, trimmed.
fn text(field: &str, value: &str) -> Result<String, RegistryError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RegistryError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(too_long(field));
    }
    Ok(value.to_string())
}

fn too_long(field: impl Into<String>) -> RegistryError {
    RegistryError::new(field, format!("at most {MAX_NAME_CHARS} characters"))
}

fn folded_non_empty(field: &str, value: &str) -> Result<String, RegistryError> {
    let fold = folded(value);
    if fold.is_empty() {
        return Err(RegistryError::new(
            field,
            format!("`{value}` has no letters or digits"),
        ));
    }
    Ok(fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str, price: f64, currency: &str) -> RegisteredProduct {
        RegisteredProduct {
            name: name.into(),
            category: "bags".into(),
            list_price: price,
            currency: currency.into(),
        }
    }

    fn entry() -> BrandEntry {
        BrandEntry {
            aliases: vec!["维丹妮".into(), "VDN".into()],
            products: vec![product("Aurora tote", 420.0, "eur")],
        }
    }

    fn known(code: &str) -> bool {
        CurrencyRates::default().rate(code).is_some()
    }

    fn field_of(name: &str, entry: &BrandEntry) -> String {
        validate(name, entry, &known).unwrap_err().field
    }

    #[test]
    fn a_good_entry_is_trimmed_and_folded() {
        let mut e = entry();
        e.aliases[1] = "  V D N ".into();
        let valid = validate(" Verdanne ", &e, &known).unwrap();
        assert_eq!(valid.name, "Verdanne");
        assert_eq!(valid.key, "verdanne");
        assert_eq!(valid.entry.aliases, ["维丹妮", "V D N"]);
        assert_eq!(valid.entry.products[0].currency, "EUR");
        let folded: Vec<&str> = valid.names.iter().map(|(_, f)| f.as_str()).collect();
        assert_eq!(folded, ["verdanne", "维丹妮", "vdn"]);
        assert_eq!(folded_name_forms(), ["verdanne"; 3]);
    }

    fn folded_name_forms() -> Vec<String> {
        ["Verdanne", "VERDANNE", "ver danne"]
            .iter()
            .map(|n| folded(n))
            .collect()
    }

    #[test]
    fn empty_or_symbol_only_names_and_aliases_are_refused() {
        assert_eq!(field_of("  ", &entry()), "name");
        assert_eq!(field_of("---", &entry()), "name");
        let mut e = entry();
        e.aliases.push(" ".into());
        assert_eq!(field_of("Verdanne", &e), "aliases[2]");
    }

    #[test]
    fn an_alias_repeating_the_name_or_another_alias_is_refused() {
        let mut e = entry();
        e.aliases.push("VER DANNE".into());
        let error = validate("Verdanne", &e, &known).unwrap_err();
        assert_eq!(error.field, "aliases[2]");
        assert!(error.message.contains("same name as name"), "{error}");
        e.aliases[2] = "vdn".into();
        assert_eq!(field_of("Verdanne", &e), "aliases[2]");
    }

    #[test]
    fn products_are_required_and_bounded() {
        let mut e = entry();
        e.products.clear();
        assert_eq!(field_of("Verdanne", &e), "products");
        e.products = vec![product("Aurora tote", 1.0, "EUR"); MAX_PRODUCTS + 1];
        assert_eq!(field_of("Verdanne", &e), "products");
        e.products.truncate(MAX_PRODUCTS);
        assert!(validate("Verdanne", &e, &known).is_ok());
    }

    #[test]
    fn too_many_aliases_and_over_long_strings_are_refused() {
        let mut e = entry();
        e.aliases = (0..=MAX_ALIASES).map(|i| format!("alias {i}")).collect();
        assert_eq!(field_of("Verdanne", &e), "aliases");
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(field_of(&long, &entry()), "name");
        let mut e = entry();
        e.aliases[0] = long.clone();
        assert_eq!(field_of("Verdanne", &e), "aliases[0]");
        let mut e = entry();
        e.products[0].name = long.clone();
        assert_eq!(field_of("Verdanne", &e), "products[0].name");
        let mut e = entry();
        e.products[0].category = long;
        assert_eq!(field_of("Verdanne", &e), "products[0].category");
    }

    #[test]
    fn prices_must_be_positive_and_finite() {
        for price in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
            let mut e = entry();
            e.products.push(product("Lumen wallet", price, "EUR"));
            let error = validate("Verdanne", &e, &known).unwrap_err();
            assert_eq!(error.field, "products[1].list_price", "{price}");
        }
    }

    #[test]
    fn unknown_currencies_and_empty_product_names_are_refused() {
        let mut e = entry();
        e.products[0].currency = "XYZ".into();
        let error = validate("Verdanne", &e, &known).unwrap_err();
        assert_eq!(
            error.to_string(),
            "products[0].currency: unknown currency `XYZ`"
        );
        let mut e = entry();
        e.products[0].name = "".into();
        assert_eq!(field_of("Verdanne", &e), "products[0].name");
    }
}
