//! COCO-style caption tokenization: what pycocoevalcap's `PTBTokenizer` does
//! (Stanford PTBTokenizer with `-lowerCase`, then the punctuation tokens
//! `'' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;` removed), in Rust.
//!
//! Rules: lowercase; `’` read as `'`; punctuation split off words and dropped;
//! clitics split as PTB does (`can't` -> `ca n't`, `man's` -> `man 's`,
//! `they're` -> `they 're`, `cannot` -> `can not`, `gonna` -> `gon na`);
//! `$`, `%` and `#` split off as tokens of their own; commas, colons and
//! periods inside numbers (`1,000`, `10:30`, `3.5`) and periods inside
//! abbreviations (`u.s.`) kept; hyphens inside words kept (`t-shirt`);
//! whitespace collapsed.
//!
//! Where it differs from pycocoevalcap 1.2's tokenizer (checked against the
//! real one, Stanford CoreNLP 3.4.1, in `tests/fixtures/captions/tokenizer.expected.json`):
//! - brackets are dropped. pycocoevalcap asks CoreNLP for lowercase output and
//!   then compares tokens with the uppercase `-LRB-` ... `-RCB-`, so it keeps
//!   `-lrb-`, `-rrb-`, `-lcb-`, `-rcb-` (and `-lsb-`, `-rsb-`, not on its list)
//!   as words; we follow the list's intent;
//! - a token made only of punctuation is dropped (`!!!` stays in pycocoevalcap);
//! - PTB's rarer splits (`'tis`, `d'ye`, `gimme`) and its full abbreviation
//!   list are not reproduced (the common ones, `mr.`, `dr.`, `st.`, ..., are).
//!
//! Text that is already tokenized (lowercase words, single spaces, no
//! punctuation) passes through unchanged and without allocating.

use std::borrow::Cow;

/// Clitic suffixes PTB splits off, longest first.
const CLITICS: [&str; 7] = ["n't", "'ll", "'re", "'ve", "'s", "'d", "'m"];
/// Words PTB splits in two.
const SPLIT_WORDS: [(&str, &str, &str); 5] = [
    ("cannot", "can", "not"),
    ("gonna", "gon", "na"),
    ("gotta", "got", "ta"),
    ("wanna", "wan", "na"),
    ("lemme", "lem", "me"),
];

/// Tokenize a caption; the result is the tokens joined by single spaces.
pub fn tokenize(text: &str) -> Cow<'_, str> {
    if is_already_tokenized(text) {
        return Cow::Borrowed(text);
    }
    let lowered = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    let mut out = String::with_capacity(lowered.len());
    for chunk in lowered.split_whitespace() {
        split_chunk(chunk, &mut out);
    }
    Cow::Owned(out)
}

/// Lowercase ASCII words and digits separated by single spaces, and no word
/// that PTB would split: nothing to do.
fn is_already_tokenized(text: &str) -> bool {
    walk_tokenized(text, |_| true)
}

/// Byte classes for [`walk_tokenized`]: 0 for `a-z` and `0-9`, [`SPACE`] for
/// the space, [`OTHER`] for anything else.
const SPACE: u8 = 1;
const OTHER: u8 = 2;
const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut c = 0;
    while c < 256 {
        if (c >= b'a' as usize && c <= b'z' as usize) || (c >= b'0' as usize && c <= b'9' as usize)
        {
            t[c] = 0;
        }
        c += 1;
    }
    t[b' ' as usize] = SPACE;
    t
};

/// If `text` is already tokenized (see [`tokenize`]), hand each of its tokens
/// to `token` in order and return true; false when it is not, or when
/// `token` returns false. The caption path uses it to tokenize and split at
/// once.
///
/// Each 64-byte block is classified without a branch per byte (a set bit
/// per space, and whether any byte is neither a space nor `a-z0-9`); tokens
/// are then cut at the set bits. A branch per byte mispredicted at every
/// word boundary.
pub fn walk_tokenized<'a>(text: &'a str, mut token: impl FnMut(&'a str) -> bool) -> bool {
    let b = text.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let mut word_start = 0;
    let mut prev_space = false;
    for (block, chunk) in b.chunks(64).enumerate() {
        let base = block * 64;
        let mut spaces = 0u64;
        let mut other = 0u8;
        for (i, &c) in chunk.iter().enumerate() {
            let k = CLASS[usize::from(c)];
            other |= k;
            spaces |= u64::from(k & SPACE) << i;
        }
        // Two spaces in a row, within the block or across its start.
        if other & OTHER != 0 || spaces & (spaces >> 1) != 0 || (prev_space && spaces & 1 != 0) {
            return false;
        }
        prev_space = spaces >> (chunk.len() - 1) & 1 != 0;
        while spaces != 0 {
            let end = base + spaces.trailing_zeros() as usize;
            // ASCII bytes only: `word_start..end` is a char range.
            if is_split_word(&b[word_start..end]) || !token(&text[word_start..end]) {
                return false;
            }
            word_start = end + 1;
            spaces &= spaces - 1;
        }
    }
    if is_split_word(&b[word_start..]) {
        return false;
    }
    word_start == b.len() || token(&text[word_start..])
}

/// One of [`SPLIT_WORDS`] (lengths first: most words differ in length).
fn is_split_word(w: &[u8]) -> bool {
    SPLIT_WORDS
        .iter()
        .any(|(word, _, _)| word.len() == w.len() && word.as_bytes() == w)
}

fn push_token(out: &mut String, token: &str) {
    if token.is_empty() || is_dropped_punctuation(token) {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
}

/// Tokens made only of punctuation that COCO removes (and brackets).
fn is_dropped_punctuation(token: &str) -> bool {
    token.chars().all(|c| {
        matches!(
            c,
            '.' | ','
                | '!'
                | '?'
                | ';'
                | ':'
                | '-'
                | '\''
                | '`'
                | '"'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '…'
        )
    })
}

/// Characters that separate tokens wherever they appear (except the
/// number-internal cases handled in `split_chunk`).
fn is_splitting(c: char) -> bool {
    matches!(
        c,
        ',' | ';'
            | '!'
            | '?'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '"'
            | '`'
            | '…'
            | '$'
            | '%'
            | '#'
            | ':'
    )
}

fn split_chunk(chunk: &str, out: &mut String) {
    let chars: Vec<char> = chunk.chars().collect();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let between_digits = i > 0
            && i + 1 < chars.len()
            && chars[i - 1].is_ascii_digit()
            && chars[i + 1].is_ascii_digit();
        // A run of two or more periods is an ellipsis, wherever it is.
        let ellipsis =
            c == '.' && (chars.get(i + 1) == Some(&'.') || (i > 0 && chars[i - 1] == '.'));
        if ellipsis || (is_splitting(c) && !(matches!(c, ',' | ':') && between_digits)) {
            word(&chars[start..i], out);
            if matches!(c, '$' | '%' | '#') {
                push_token(out, &c.to_string());
            }
            start = i + 1;
        }
        i += 1;
    }
    word(&chars[start..], out);
}

/// One word without splitting characters: strip leading and trailing quotes,
/// hyphens and periods, then split clitics.
fn word(chars: &[char], out: &mut String) {
    // A clitic already split off ("'s" in "man 's") stays as it is.
    if chars.first() == Some(&'\'') && CLITICS.iter().any(|c| c.chars().eq(chars.iter().copied())) {
        push_token(out, &chars.iter().collect::<String>());
        return;
    }
    let mut lo = 0;
    let mut hi = chars.len();
    while lo < hi && matches!(chars[lo], '\'' | '-' | '.') {
        lo += 1;
    }
    while hi > lo && matches!(chars[hi - 1], '-' | '.' | '\'') {
        // Keep the final period of an abbreviation such as "u.s.".
        if chars[hi - 1] == '.' && is_abbreviation(&chars[lo..hi]) {
            break;
        }
        hi -= 1;
    }
    if lo >= hi {
        return;
    }
    let w: String = chars[lo..hi].iter().collect();
    if let Some((_, a, b)) = SPLIT_WORDS.iter().find(|(word, _, _)| *word == w) {
        push_token(out, a);
        push_token(out, b);
        return;
    }
    for clitic in CLITICS {
        if let Some(stem) = w.strip_suffix(clitic) {
            // "n't" keeps the letter before it apart: "can't" -> "ca n't".
            if !stem.is_empty() && !stem.ends_with('\'') {
                // The stem is a word of its own: "x-'s" gives "x 's", not "x- 's".
                let stem: Vec<char> = stem.chars().collect();
                word(&stem, out);
                push_token(out, clitic);
                return;
            }
        }
    }
    push_token(out, &w);
}

/// Abbreviations PTB keeps with their period (its list is longer; these are
/// the ones that occur in captions).
const ABBREVIATIONS: [&str; 16] = [
    "mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "prof.", "mt.", "ft.", "vs.", "etc.", "inc.",
    "co.", "ltd.", "ave.",
];

/// Letters separated by single periods ("u.s.", "e.g."), or a known abbreviation.
fn is_abbreviation(chars: &[char]) -> bool {
    let dotted = chars.len() >= 4
        && chars.iter().enumerate().all(|(i, c)| {
            if i % 2 == 0 {
                c.is_alphabetic()
            } else {
                *c == '.'
            }
        });
    dotted
        || ABBREVIATIONS
            .iter()
            .any(|a| a.chars().eq(chars.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases = [
            ("A man riding a bike.", "a man riding a bike"),
            ("Two dogs, playing; outside!", "two dogs playing outside"),
            ("The dog's ball", "the dog 's ball"),
            ("I can't see", "i ca n't see"),
            ("They're here, aren't they?", "they 're here are n't they"),
            ("We'll go; I'd say I'm in.", "we 'll go i 'd say i 'm in"),
            ("He cannot, gonna wait", "he can not gon na wait"),
            (
                "\"Quoted\" (and bracketed) [x] {y}",
                "quoted and bracketed x y",
            ),
            ("a t-shirt -- well-known - ok", "a t-shirt well-known ok"),
            (
                "costs $5 or 50% of 1,000 at 10:30",
                "costs $ 5 or 50 % of 1,000 at 10:30",
            ),
            ("3.5 kg in the u.s. today...", "3.5 kg in the u.s. today"),
            ("the dogs' bowls", "the dogs bowls"),
            ("It’s fine", "it 's fine"),
            ("  spaced   out\ttext\n", "spaced out text"),
            ("...", ""),
            ("", ""),
            ("ក-'s{", "ក 's"),
            ("x.'s", "x 's"),
        ];
        for (input, want) in cases {
            assert_eq!(tokenize(input), want, "{input:?}");
        }
    }

    /// The definition [`walk_tokenized`] implements, byte by byte.
    fn walk_plainly(text: &str) -> Option<Vec<&str>> {
        let ok = !text.starts_with(' ')
            && !text.ends_with(' ')
            && !text.contains("  ")
            && text
                .bytes()
                .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b' '));
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        (ok && !words.iter().any(|w| is_split_word(w.as_bytes()))).then_some(words)
    }

    proptest! {
        // Blocks of 64 bytes, spaces at their edges, bytes of every class.
        #[test]
        fn walk_finds_the_plain_tokens(text in "[a-c0 ]{0,150}|[a-z ,A]{0,70}|gonna [a-z ]{0,70}") {
            let mut got = Vec::new();
            let walked = walk_tokenized(&text, |t| {
                got.push(t);
                true
            });
            match walk_plainly(&text) {
                Some(want) => {
                    prop_assert!(walked, "{:?}", text);
                    prop_assert_eq!(got, want);
                }
                None => prop_assert!(!walked, "{:?}", text),
            }
        }

        #[test]
        fn tokenized_text_passes_through_unchanged(words in prop::collection::vec("[a-z0-9]{1,8}", 0..15)) {
            let text = words.join(" ");
            let out = tokenize(&text);
            let expected = words.iter().flat_map(|w| match SPLIT_WORDS.iter().find(|(x, _, _)| x == w) {
                Some((_, a, b)) => vec![a.to_string(), b.to_string()],
                None => vec![w.clone()],
            }).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(out.as_ref(), expected.as_str());
        }

        #[test]
        fn tokenizing_twice_changes_nothing(text in "\\PC{0,60}") {
            let once = tokenize(&text).into_owned();
            let twice = tokenize(&once).into_owned();
            prop_assert_eq!(once, twice);
        }

        /// Same, on text dense in the characters the rules treat specially.
        #[test]
        fn tokenizing_punctuation_dense_text_twice_changes_nothing(text in "[a-dnst0-9ក'’.,:;$%#(){}\\- ]{0,40}") {
            let once = tokenize(&text).into_owned();
            let twice = tokenize(&once).into_owned();
            prop_assert_eq!(once, twice);
        }
    }
}
