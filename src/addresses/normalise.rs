//! How addresses and typed queries are made comparable: lowercase, accents removed,
//! punctuation turned into spaces and French abbreviations of street types and titles
//! expanded ("av" → "avenue", "st" → "saint"). The same function reads the file at import
//! (the indexed `addresses.search` column) and every query, so both sides always agree.
//!
//! It runs in Rust rather than with PostgreSQL's `unaccent()`: `unaccent` is not IMMUTABLE
//! (its dictionary can change), so it cannot be indexed without a wrapper that lies about it,
//! and it does not expand abbreviations anyway.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Abbreviations found in French street names and typed by people, and their full words.
/// Applied to whole words only, on both the file's names and the query.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("all", "allee"),
    ("av", "avenue"),
    ("ave", "avenue"),
    ("bd", "boulevard"),
    ("bld", "boulevard"),
    ("blvd", "boulevard"),
    ("boul", "boulevard"),
    ("bvd", "boulevard"),
    ("cdt", "commandant"),
    ("ch", "chemin"),
    ("che", "chemin"),
    ("chem", "chemin"),
    ("crs", "cours"),
    ("dr", "docteur"),
    ("fbg", "faubourg"),
    ("fg", "faubourg"),
    ("gal", "general"),
    ("gd", "grand"),
    ("gde", "grande"),
    ("imp", "impasse"),
    ("lot", "lotissement"),
    ("mal", "marechal"),
    ("pass", "passage"),
    ("pdt", "president"),
    ("pl", "place"),
    ("prom", "promenade"),
    ("r", "rue"),
    ("res", "residence"),
    ("rpt", "rond point"),
    ("rte", "route"),
    ("sq", "square"),
    ("st", "saint"),
    ("ste", "sainte"),
    ("vla", "villa"),
];

/// Suffixes of a house number written as a word ("12 bis").
const REPETITIONS: &[&str] = &["bis", "ter", "quater", "quinquies"];

/// The words of `text`: lowercase, without accents, split at anything that is not a letter or
/// a digit ("l'Église-Saint-Jean" → `l`, `eglise`, `saint`, `jean`). Compatibility forms are
/// read as their plain letters (`ﬁ` → `fi`, `²` → `2`).
pub fn words(text: &str) -> Vec<String> {
    let mut flat = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'œ' | 'Œ' => flat.push_str("oe"),
            'æ' | 'Æ' => flat.push_str("ae"),
            'ß' => flat.push_str("ss"),
            c if c.is_alphanumeric() => flat.extend(c.to_lowercase()),
            _ => flat.push(' '),
        }
    }
    flat.split_whitespace().map(str::to_owned).collect()
}

/// The full word for `word` if it is a known abbreviation.
fn expand(word: &str) -> &str {
    ABBREVIATIONS
        .binary_search_by(|(short, _)| short.cmp(&word))
        .map_or(word, |i| ABBREVIATIONS[i].1)
}

/// `words` with abbreviations expanded, joined by single spaces.
fn join_expanded<S: AsRef<str>>(words: &[S]) -> String {
    let mut out = String::new();
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(expand(word.as_ref()));
    }
    out
}

/// `text` made comparable: lowercase, no accents or punctuation, abbreviations expanded.
pub fn normalise(text: &str) -> String {
    join_expanded(&words(text))
}

/// A house number's repetition suffix as stored and compared: lowercase, no accents, no
/// spaces (`"BIS"` → `"bis"`).
pub fn repetition(text: &str) -> String {
    words(text).concat()
}

/// A typed query: an optional house number and suffix, and the rest, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The house number typed first, if any ("12 bis rue…" → 12).
    pub number: Option<i32>,
    /// Its suffix (`bis`, `ter`, a letter…), if any.
    pub repetition: Option<String>,
    /// Everything else, normalised: the street, and perhaps the postcode and commune.
    pub text: String,
}

/// Reads a typed query: "12 bis r de la Paix" → number 12, `bis`, `rue de la paix`. A number
/// is read only at the start (as the French write addresses), up to five digits; its suffix is
/// a word of `REPETITIONS`, or a letter written against it ("12b") or alone ("12 b rue…",
/// unless the letter is an abbreviation such as "r").
pub fn parse_query(q: &str) -> Query {
    let words = words(q);
    let mut rest: &[String] = &words;
    let mut number = None;
    let mut repetition = None;
    if let Some(first) = rest.first() {
        let digits = first.bytes().take_while(u8::is_ascii_digit).count();
        let suffix = &first[digits..];
        let letters_only = suffix.bytes().all(|b| b.is_ascii_lowercase());
        if (1..=5).contains(&digits)
            && letters_only
            && (suffix.is_empty() || suffix.len() == 1 || REPETITIONS.contains(&suffix))
        {
            number = first[..digits].parse().ok();
            if !suffix.is_empty() {
                repetition = Some(suffix.to_owned());
            }
            rest = &rest[1..];
            if repetition.is_none()
                && let Some(next) = rest.first()
                && (REPETITIONS.contains(&next.as_str())
                    || (next.len() == 1
                        && next.bytes().all(|b| b.is_ascii_lowercase())
                        && expand(next) == next))
            {
                repetition = Some(next.clone());
                rest = &rest[1..];
            }
        }
    }
    Query {
        number,
        repetition,
        text: join_expanded(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn abbreviations_are_sorted_for_the_binary_search() {
        assert!(ABBREVIATIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn accents_case_punctuation_and_abbreviations() {
        assert_eq!(normalise("Allée des Érables"), "allee des erables");
        assert_eq!(
            normalise("AV. du Gal de Gaulle"),
            "avenue du general de gaulle"
        );
        assert_eq!(normalise("r de l'Église"), "rue de l eglise");
        assert_eq!(normalise("Bd St-Michel"), "boulevard saint michel");
        assert_eq!(normalise("pl Ste Geneviève"), "place sainte genevieve");
        assert_eq!(normalise("Imp. du Cœur"), "impasse du coeur");
        assert_eq!(
            normalise("che des Prés, Rte de Ç"),
            "chemin des pres route de c"
        );
        assert_eq!(normalise("Fg Saint-Antoine"), "faubourg saint antoine");
        assert_eq!(normalise("  "), "");
    }

    #[test]
    fn queries_with_numbers_and_suffixes() {
        let q = parse_query("12 bis r de la paix");
        assert_eq!(q.number, Some(12));
        assert_eq!(q.repetition.as_deref(), Some("bis"));
        assert_eq!(q.text, "rue de la paix");
        let q = parse_query("12 r de la paix");
        assert_eq!((q.number, q.repetition.as_deref()), (Some(12), None));
        assert_eq!(q.text, "rue de la paix");
        let q = parse_query("7ter, av Foch");
        assert_eq!((q.number, q.repetition.as_deref()), (Some(7), Some("ter")));
        assert_eq!(q.text, "avenue foch");
        let q = parse_query("3B rue X");
        assert_eq!((q.number, q.repetition.as_deref()), (Some(3), Some("b")));
        let q = parse_query("3 a rue X");
        assert_eq!((q.number, q.repetition.as_deref()), (Some(3), Some("a")));
        let q = parse_query("rue de la paix 92000");
        assert_eq!((q.number, q.text.as_str()), (None, "rue de la paix 92000"));
        let q = parse_query("123456 rue");
        assert_eq!((q.number, q.text.as_str()), (None, "123456 rue"));
        let q = parse_query("12");
        assert_eq!((q.number, q.text.as_str()), (Some(12), ""));
        let q = parse_query("8 mai 1945");
        assert_eq!((q.number, q.text.as_str()), (Some(8), "mai 1945"));
    }

    proptest! {
        /// Normalising is idempotent, and its output has only lowercase letters, digits and
        /// single spaces: nothing the trigram index could read differently on the two sides.
        #[test]
        fn normalised_text_is_plain_and_stable(text in "\\PC{0,40}") {
            let once = normalise(&text);
            prop_assert_eq!(normalise(&once), once.clone());
            prop_assert!(!once.starts_with(' ') && !once.ends_with(' ') && !once.contains("  "));
            prop_assert!(once.chars().all(|c| c == ' ' || c.is_alphanumeric()));
            prop_assert_eq!(once.to_lowercase(), once.clone());
        }

        /// A number and suffix written before a street are read back as they were written,
        /// whatever the case and accents of the street.
        #[test]
        fn written_numbers_are_read_back(
            n in 1i32..100_000,
            rep in proptest::sample::select(&["", "bis", "ter", "quater", "a", "b"][..]),
            street in "[A-Za-zéèàç' -]{0,30}",
        ) {
            let street = format!("Rue {street}");
            let q = parse_query(&format!("{n} {rep} {street}"));
            prop_assert_eq!(q.number, Some(n));
            prop_assert_eq!(q.repetition.as_deref(), (!rep.is_empty()).then_some(rep));
            prop_assert_eq!(q.text, normalise(&street));
        }
    }
}
