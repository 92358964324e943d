//! The `tokenizers` pipeline and its exact ASCII shortcut: listing text → words and CJK
//! characters, per field.

use super::*;

/// The `tokenizers` pipeline: Unicode compatibility decomposition, accent stripping
/// (so "Guccì" meets "Gucci") and lower-casing, then splitting on white space and punctuation.
pub fn standard_tokenizer() -> Tokenizer {
    let mut tokenizer = Tokenizer::new(tokenizers::models::wordlevel::WordLevel::default());
    let normalizer =
        NormalizerSequence::new(vec![NFKD.into(), StripAccents.into(), Lowercase.into()]);
    let pre_tokenizer =
        PreTokenizerSequence::new(vec![WhitespaceSplit.into(), Punctuation::default().into()]);
    // Infallible for this normalizer type; the Result exists for other tokenizer builders.
    let _ = tokenizer.with_normalizer(Some(normalizer));
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer
}

/// The non-empty fields joined by line breaks, and the byte offset where each field ends.
pub(super) fn join_fields<const N: usize>(fields: [&str; N]) -> (String, [usize; N]) {
    let mut joined = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum());
    let mut ends = [0usize; N];
    for (i, field) in fields.iter().enumerate() {
        if !field.is_empty() {
            if !joined.is_empty() {
                joined.push('\n');
            }
            joined.push_str(field);
        }
        ends[i] = joined.len();
    }
    (joined, ends)
}

/// Whether two tokenizers normalise and pre-tokenise alike (same JSON definitions).
pub(super) fn same_pipeline(a: &Tokenizer, b: &Tokenizer) -> bool {
    let definition = |t: &Tokenizer| {
        (
            serde_json::to_value(t.get_normalizer()).ok(),
            serde_json::to_value(t.get_pre_tokenizer()).ok(),
        )
    };
    let (a, b) = (definition(a), definition(b));
    a.0.is_some() && a.1.is_some() && a == b
}

/// One ASCII word (no white space in it) through the standard pipeline, appended to `text`:
/// lower-cased, each punctuation character a piece of its own. `origin` is where the word
/// starts in the original text.
pub(super) fn push_ascii_word(
    word: &str,
    origin: usize,
    text: &mut String,
    pieces: &mut Vec<Piece>,
) {
    let base = text.len();
    text.push_str(word);
    text[base..].make_ascii_lowercase();
    let mut start = None;
    for (i, b) in word.bytes().enumerate() {
        if b.is_ascii_punctuation() {
            if let Some(s) = start.take() {
                pieces.push(Piece::moved(base + s, base + i, origin + s));
            }
            pieces.push(Piece::moved(base + i, base + i + 1, origin + i));
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        pieces.push(Piece::moved(base + s, base + word.len(), origin + s));
    }
}

/// The words of `text` between runs of white space, with their byte offsets.
pub(super) fn whitespace_words(text: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    text.split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

/// CJK scripts are written without spaces between words: they get character uni- and bigrams.
pub(super) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B–F
}

/// Sellers write "r0lex" or "gucc1" to dodge filters: read digits as the letters they imitate.
pub(super) fn deleet(word: &str) -> Option<String> {
    let has_alpha = word.chars().any(|c| c.is_alphabetic());
    let has_digit = word.chars().any(|c| c.is_ascii_digit());
    if !(has_alpha && has_digit) {
        return None;
    }
    Some(
        word.chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => 'l',
                '3' => 'e',
                '4' => 'a',
                '5' => 's',
                '7' => 't',
                '8' => 'b',
                other => other,
            })
            .collect(),
    )
}

/// Words made only of digits (after normalisation, so full-width digits count too).
pub(super) fn is_number(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

/// Text units after pre-tokenization: words, and single CJK characters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Unit<'a> {
    Word(&'a str),
    Cjk(&'a str),
}

impl<'a> Unit<'a> {
    pub(super) fn text(self) -> &'a str {
        match self {
            Unit::Word(text) | Unit::Cjk(text) => text,
        }
    }
}

/// One field after the tokenizer: units for n-grams, words for product keys. Both borrow
/// from the pre-tokenised text.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Analyzed<'a> {
    pub(super) units: Vec<Unit<'a>>,
    pub(super) words: Vec<&'a str>,
}

/// Several fields run through the tokenizer together.
pub(super) struct Tokenized<const N: usize> {
    pub(super) text: TokenizedText,
    /// Byte offset in the joined original text where each field ends.
    pub(super) ends: [usize; N],
}

pub(super) enum TokenizedText {
    Empty,
    /// The `tokenizers` pipeline's output.
    Pipeline(PreTokenizedString),
    /// The standard pipeline's pieces, laid end to end in `text`: ASCII words computed
    /// directly, and other words through the `tokenizers` pipeline.
    Direct {
        text: String,
        pieces: Vec<Piece>,
    },
}

/// A piece of pre-tokenised text: its bytes in [`TokenizedText::Direct`]'s text, and where
/// it came from in the original text (which decides its field).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Piece {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) origin: usize,
}

impl Piece {
    pub(super) fn moved(start: usize, end: usize, origin: usize) -> Piece {
        Piece { start, end, origin }
    }
}

impl<const N: usize> Tokenized<N> {
    /// Hands each field its units (words and CJK characters) and words (pieces with a
    /// letter or digit, CJK runs kept whole).
    pub(super) fn fields(&self) -> [Analyzed<'_>; N] {
        let mut out: [Analyzed; N] = std::array::from_fn(|_| Analyzed::default());
        let pieces: Vec<(&str, usize)> = match &self.text {
            TokenizedText::Empty => return out,
            TokenizedText::Pipeline(pre) => pre
                .get_splits(OffsetReferential::Original, OffsetType::Byte)
                .into_iter()
                .map(|(piece, (start, _), _)| (piece, start))
                .collect(),
            TokenizedText::Direct { text, pieces } => pieces
                .iter()
                .map(|p| (&text[p.start..p.end], p.origin))
                .collect(),
        };
        for (piece, start) in pieces {
            let field = self
                .ends
                .iter()
                .position(|end| start < *end)
                .unwrap_or(N - 1);
            let target = &mut out[field];
            if piece.chars().any(char::is_alphanumeric) {
                target.words.push(piece);
            }
            let mut word_start = 0;
            for (i, c) in piece.char_indices() {
                if is_cjk(c) {
                    if word_start < i {
                        target.units.push(Unit::Word(&piece[word_start..i]));
                    }
                    let end = i + c.len_utf8();
                    target.units.push(Unit::Cjk(&piece[i..end]));
                    word_start = end;
                }
            }
            if word_start < piece.len() {
                target.units.push(Unit::Word(&piece[word_start..]));
            }
        }
        out
    }
}

impl Featurizer {
    /// Runs the tokenizer once over several fields (joined by line breaks). One call instead
    /// of one per field: the tokenizer's per-call set-up is most of the cost on short texts.
    pub(super) fn tokenize<const N: usize>(&self, fields: [&str; N]) -> Tokenized<N> {
        let (joined, ends) = join_fields(fields);
        if joined.is_empty() {
            return Tokenized {
                text: TokenizedText::Empty,
                ends,
            };
        }
        if self.standard_pipeline {
            return Tokenized {
                text: self.direct_standard_pipeline(&joined),
                ends,
            };
        }
        self.tokenize_with_pipeline(joined, ends)
    }

    /// The standard pipeline, with its result computed directly where it is known: on an
    /// ASCII word, the compatibility decomposition and accent stripping change nothing and
    /// lower-casing is ASCII lower-casing, so the word is lower-cased and split at
    /// punctuation without the byte-alignment bookkeeping of `tokenizers` (about half of all
    /// listings are plain ASCII). Each run of other words (with the white space between
    /// them) goes through `tokenizers`. Runs are cut only at white space, which every step
    /// of the pipeline keeps as white space and never looks across (normalisation is per
    /// character, and combining marks never follow a space), so the pieces are the ones the
    /// whole text would give. Tests compare the two on the fixture corpus and on random text.
    pub(super) fn direct_standard_pipeline(&self, joined: &str) -> TokenizedText {
        let mut text = String::with_capacity(joined.len() + 16);
        let mut pieces = Vec::with_capacity(joined.len() / 4);
        let mut run: Option<(usize, usize)> = None;
        for (start, word) in whitespace_words(joined) {
            if word.is_ascii() {
                if let Some((s, e)) = run.take() {
                    self.push_pipeline_run(&joined[s..e], s, &mut text, &mut pieces);
                }
                push_ascii_word(word, start, &mut text, &mut pieces);
            } else {
                let run_start = run.map_or(start, |(s, _)| s);
                run = Some((run_start, start + word.len()));
            }
        }
        if let Some((s, e)) = run {
            self.push_pipeline_run(&joined[s..e], s, &mut text, &mut pieces);
        }
        TokenizedText::Direct { text, pieces }
    }

    /// Runs `run` (which starts at `origin` in the original text) through the `tokenizers`
    /// pipeline and appends its pieces.
    pub(super) fn push_pipeline_run(
        &self,
        run: &str,
        origin: usize,
        text: &mut String,
        pieces: &mut Vec<Piece>,
    ) {
        let pre = self.pipeline(run.to_string());
        for (piece, (start, _), _) in pre.get_splits(OffsetReferential::Original, OffsetType::Byte)
        {
            let base = text.len();
            text.push_str(piece);
            pieces.push(Piece::moved(base, text.len(), origin + start));
        }
    }

    /// The tokenizer's normaliser and pre-tokenizer over `text`.
    pub(super) fn pipeline(&self, text: String) -> PreTokenizedString {
        let mut normalized = NormalizedString::from(text);
        if let Some(normalizer) = self.tokenizer.get_normalizer() {
            // The normalizers used here never fail; on an exotic tokenizer.json that does,
            // the text is used un-normalised rather than dropped.
            let _ = normalizer.normalize(&mut normalized);
        }
        let mut pre = PreTokenizedString::from(normalized);
        if let Some(pre_tokenizer) = self.tokenizer.get_pre_tokenizer() {
            let _ = pre_tokenizer.pre_tokenize(&mut pre);
        }
        pre
    }

    /// The `tokenizers` pipeline itself, for any text.
    pub(super) fn tokenize_with_pipeline<const N: usize>(
        &self,
        joined: String,
        ends: [usize; N],
    ) -> Tokenized<N> {
        Tokenized {
            text: TokenizedText::Pipeline(self.pipeline(joined)),
            ends,
        }
    }
}
