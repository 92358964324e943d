//! Folding listing text into words as brand names are compared: case, accents, full-width
//! and look-alike letters, digits and symbols for letters.

use unicode_normalization::UnicodeNormalization;

/// How a word's letters were written, beyond case and accents.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Disguise {
    pub(super) full_width: bool,
    pub(super) homoglyph: bool,
}

/// A folded word (or one CJK character) and where it stands in the original text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Word {
    pub(super) text: String,
    /// The word with digits and symbols read as letters, when it mixes the two.
    pub(super) leet: Option<String>,
    /// The same with "1" read as "i" rather than "l", when it has one.
    pub(super) leet_alt: Option<String>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) cjk: bool,
    pub(super) disguise: Disguise,
}

pub(super) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF
        | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Folds one character: lower case, no accents, full-width and look-alike letters to the
/// letters they show. Returns what it became and how it was disguised.
pub(super) fn fold_char(c: char, out: &mut String) -> Disguise {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return Disguise::default();
    }
    // Punctuation and symbols (full-width ones too) only separate words.
    if !c.is_alphanumeric() {
        out.push(' ');
        return Disguise::default();
    }
    // Chinese, Japanese and Korean characters have no case, accents or look-alikes to undo.
    if is_cjk(c) && !(0xF900..=0xFAFF).contains(&(c as u32)) {
        out.push(c);
        return Disguise::default();
    }
    let mut disguise = Disguise::default();
    let compat: String = std::iter::once(c).nfkc().collect();
    let base: String = compat
        .nfd()
        .filter(|d| !unicode_normalization::char::is_combining_mark(*d))
        .collect();
    if base.is_ascii() {
        // Full-width forms change under compatibility normalisation; accented letters don't.
        disguise.full_width = compat.chars().any(|d| d.is_ascii()) && compat != c.to_string();
        out.extend(base.chars().map(|d| d.to_ascii_lowercase()));
        return disguise;
    }
    let lower = base.to_lowercase();
    if lower.chars().all(is_cjk) {
        out.push_str(&lower);
        return disguise;
    }
    let skeleton: String = unicode_security::skeleton(&lower)
        .filter(|d| !unicode_normalization::char::is_combining_mark(*d))
        .collect();
    if skeleton.is_ascii() && skeleton.chars().all(|d| d.is_ascii_alphanumeric()) {
        disguise.homoglyph = true;
        out.extend(skeleton.chars().map(|d| d.to_ascii_lowercase()));
    } else {
        out.push_str(&lower);
    }
    disguise
}

/// Digits and symbols sellers write for letters ("1" and "|" also stand for "i": see
/// [`leet_alternative`]).
pub(super) fn leet_letter(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '!' => 'i',
        '1' | '|' => 'l',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        _ => return None,
    })
}

/// The other reading of a leet word: "1" and "|" as "i" ("n1ke"), not "l" ("r0l3x").
pub(super) fn leet_alternative(leet: &str, original: &str) -> Option<String> {
    original.contains(['1', '|']).then(|| {
        original
            .chars()
            .zip(leet.chars())
            .map(|(o, l)| if matches!(o, '1' | '|') { 'i' } else { l })
            .collect()
    })
}

/// Characters that belong to a word: letters, digits, and the symbols used as letters.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '$' | '!' | '|')
}

/// Splits text into folded words and single CJK characters.
pub(super) fn words(text: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut current: Option<Word> = None;
    let mut folded = String::new();
    let flush = |current: &mut Option<Word>, out: &mut Vec<Word>| {
        if let Some(mut word) = current.take() {
            let trimmed = word.text.trim_matches(|c: char| !c.is_alphanumeric());
            if trimmed.is_empty() {
                return;
            }
            let has_alpha = word.text.chars().any(char::is_alphabetic);
            let leety = word.text.chars().any(|c| leet_letter(c).is_some());
            if has_alpha && leety {
                let leet: String = word
                    .text
                    .chars()
                    .map(|c| leet_letter(c).unwrap_or(c))
                    .collect();
                word.leet_alt = leet_alternative(&leet, &word.text);
                word.leet = Some(leet);
            }
            if trimmed.len() != word.text.len() {
                word.text = trimmed.to_string();
            }
            out.push(word);
        }
    };
    for (start, c) in text.char_indices() {
        let end = start + c.len_utf8();
        folded.clear();
        let disguise = fold_char(c, &mut folded);
        for f in folded.chars() {
            if is_cjk(f) {
                flush(&mut current, &mut out);
                out.push(Word {
                    text: f.to_string(),
                    leet: None,
                    leet_alt: None,
                    start,
                    end,
                    cjk: true,
                    disguise,
                });
            } else if is_word_char(f) {
                let word = current.get_or_insert_with(|| Word {
                    text: String::new(),
                    leet: None,
                    leet_alt: None,
                    start,
                    end,
                    cjk: false,
                    disguise: Disguise::default(),
                });
                word.text.push(f);
                word.end = end;
                word.disguise.full_width |= disguise.full_width;
                word.disguise.homoglyph |= disguise.homoglyph;
            } else {
                flush(&mut current, &mut out);
            }
        }
    }
    flush(&mut current, &mut out);
    out
}

/// A name folded as listing text is, without spaces: "Louis Vuitton" → "louisvuitton".
pub fn compact_name(name: &str) -> String {
    words(name).into_iter().map(|w| w.text).collect()
}
