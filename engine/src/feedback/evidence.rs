//! Evidence is always the candidate's own words: a quote proposed by a scorer (the local rules
//! or a language model) is anchored to the span of the answer where those words were said, and
//! the stored quote and times are taken from the transcript, never from the proposal. A quote
//! the candidate never said is rejected.

use super::text::normalize;
use super::{Evidence, Word};

/// Why a proposed quote was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("the quote is empty")]
    Empty,
    #[error("the quote is longer than {0} words")]
    TooLong(usize),
    #[error("the candidate never said these words")]
    NotSaid,
}

/// Longest quote accepted, in words.
pub const MAX_QUOTE_WORDS: usize = 80;

/// Share of a quote's words that must match, in order, for a near match (STT spelling, a
/// dropped filler) to be re-anchored rather than rejected; only for quotes of 4+ words.
pub const NEAR_MATCH_SHARE: f64 = 0.8;

/// The evidence for words `start..start + len` of an answer (clamped to the answer).
pub fn span(words: &[Word], start: usize, len: usize) -> Evidence {
    if words.is_empty() {
        return Evidence {
            start_ms: 0,
            end_ms: 0,
            quote: String::new(),
        };
    }
    let start = start.min(words.len() - 1);
    let end = (start + len.max(1)).min(words.len());
    Evidence {
        start_ms: words[start].start_ms,
        end_ms: words[end - 1].end_ms,
        quote: words[start..end]
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn lcs(a: &[&str], b: &[&str]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal + 1
            } else {
                row[j + 1].max(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Anchors `proposed` to the answer's words: an exact match (ignoring case and punctuation)
/// wins; otherwise the window where at least [`NEAR_MATCH_SHARE`] of the quote's words occur in
/// order. The returned quote is the transcript's words of that span.
pub fn anchor_quote(words: &[Word], proposed: &str) -> Result<Evidence, AnchorError> {
    let wanted: Vec<String> = super::text::tokens(proposed);
    if wanted.is_empty() {
        return Err(AnchorError::Empty);
    }
    if wanted.len() > MAX_QUOTE_WORDS {
        return Err(AnchorError::TooLong(MAX_QUOTE_WORDS));
    }
    // Comparable tokens with the index of the word each came from.
    let said: Vec<(usize, String)> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (i, normalize(&w.text)))
        .filter(|(_, t)| !t.is_empty())
        .collect();
    let n = wanted.len();
    if said.len() >= n {
        for start in 0..=said.len() - n {
            if said[start..start + n]
                .iter()
                .zip(&wanted)
                .all(|((_, s), w)| s == w)
            {
                let first = said[start].0;
                let last = said[start + n - 1].0;
                return Ok(span(words, first, last - first + 1));
            }
        }
    }
    if n < 4 {
        return Err(AnchorError::NotSaid);
    }
    let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let needed = (NEAR_MATCH_SHARE * n as f64).ceil() as usize;
    let mut best: Option<(usize, usize, usize)> = None; // (matched, start, len)
    for len in [n.saturating_sub(1).max(1), n, n + 1] {
        if len > said.len() {
            continue;
        }
        for start in 0..=said.len() - len {
            let window: Vec<&str> = said[start..start + len]
                .iter()
                .map(|(_, t)| t.as_str())
                .collect();
            let matched = lcs(&wanted_refs, &window);
            if best.is_none_or(|(m, _, _)| matched > m) {
                best = Some((matched, start, len));
            }
        }
    }
    match best {
        Some((matched, start, len)) if matched >= needed => {
            let first = said[start].0;
            let last = said[start + len - 1].0;
            Ok(span(words, first, last - first + 1))
        }
        _ => Err(AnchorError::NotSaid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Word> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.into(),
                start_ms: 10_000 + i as i64 * 500,
                end_ms: 10_000 + i as i64 * 500 + 400,
            })
            .collect()
    }

    const ANSWER: &str = "So we moved the billing jobs to a queue, and I wrote the retry logic myself. \
                          It went well overall.";

    #[test]
    fn an_exact_quote_gets_the_transcripts_words_and_times() {
        let w = words(ANSWER);
        let e = anchor_quote(&w, "i wrote the RETRY logic").expect("said");
        assert_eq!(e.quote, "I wrote the retry logic");
        assert_eq!(e.start_ms, 10_000 + 10 * 500);
        assert_eq!(e.end_ms, 10_000 + 14 * 500 + 400);
    }

    #[test]
    fn a_near_quote_is_re_anchored_to_what_was_said() {
        let w = words(ANSWER);
        // A scorer tidied the words ("a message queue" for "a queue").
        let e = anchor_quote(&w, "we moved the billing jobs to a message queue").expect("near");
        assert_eq!(e.quote, "we moved the billing jobs to a queue,");
        assert_eq!(e.start_ms, 10_500);
    }

    #[test]
    fn a_quote_never_said_is_rejected() {
        let w = words(ANSWER);
        assert_eq!(
            anchor_quote(&w, "I reduced latency by forty percent across every region"),
            Err(AnchorError::NotSaid)
        );
        assert_eq!(anchor_quote(&w, "we failed"), Err(AnchorError::NotSaid));
        assert_eq!(anchor_quote(&w, " ,. "), Err(AnchorError::Empty));
        let long = "word ".repeat(MAX_QUOTE_WORDS + 1);
        assert_eq!(
            anchor_quote(&w, &long),
            Err(AnchorError::TooLong(MAX_QUOTE_WORDS))
        );
    }

    #[test]
    fn spans_are_clamped_to_the_answer() {
        let w = words("one two three");
        assert_eq!(span(&w, 2, 10).quote, "three");
        assert_eq!(span(&w, 9, 1).quote, "three");
        assert_eq!(span(&[], 0, 3).quote, "");
    }
}
