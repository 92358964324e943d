//! Finding the brand a listing claims or fits: its field, then names and aliases in its text,
//! and whether an accessory marker stands before them.

use super::fold::{words, Word};
use super::*;

/// A name or alias found in text, before its relation is known.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Found {
    pub(super) brand: u32,
    pub(super) how: MatchKind,
    /// Word positions `[first, last]`.
    pub(super) first: usize,
    pub(super) last: usize,
}

impl BrandIndex {
    /// An index that knows no brand (models trained before brand identification, tests).
    pub fn empty() -> BrandIndex {
        BrandIndex::from_parts(BrandLearning::default(), Vec::new(), Vec::new(), Vec::new())
    }

    pub(super) fn from_parts(
        learning: BrandLearning,
        brands: Vec<KnownBrand>,
        aliases: Vec<(String, u32)>,
        markers: Vec<String>,
    ) -> BrandIndex {
        let mut names = FastMap::default();
        for (i, brand) in brands.iter().enumerate() {
            for name in std::iter::once(&brand.name).chain(&brand.aliases) {
                let key = compact_name(name);
                if !key.is_empty() {
                    names.entry(key).or_insert(i as u32);
                }
            }
        }
        let name_prefixes = names
            .keys()
            .flat_map(|k| {
                k.char_indices()
                    .skip(1)
                    .map(|(i, _)| &k[..i])
                    .chain(std::iter::once(k.as_str()))
            })
            .map(str::to_string)
            .collect();
        let mut by_name = FastMap::default();
        for (i, brand) in brands.iter().enumerate() {
            by_name.entry(brand.name.clone()).or_insert(i as u32);
        }
        BrandIndex {
            learning,
            brands,
            names,
            by_name,
            aliases: aliases.into_iter().collect(),
            markers: markers.into_iter().collect(),
            name_prefixes,
        }
    }

    pub fn brands(&self) -> &[KnownBrand] {
        &self.brands
    }

    /// Whether `found`, claimed by a listing in `category_key` (normalised, and a category
    /// the model knows), only shares its name with a learned brand that never sells there:
    /// at least [`NAMESAKE_MIN_LISTINGS`] training listings of the brand, none in that
    /// category. Registered brands, accessories and unknown or empty categories never are.
    pub fn is_namesake(&self, found: &BrandMatch, category_key: &str) -> bool {
        if found.registered || found.relation != Relation::Is || category_key.is_empty() {
            return false;
        }
        let brand = self
            .by_name
            .get(&found.name)
            .map(|&i| &self.brands[i as usize]);
        brand.is_some_and(|b| {
            b.listings >= NAMESAKE_MIN_LISTINGS
                && !b.categories.is_empty()
                && !b.categories.iter().any(|c| c == category_key)
        })
    }

    pub fn learning(&self) -> &BrandLearning {
        &self.learning
    }

    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.aliases
            .iter()
            .map(|(term, &b)| (term.as_str(), self.brands[b as usize].name.as_str()))
    }

    pub fn markers(&self) -> impl Iterator<Item = &str> + '_ {
        self.markers.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.brands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }

    /// The same index with more brands (the registry's): their names and aliases count as
    /// names; a registered name already taken by a learned brand keeps the learned one.
    pub fn with_registered(&self, registered: impl IntoIterator<Item = KnownBrand>) -> BrandIndex {
        let mut brands = self.brands.clone();
        brands.extend(registered.into_iter().map(|mut b| {
            b.registered = true;
            b
        }));
        let aliases = self.aliases.iter().map(|(t, &b)| (t.clone(), b)).collect();
        let markers = self.markers.iter().cloned().collect();
        BrandIndex::from_parts(self.learning, brands, aliases, markers)
    }

    /// The brand a listing claims or refers to, if it names one the index knows.
    pub fn identify(
        &self,
        brand_field: &str,
        title: &str,
        description: &str,
    ) -> Option<BrandMatch> {
        if self.brands.is_empty() {
            return None;
        }
        let field_words = words(brand_field);
        if let Some(found) = self.find_field(&field_words) {
            // Accessory sellers often select the brand their product fits: "case for Apple
            // iPhone" with brand Apple is still an accessory when the title only says "for".
            let title_words = words(title);
            let mentions: Vec<Found> = self
                .find_names(&title_words, false)
                .into_iter()
                .filter(|f| f.brand == found.brand)
                .collect();
            // The title writing the selected brand's name in disguise says more than the
            // field: that mention is reported ("V3rd4nn3" with brand "Verdanne").
            if let Some(disguised) = mentions
                .iter()
                .find(|f| f.how.is_disguise() && self.relation(&title_words, f) == Relation::Is)
            {
                return Some(self.describe(
                    disguised.clone(),
                    &title_words,
                    title,
                    BrandSource::Title,
                    Relation::Is,
                ));
            }
            let relation = if !mentions.is_empty()
                && mentions
                    .iter()
                    .all(|f| self.relation(&title_words, f) == Relation::For)
            {
                Relation::For
            } else {
                Relation::Is
            };
            return Some(self.describe(
                found,
                &field_words,
                brand_field,
                BrandSource::Field,
                relation,
            ));
        }
        // A brand field naming another brand outranks an alias, but not the name itself:
        // "Hasbro" + "Star Wars ..." is Hasbro's; "Generic" + "Rolex Submariner" claims Rolex.
        let field_named = !field_words.is_empty();
        for (text, source) in [
            (title, BrandSource::Title),
            (description, BrandSource::Description),
        ] {
            let text_words = words(text);
            let names = self.find_names(&text_words, source == BrandSource::Title && !field_named);
            if let Some(found) = names.first().cloned() {
                // Any claim ("Rolex ... for Rolex") outranks an accessory mention.
                let claim = names
                    .iter()
                    .find(|f| self.relation(&text_words, f) == Relation::Is);
                let (found, relation) = match claim {
                    Some(claim) => (claim.clone(), Relation::Is),
                    None => (found, Relation::For),
                };
                return Some(self.describe(found, &text_words, text, source, relation));
            }
        }
        None
    }

    pub(super) fn relation(&self, words: &[Word], found: &Found) -> Relation {
        match found.first.checked_sub(1).map(|i| &words[i]) {
            Some(before) if self.markers.contains(&before.text) => Relation::For,
            _ => Relation::Is,
        }
    }

    pub(super) fn describe(
        &self,
        found: Found,
        words: &[Word],
        text: &str,
        source: BrandSource,
        relation: Relation,
    ) -> BrandMatch {
        let brand = &self.brands[found.brand as usize];
        let how = if brand.registered && found.how == MatchKind::Exact {
            MatchKind::Registered
        } else {
            found.how
        };
        BrandMatch {
            name: brand.name.clone(),
            found_in: source,
            how,
            text: text[words[found.first].start..words[found.last].end].to_string(),
            relation,
            registered: brand.registered,
        }
    }

    pub(super) fn find_field(&self, words: &[Word]) -> Option<Found> {
        if words.is_empty() {
            return None;
        }
        let all: String = words.iter().map(|w| w.text.as_str()).collect();
        let leet: String = words
            .iter()
            .map(|w| w.leet.as_deref().unwrap_or(&w.text))
            .collect();
        let disguise = disguise_of(words);
        let last = words.len() - 1;
        if let Some(&brand) = self.names.get(&all) {
            return Some(Found {
                brand,
                how: disguise.unwrap_or(MatchKind::Exact),
                first: 0,
                last,
            });
        }
        let alt: String = words
            .iter()
            .map(|w| {
                w.leet_alt
                    .as_deref()
                    .or(w.leet.as_deref())
                    .unwrap_or(&w.text)
            })
            .collect();
        self.names
            .get(&leet)
            .or_else(|| self.names.get(&alt))
            .map(|&brand| Found {
                brand,
                how: MatchKind::Leet,
                first: 0,
                last,
            })
    }

    /// Names (and, when `with_aliases`, aliases) in text, in order of position.
    pub(super) fn find_names(&self, words: &[Word], with_aliases: bool) -> Vec<Found> {
        let mut found = Vec::new();
        let mut plain = String::new();
        let mut leet = String::new();
        let mut alt = String::new();
        let mut i = 0;
        while i < words.len() {
            plain.clear();
            leet.clear();
            alt.clear();
            let mut best: Option<Found> = None;
            let mut any_leet = false;
            for j in i..words.len().min(i + MAX_NAME_WORDS) {
                let word = &words[j];
                plain.push_str(&word.text);
                leet.push_str(word.leet.as_deref().unwrap_or(&word.text));
                alt.push_str(
                    word.leet_alt
                        .as_deref()
                        .or(word.leet.as_deref())
                        .unwrap_or(&word.text),
                );
                any_leet |= word.leet.is_some();
                let may_begin_a_name = self.name_prefixes.contains(&plain)
                    || (any_leet
                        && (self.name_prefixes.contains(&leet)
                            || self.name_prefixes.contains(&alt)));
                if !may_begin_a_name {
                    break;
                }
                if plain.len() < MIN_TEXT_NAME_CHARS {
                    continue;
                }
                let spaced = j > i
                    && words[i..=j]
                        .iter()
                        .all(|w| !w.cjk && w.text.chars().count() == 1);
                let hit = match self.names.get(&plain) {
                    Some(&brand) => Some((brand, None)),
                    None if any_leet => self
                        .names
                        .get(&leet)
                        .or_else(|| self.names.get(&alt))
                        .map(|&b| (b, Some(MatchKind::Leet))),
                    None => None,
                };
                if let Some((brand, leet_kind)) = hit {
                    let how = leet_kind
                        .or(disguise_of(&words[i..=j]))
                        .unwrap_or(if spaced {
                            MatchKind::Spaced
                        } else {
                            MatchKind::Exact
                        });
                    best = Some(Found {
                        brand,
                        how,
                        first: i,
                        last: j,
                    });
                }
            }
            if best.is_none() && with_aliases {
                best = self.find_alias(words, i);
            }
            match best {
                Some(f) => {
                    i = f.last + 1;
                    found.push(f);
                }
                None => i += 1,
            }
        }
        // An alias only stands in when no name is written ("strap for Rolex Submariner"
        // is about Rolex as written, not about the alias after it).
        if found.iter().any(|f| f.how != MatchKind::Alias) {
            found.retain(|f| f.how != MatchKind::Alias);
        }
        found
    }

    pub(super) fn find_alias(&self, words: &[Word], i: usize) -> Option<Found> {
        let word = &words[i];
        if word.cjk {
            let next = words.get(i + 1).filter(|n| n.cjk && n.start == word.end)?;
            let pair = format!("{}{}", word.text, next.text);
            return self.aliases.get(&pair).map(|&brand| Found {
                brand,
                how: MatchKind::Alias,
                first: i,
                last: i + 1,
            });
        }
        let term = word.leet.as_deref().unwrap_or(&word.text);
        self.aliases
            .get(&word.text)
            .or_else(|| self.aliases.get(term))
            .map(|&brand| Found {
                brand,
                how: MatchKind::Alias,
                first: i,
                last: i,
            })
    }
}

pub(super) fn disguise_of(words: &[Word]) -> Option<MatchKind> {
    if words.iter().any(|w| w.disguise.homoglyph) {
        Some(MatchKind::Homoglyph)
    } else if words.iter().any(|w| w.disguise.full_width) {
        Some(MatchKind::FullWidth)
    } else {
        None
    }
}
