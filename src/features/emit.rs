//! Hashing terms into model ids (words, bigrams, character n-grams, fields), with the
//! text behind each id kept for reasons.

use super::*;

/// What [`Emitter`] collects for each term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EmitMode {
    /// Embedding rows, for the network.
    Buckets,
    /// [`KnownTerms`] fingerprints, for learning which terms are known.
    Fingerprints,
}

/// What each emitted id stands for. The texts share one buffer: a listing has about a
/// hundred terms, and a string each would cost more than scoring it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Terms {
    pub(super) text: String,
    pub(super) spans: Vec<TermSpan>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TermSpan {
    pub(super) id: u32,
    pub(super) kind: TermKind,
    pub(super) start: u32,
    pub(super) end: u32,
}

impl Terms {
    pub(super) fn push(&mut self, id: u32, kind: TermKind, shown: &str) {
        // A word's character n-grams are all shown as the word: store it once.
        let (start, end) = match self.spans.last() {
            Some(last) if &self.text[last.start as usize..last.end as usize] == shown => {
                (last.start, last.end)
            }
            _ => {
                let start = self.text.len() as u32;
                self.text.push_str(shown);
                (start, self.text.len() as u32)
            }
        };
        self.spans.push(TermSpan {
            id,
            kind,
            start,
            end,
        });
    }

    /// Records `id` as shown with the same text as the term before it.
    pub(super) fn push_shown_as_previous(&mut self, id: u32, kind: TermKind) {
        let (start, end) = self
            .spans
            .last()
            .map_or((0, 0), |last| (last.start, last.end));
        self.spans.push(TermSpan {
            id,
            kind,
            start,
            end,
        });
    }

    /// `(id, kind, text)` in the order the ids were emitted.
    pub fn iter(&self) -> impl Iterator<Item = (u32, TermKind, &str)> + '_ {
        self.spans
            .iter()
            .map(|s| (s.id, s.kind, &self.text[s.start as usize..s.end as usize]))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Collects hashed ids, and optionally the terms behind them.
pub(super) struct Emitter<'a> {
    pub(super) config: &'a FeatureConfig,
    /// Terms outside these are left out; `None` keeps all.
    pub(super) known: Option<&'a KnownTerms>,
    pub(super) mode: EmitMode,
    pub(super) ids: &'a mut Vec<u32>,
    /// Terms left out as unknown so far.
    pub(super) unknown: u32,
    pub(super) terms: Option<&'a mut Terms>,
    /// Reused for bigrams, n-grams and joined keys, so emitting allocates nothing.
    pub(super) buffer: String,
    pub(super) bounds: Vec<usize>,
}

impl Emitter<'_> {
    pub(super) fn emit(&mut self, kind: TermKind, term: &str) {
        self.emit_shown_as(kind, term, term);
    }

    /// Emits `term`, recording `shown` as what it stands for (a character n-gram is shown
    /// as the word it came from: "er>" means nothing to a reviewer).
    pub(super) fn emit_shown_as(&mut self, kind: TermKind, term: &str, shown: &str) -> bool {
        let Some(id) = self.emit_id(kind, term) else {
            return false;
        };
        if let Some(terms) = self.terms.as_deref_mut() {
            terms.push(id, kind, shown);
        }
        true
    }

    /// Emits `term`, shown as whatever the previously emitted term was shown as.
    pub(super) fn emit_shown_as_previous(&mut self, kind: TermKind, term: &str) {
        if let Some(id) = self.emit_id(kind, term) {
            if let Some(terms) = self.terms.as_deref_mut() {
                terms.push_shown_as_previous(id, kind);
            }
        }
    }

    /// Adds the id of `term` to the features; `None` once the listing has `max_ids`, or
    /// when the term is not a known one.
    pub(super) fn emit_id(&mut self, kind: TermKind, term: &str) -> Option<u32> {
        if self.ids.len() >= self.config.max_ids {
            return None;
        }
        let hash = xxh3_64_with_seed(term.as_bytes(), self.config.hash_seed ^ kind.namespace());
        if self.known.is_some_and(|known| !known.contains_hash(hash)) {
            self.unknown += 1;
            return None;
        }
        let id = match self.mode {
            EmitMode::Buckets => (hash & u64::from(self.config.buckets - 1)) as u32,
            EmitMode::Fingerprints => KnownTerms::fingerprint(hash) as u32,
        };
        self.ids.push(id);
        Some(id)
    }

    /// Emits the text in the buffer (filled by `fill`), shown as itself.
    pub(super) fn emit_buffered(&mut self, kind: TermKind, fill: impl FnOnce(&mut String)) {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        fill(&mut buffer);
        self.emit(kind, &buffer);
        self.buffer = buffer;
    }

    /// Character n-grams of `<word>`, each shown as the word.
    pub(super) fn emit_char_grams(&mut self, word: &str, min: usize, max: usize) {
        if word.chars().count() < 2 {
            return;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut bounds = std::mem::take(&mut self.bounds);
        buffer.clear();
        buffer.push('<');
        buffer.push_str(word);
        buffer.push('>');
        bounds.clear();
        if buffer.is_ascii() {
            bounds.extend(0..=buffer.len());
        } else {
            bounds.extend(
                buffer
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(buffer.len())),
            );
        }
        let chars = bounds.len() - 1;
        // The first gram kept records the word; the ones after it reuse that record.
        let mut word_recorded = false;
        for n in min..=max {
            // The whole "<word>" is never a gram: the word itself is emitted already.
            if n >= chars {
                break;
            }
            for start in 0..=(chars - n) {
                let gram = &buffer[bounds[start]..bounds[start + n]];
                if word_recorded {
                    self.emit_shown_as_previous(TermKind::TitleCharGram, gram);
                } else {
                    word_recorded = self.emit_shown_as(TermKind::TitleCharGram, gram, word);
                }
            }
        }
        self.buffer = buffer;
        self.bounds = bounds;
    }
}

impl Featurizer {
    /// Spaced-out words ("r o l e x") are joined so their letters still form the word.
    pub(super) fn join_spaced_letters(units: &[Unit]) -> Vec<String> {
        let mut joined = Vec::new();
        let mut run = String::new();
        let mut run_len = 0;
        for unit in units.iter().chain(std::iter::once(&Unit::Word(""))) {
            match unit {
                Unit::Word(w) if w.chars().count() == 1 && w.chars().all(char::is_alphanumeric) => {
                    run.push_str(w);
                    run_len += 1;
                }
                _ => {
                    if run_len >= 3 {
                        joined.push(std::mem::take(&mut run));
                    }
                    run.clear();
                    run_len = 0;
                }
            }
        }
        joined
    }

    pub(super) fn emit_text(&self, emitter: &mut Emitter, units: &[Unit], title: bool) {
        let (word_kind, bigram_kind) = if title {
            (TermKind::TitleWord, TermKind::TitleBigram)
        } else {
            (TermKind::DescriptionWord, TermKind::DescriptionBigram)
        };
        let (min, max) = (self.config.char_ngram_min, self.config.char_ngram_max);
        for (i, unit) in units.iter().enumerate() {
            match *unit {
                Unit::Word(word) => {
                    // A bare number means little on its own and what it means comes from
                    // its neighbours: the "1" of "1:1" (a replica grade) is not the "1" of
                    // "1.5 m". It keeps its bigrams and character n-grams but gets no
                    // word feature, which would learn whichever use is most common.
                    if !is_number(word) {
                        emitter.emit(word_kind, word);
                    }
                    if let Some(plain) = deleet(word) {
                        emitter.emit(word_kind, &plain);
                    }
                    if title {
                        emitter.emit_char_grams(word, min, max);
                    }
                }
                Unit::Cjk(c) => emitter.emit(word_kind, c),
            }
            if let Some(next) = units.get(i + 1) {
                emitter.emit_buffered(bigram_kind, |buffer| {
                    buffer.push_str(unit.text());
                    // Adjacent CJK characters: the bigram is the closest thing to a word.
                    if !matches!((unit, next), (Unit::Cjk(_), Unit::Cjk(_))) {
                        buffer.push(' ');
                    }
                    buffer.push_str(next.text());
                });
            }
        }
        for word in Self::join_spaced_letters(units) {
            emitter.emit(word_kind, &word);
            if title {
                emitter.emit_char_grams(&word, min, max);
            }
        }
    }

    /// A listing's terms in model order: title, brand and category fields, description.
    pub(super) fn emit_listing(
        &self,
        emitter: &mut Emitter,
        title: &Analyzed,
        description: &Analyzed,
        brand: &str,
        category: &str,
    ) {
        self.emit_text(emitter, &title.units, true);
        if !brand.is_empty() {
            emitter.emit(TermKind::Brand, brand);
        }
        if !category.is_empty() {
            emitter.emit(TermKind::Category, category);
        }
        if !brand.is_empty() && !category.is_empty() {
            emitter.emit_buffered(TermKind::BrandCategory, |buffer| {
                buffer.push_str(brand);
                buffer.push_str(" / ");
                buffer.push_str(category);
            });
        }
        self.emit_text(emitter, &description.units, false);
    }
}
