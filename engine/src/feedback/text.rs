//! Word normalisation and phrase search shared by the scorer, evidence anchoring and delivery.

/// A word as compared: lower case, outer punctuation stripped ("Result," → "result",
/// "30%" → "30%", "trade-off" stays).
pub fn normalize(word: &str) -> String {
    let kept: String = word
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || matches!(c, '\'' | '’' | '%' | '.' | '-'))
        .map(|c| if c == '’' { '\'' } else { c })
        .collect();
    kept.trim_matches(|c| matches!(c, '.' | '-' | '\''))
        .to_owned()
}

/// Normalised tokens of free text (empty tokens dropped).
pub fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(normalize)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Where `phrase` (a few words) first occurs in `tokens`, as `(start, len)`.
pub fn find_phrase(tokens: &[String], phrase: &str) -> Option<(usize, usize)> {
    let wanted = self::tokens(phrase);
    if wanted.is_empty() || wanted.len() > tokens.len() {
        return None;
    }
    (0..=tokens.len() - wanted.len())
        .find(|&i| tokens[i..i + wanted.len()] == wanted[..])
        .map(|i| (i, wanted.len()))
}

/// The first of `phrases` found (earliest position), as `(start, len)`.
pub fn find_any(tokens: &[String], phrases: &[&str]) -> Option<(usize, usize)> {
    phrases
        .iter()
        .filter_map(|p| find_phrase(tokens, p))
        .min_by_key(|&(start, _)| start)
}

/// Every occurrence of any of `words` (single words), by position.
pub fn positions_of(tokens: &[String], words: &[&str]) -> Vec<usize> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| words.contains(&t.as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// Filler words and phrases (FEEDBACK.md §6), two-word ones first so they win.
pub const FILLERS: &[&str] = &[
    "you know",
    "kind of",
    "sort of",
    "um",
    "uh",
    "umm",
    "uhh",
    "like",
    "basically",
    "literally",
    "so",
    "actually",
    "right",
    "kinda",
    "sorta",
];

/// Each filler occurrence: `(start token, token count, filler)`, non-overlapping, in order.
pub fn fillers(tokens: &[String]) -> Vec<(usize, usize, &'static str)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let hit = FILLERS.iter().find_map(|filler| {
            let parts: Vec<&str> = filler.split(' ').collect();
            let end = i + parts.len();
            (end <= tokens.len() && tokens[i..end].iter().zip(&parts).all(|(t, p)| t == p))
                .then_some((i, parts.len(), *filler))
        });
        match hit {
            Some(hit) => {
                found.push(hit);
                i += hit.1;
            }
            None => i += 1,
        }
    }
    found
}

const NUMBER_WORDS: &[&str] = &[
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "billion",
    "percent",
    "half",
    "double",
    "doubled",
    "triple",
    "tripled",
    "twice",
    "tenfold",
    "dozen",
];

/// Whether a token states a quantity ("30%", "2.5", "twenty", "doubled").
pub fn is_number(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_outer_punctuation_and_case() {
        assert_eq!(normalize("Result,"), "result");
        assert_eq!(normalize("30%"), "30%");
        assert_eq!(normalize("trade-off."), "trade-off");
        assert_eq!(normalize("Don’t"), "don't");
        assert_eq!(normalize("—"), "");
    }

    #[test]
    fn two_word_fillers_are_whole_phrases() {
        let t = tokens("You know, I kind of liked it, um, like basically everything");
        let f: Vec<&str> = fillers(&t).into_iter().map(|(_, _, f)| f).collect();
        assert_eq!(f, vec!["you know", "kind of", "um", "like", "basically"]);
        assert!(fillers(&tokens("unlike the kindness")).is_empty());
    }

    #[test]
    fn phrases_are_found_at_their_position() {
        let t = tokens("We chose Postgres rather than Mongo");
        assert_eq!(find_phrase(&t, "rather than"), Some((3, 2)));
        assert_eq!(find_any(&t, &["mongo", "we chose"]), Some((0, 2)));
        assert_eq!(find_phrase(&t, "instead of"), None);
    }
}
