//! The address search in memory: each campaign's addresses (those inside its area), read from
//! the database once and kept while the campaign's settings and the address file stay as they
//! were, then searched with no database round trip.
//!
//! Why: the same search in SQL (pg_trgm's word similarity over the streets, then their numbers;
//! [`super::search_in_database`]) costs PostgreSQL several milliseconds of CPU a query, so two
//! cores answered about 30 suggestions a second and 32 typing citizens waited a second each
//! (docs/PERFORMANCE.md, `benches/addresses.sh`). Here the area's streets are indexed by
//! trigram; a query scores only the streets that hold one of its rarest trigrams (any street
//! close enough must), against trigram sets already made.
//!
//! The matching is pg_trgm's, so that both ways answer alike: trigrams of each word padded with
//! two spaces before and one after; a street matches when the share of the typed text's
//! trigrams it holds (pg_trgm's `word_similarity`) is at least [`super::MIN_WORD_SIMILARITY`];
//! the closest `STREETS` streets are ranked by that share, then by the similarity of
//! the whole texts, and their numbers as [`super::search_in_database`] ranks them.
//!
//! An index is kept under (campaign, its `config_version`, the address file's version): a
//! campaign whose districts or area change, or an import anywhere, makes a new key, and the
//! version of the address file is learned by notification ([`crate::figures::watch`]). An
//! area holding more than `--address-index-max` addresses is searched in the database instead,
//! so memory stays bounded (about 100 bytes an address).

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::PgPool;

use super::{AddressError, MIN_SHARE_PERCENT, STREETS, Search, Suggestion};
use crate::campaigns::Campaign;

/// Three characters, 21 bits each.
type Trigram = u64;

/// The trigrams of `text` as pg_trgm makes them: for each word (a run of letters and digits),
/// padded with two spaces before and one after, every three consecutive characters; sorted,
/// each once.
pub fn trigrams(text: &str) -> Vec<Trigram> {
    let mut out = Vec::new();
    let mut padded: Vec<char> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        padded.clear();
        padded.extend([' ', ' ']);
        padded.extend(word.chars());
        padded.push(' ');
        out.extend(
            padded
                .windows(3)
                .map(|w| (u64::from(w[0]) << 42) | (u64::from(w[1]) << 21) | u64::from(w[2])),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How many trigrams two sorted sets share.
fn shared(a: &[Trigram], b: &[Trigram]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// `part / whole` in hundredths, rounded as PostgreSQL's `round(x, 2)` (half away from zero).
fn percent(part: usize, whole: usize) -> u32 {
    if whole == 0 {
        return 0;
    }
    ((part * 200 + whole) / (2 * whole)) as u32
}

/// A street inside the area, with its numbers inside the area.
#[derive(Debug)]
struct Street {
    id: i64,
    nom_voie: Box<str>,
    code_postal: Box<str>,
    nom_commune: Box<str>,
    search: Box<str>,
    trigrams: Box<[Trigram]>,
    numbers: Vec<Number>,
}

#[derive(Debug)]
struct Number {
    id: Box<str>,
    numero: i32,
    rep: Box<str>,
    lon: f64,
    lat: f64,
}

/// A campaign's addresses, ready to search.
#[derive(Debug, Default)]
pub struct AreaIndex {
    streets: Vec<Street>,
    /// For each trigram, the streets holding it (their positions in `streets`, ascending).
    postings: HashMap<Trigram, Vec<u32>>,
    addresses: usize,
}

/// A street that matched, with its scores in hundredths.
#[derive(Debug, Clone, Copy)]
struct Matched {
    street: usize,
    score: u32,
    closeness: u32,
}

impl AreaIndex {
    /// Addresses held.
    pub fn len(&self) -> usize {
        self.addresses
    }

    /// Whether it holds no address.
    pub fn is_empty(&self) -> bool {
        self.addresses == 0
    }

    /// The positions of the streets that may hold enough of `typed` (sorted, not empty) to
    /// match: every street that does is among them.
    fn candidates(&self, typed: &[Trigram]) -> Vec<u32> {
        let need = (typed.len() * MIN_SHARE_PERCENT).div_ceil(100);
        let mut lists: Vec<&[u32]> = typed
            .iter()
            .map(|t| self.postings.get(t).map_or(&[][..], Vec::as_slice))
            .collect();
        lists.sort_unstable_by_key(|list| list.len());
        let mut candidates: Vec<u32> = lists[..typed.len() - need + 1]
            .iter()
            .flat_map(|list| list.iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates
    }

    /// Suggestions for `search`, ranked as [`super::search_in_database`] ranks them.
    pub fn suggest(&self, search: &Search) -> Vec<Suggestion> {
        let query = &search.query;
        let typed = trigrams(&query.text);
        if typed.is_empty() {
            return Vec::new();
        }
        // The streets holding enough of the typed trigrams, the closest few. A street holding
        // `need` of the text's trigrams misses at most `len - need` of them, so it is in at
        // least one of any `len - need + 1` of their streets' lists: the shortest such lists
        // give every candidate, and only those are scored.
        let mut matched: Vec<Matched> = self
            .candidates(&typed)
            .into_iter()
            .filter_map(|i| {
                let i = i as usize;
                let street = &self.streets[i];
                let n = shared(&typed, &street.trigrams);
                (n * 100 >= typed.len() * MIN_SHARE_PERCENT).then(|| Matched {
                    street: i,
                    score: percent(n, typed.len()),
                    closeness: percent(n, typed.len() + street.trigrams.len() - n),
                })
            })
            .collect();
        let by_street = |a: &Matched, b: &Matched| {
            let (sa, sb) = (&self.streets[a.street], &self.streets[b.street]);
            b.score
                .cmp(&a.score)
                .then(b.closeness.cmp(&a.closeness))
                .then_with(|| sa.search.cmp(&sb.search))
                .then(sa.id.cmp(&sb.id))
        };
        let streets = STREETS as usize;
        if matched.len() > streets {
            matched.select_nth_unstable_by(streets - 1, by_street);
            matched.truncate(streets);
        }

        // Their numbers: the exact number and suffix first, then the same number, then the
        // nearest numbers.
        let repetition = query.repetition.as_deref().unwrap_or_default();
        let mut numbers: Vec<(&Matched, &Street, &Number)> = matched
            .iter()
            .flat_map(|m| {
                let street = &self.streets[m.street];
                street.numbers.iter().map(move |n| (m, street, n))
            })
            .collect();
        let order = |a: &(&Matched, &Street, &Number), b: &(&Matched, &Street, &Number)| {
            rank(query.number, repetition, a).cmp(&rank(query.number, repetition, b))
        };
        let limit = usize::try_from(search.limit).unwrap_or(0);
        if numbers.len() > limit && limit > 0 {
            numbers.select_nth_unstable_by(limit - 1, order);
            numbers.truncate(limit);
        }
        numbers.sort_unstable_by(order);
        numbers.truncate(limit);
        numbers
            .into_iter()
            .map(|(_, street, n)| Suggestion {
                id: n.id.to_string(),
                label: super::label(
                    n.numero,
                    &n.rep,
                    &street.nom_voie,
                    &street.code_postal,
                    &street.nom_commune,
                ),
                lon: n.lon,
                lat: n.lat,
            })
            .collect()
    }
}

/// The order of a street's number among the suggestions: the closest street, on it the exact
/// number and suffix, then the same number, then the closer whole text, then the nearest
/// numbers (with no number typed, all equally near), then a fixed order.
#[allow(clippy::type_complexity)]
fn rank<'a>(
    number: Option<i32>,
    repetition: &str,
    (m, street, n): &(&Matched, &'a Street, &'a Number),
) -> (
    Reverse<u32>,
    Reverse<bool>,
    Reverse<bool>,
    Reverse<u32>,
    u64,
    &'a str,
    i64,
    i32,
    &'a str,
    &'a str,
) {
    let same = number == Some(n.numero);
    (
        Reverse(m.score),
        Reverse(same && &*n.rep == repetition),
        Reverse(same),
        Reverse(m.closeness),
        number.map_or(u64::MAX, |typed| u64::from(typed.abs_diff(n.numero))),
        &street.search,
        street.id,
        n.numero,
        &n.rep,
        &n.id,
    )
}

/// For each trigram, the positions of the streets holding it, ascending.
fn postings(streets: &[Street]) -> HashMap<Trigram, Vec<u32>> {
    let mut postings: HashMap<Trigram, Vec<u32>> = HashMap::new();
    for (i, street) in streets.iter().enumerate() {
        for &t in &street.trigrams {
            postings.entry(t).or_default().push(i as u32);
        }
    }
    postings
}

/// What was built for a campaign: its index, or the finding that its area holds too many
/// addresses to keep in memory.
#[derive(Debug)]
enum Built {
    Index(AreaIndex),
    TooLarge,
}

/// (campaign id, its `config_version`, the address file's version).
type Key = (i64, i64, i64);

/// The address indexes of the campaigns searched lately (cheap to clone).
#[derive(Clone)]
pub struct AddressIndexes {
    cache: moka::future::Cache<Key, Arc<Built>>,
    max_addresses: usize,
}

/// Default most addresses a campaign's index holds (`--address-index-max`): about 100 MB, a
/// French département.
pub const DEFAULT_MAX_ADDRESSES: usize = 1_000_000;

/// How long an index nobody searches is kept.
const IDLE: Duration = Duration::from_secs(15 * 60);

impl AddressIndexes {
    /// Indexes of at most `max_addresses` addresses each (0: always search in the database),
    /// and room for two of that size (a campaign's old index while its new one is built).
    pub fn new(max_addresses: usize) -> Self {
        let capacity = (max_addresses as u64)
            .saturating_mul(2)
            .saturating_add(1_000);
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(capacity)
                .weigher(|_, built: &Arc<Built>| match &**built {
                    Built::Index(index) => {
                        u32::try_from(index.addresses + index.streets.len() + 1).unwrap_or(u32::MAX)
                    }
                    Built::TooLarge => 1,
                })
                .time_to_idle(IDLE)
                .build(),
            max_addresses,
        }
    }

    /// Suggestions for `search` inside `campaign`'s area: from its index in memory (built on
    /// the first search after a change: concurrent searches wait for the one build), or from
    /// the database when the area holds too many addresses for an index.
    pub async fn suggest(
        &self,
        db: &PgPool,
        versions: &crate::figures::watch::VersionWatch,
        campaign: &Campaign,
        search: &Search,
    ) -> Result<Vec<Suggestion>, AddressError> {
        if campaign.bounds.is_none() || search.query.text.is_empty() {
            return Ok(Vec::new());
        }
        if self.max_addresses == 0 {
            return Ok(super::search_in_database(db, campaign, search).await?);
        }
        let key = (
            campaign.id,
            campaign.config_version,
            versions.addresses().await?,
        );
        let max = self.max_addresses;
        let built = self
            .cache
            .try_get_with(key, async move {
                build(db, campaign.id, max).await.map(Arc::new)
            })
            .await
            .map_err(AddressError::Index)?;
        match &*built {
            Built::Index(index) => Ok(index.suggest(search)),
            Built::TooLarge => Ok(super::search_in_database(db, campaign, search).await?),
        }
    }
}

/// Reads the addresses inside campaign `campaign_id`'s area (its `effective_area`), and their
/// streets, from one snapshot; [`Built::TooLarge`] past `max` addresses.
async fn build(db: &PgPool, campaign_id: i64, max: usize) -> sqlx::Result<Built> {
    let started = std::time::Instant::now();
    let mut tx = db.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    // A street is in when the box of its numbers meets the area; only its numbers inside
    // the area are kept, and a street with none goes.
    let mut streets: Vec<Street> = Vec::new();
    let mut position: HashMap<i64, usize> = HashMap::new();
    {
        let mut rows = sqlx::query!(
            "SELECT s.id, s.nom_voie, s.code_postal, s.nom_commune, s.search
             FROM campaigns c
             JOIN address_streets s ON ST_Intersects(c.effective_area, s.box)
             WHERE c.id = $1",
            campaign_id
        )
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            position.insert(row.id, streets.len());
            streets.push(Street {
                id: row.id,
                trigrams: trigrams(&row.search).into(),
                nom_voie: row.nom_voie.into(),
                code_postal: row.code_postal.into(),
                nom_commune: row.nom_commune.into(),
                search: row.search.into(),
                numbers: Vec::new(),
            });
        }
    }
    let mut addresses = 0;
    {
        let mut rows = sqlx::query!(
            r#"SELECT a.street_id, a.id, a.numero, a.rep,
                      ST_X(a.geom) AS "lon!", ST_Y(a.geom) AS "lat!"
               FROM campaigns c
               JOIN address_streets s ON ST_Intersects(c.effective_area, s.box)
               JOIN addresses a ON a.street_id = s.id AND ST_Intersects(c.effective_area, a.geom)
               WHERE c.id = $1
               LIMIT $2"#,
            campaign_id,
            i64::try_from(max).unwrap_or(i64::MAX).saturating_add(1),
        )
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            addresses += 1;
            if addresses > max {
                drop(rows);
                tracing::info!(
                    campaign_id,
                    max,
                    "more addresses in the campaign's area than an index holds: searched in the database"
                );
                return Ok(Built::TooLarge);
            }
            // Always there: a number inside the area puts its street's box inside too.
            if let Some(&i) = position.get(&row.street_id) {
                streets[i].numbers.push(Number {
                    id: row.id.into(),
                    numero: row.numero,
                    rep: row.rep.into(),
                    lon: row.lon,
                    lat: row.lat,
                });
            }
        }
    }
    tx.commit().await?;
    streets.retain(|s| !s.numbers.is_empty());
    streets.shrink_to_fit();
    let postings = postings(&streets);
    tracing::debug!(
        campaign_id,
        addresses,
        streets = streets.len(),
        elapsed = ?started.elapsed(),
        "address index built"
    );
    Ok(Built::Index(AreaIndex {
        streets,
        postings,
        addresses,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addresses::normalise::parse_query;

    fn word_similarity(query: &str, text: &str) -> f64 {
        let (q, t) = (trigrams(query), trigrams(text));
        f64::from(percent(shared(&q, &t), q.len())) / 100.0
    }

    #[test]
    fn trigrams_are_pg_trgm_s() {
        // pg_trgm: show_trgm('word') = {"  w"," wo","ord","rd ",wor}
        assert_eq!(trigrams("word").len(), 5);
        assert_eq!(trigrams("r").len(), 2);
        assert_eq!(trigrams("a a a"), trigrams("a"));
        assert!(trigrams(" ,; ").is_empty());
        // The values PostgreSQL gives (SELECT word_similarity(a, b)).
        assert_eq!(word_similarity("word", "two words"), 0.8);
        assert_eq!(word_similarity("rue de la paiz", "rue de la paix"), 0.87);
        assert_eq!(
            word_similarity("rue de la paix", "rue de la fontaine"),
            0.67
        );
    }

    proptest::proptest! {
        /// Scoring only the candidates misses no street that scoring every street would match.
        #[test]
        fn the_candidates_hold_every_match(
            names in proptest::collection::vec("(rue|av|allee|place) (de la |des |du )?[a-e]{1,7}( [a-e]{2,5})?", 1..60),
            query in "[0-9]{0,2} ?(r|rue|av|place)? ?(de la |des )?[a-e]{0,7}",
        ) {
            let streets: Vec<Street> = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let search = crate::addresses::normalise::normalise(name);
                    Street {
                        id: i as i64,
                        nom_voie: name.as_str().into(),
                        code_postal: "".into(),
                        nom_commune: "".into(),
                        trigrams: trigrams(&search).into(),
                        search: search.into(),
                        numbers: Vec::new(),
                    }
                })
                .collect();
            let index = AreaIndex { postings: postings(&streets), streets, addresses: 0 };
            let typed = trigrams(&parse_query(&query).text);
            proptest::prop_assume!(!typed.is_empty());
            let candidates = index.candidates(&typed);
            for (i, street) in index.streets.iter().enumerate() {
                let n = shared(&typed, &street.trigrams);
                if n * 100 >= typed.len() * MIN_SHARE_PERCENT {
                    proptest::prop_assert!(
                        candidates.binary_search(&(i as u32)).is_ok(),
                        "{:?} matches {:?} but is no candidate", street.search, query
                    );
                }
            }
        }
    }

    #[test]
    fn any_limit_is_accepted() {
        // `--address-index-max` takes any number: no overflow at the largest.
        let _ = AddressIndexes::new(usize::MAX);
        let _ = AddressIndexes::new(0);
    }

    fn index() -> AreaIndex {
        let street = |id: i64, name: &str, numbers: &[(i32, &str)]| {
            let search = crate::addresses::normalise::normalise(&format!("{name} 92000 nanterre"));
            Street {
                id,
                nom_voie: name.into(),
                code_postal: "92000".into(),
                nom_commune: "Nanterre".into(),
                trigrams: trigrams(&search).into(),
                search: search.into(),
                numbers: numbers
                    .iter()
                    .map(|(numero, rep)| Number {
                        id: format!("{id}_{numero}_{rep}").into(),
                        numero: *numero,
                        rep: (*rep).into(),
                        lon: 2.0,
                        lat: 48.0,
                    })
                    .collect(),
            }
        };
        let streets = vec![
            street(
                1,
                "Rue de la Paix",
                &[(1, ""), (2, ""), (12, ""), (12, "bis"), (14, "")],
            ),
            street(2, "Rue de la Paille", &[(12, "")]),
            street(3, "Allée des Érables", &[(3, "")]),
        ];
        AreaIndex {
            addresses: streets.iter().map(|s| s.numbers.len()).sum(),
            postings: postings(&streets),
            streets,
        }
    }

    fn labels(q: &str, limit: i64) -> Vec<String> {
        let search = Search {
            query: parse_query(q),
            limit,
        };
        index()
            .suggest(&search)
            .into_iter()
            .map(|s| s.label)
            .collect()
    }

    #[test]
    fn the_exact_number_on_the_closest_street_first() {
        assert_eq!(
            labels("12 bis r de la paix", 3),
            [
                "12 bis Rue de la Paix, 92000 Nanterre",
                "12 Rue de la Paix, 92000 Nanterre",
                "14 Rue de la Paix, 92000 Nanterre",
            ]
        );
        // Nearest numbers after the exact one; a plain number before its bis.
        assert_eq!(
            labels("12 rue de la paix", 10)[..4],
            [
                "12 Rue de la Paix, 92000 Nanterre",
                "12 bis Rue de la Paix, 92000 Nanterre",
                "14 Rue de la Paix, 92000 Nanterre",
                "2 Rue de la Paix, 92000 Nanterre",
            ]
        );
        // Every number of the closest street before a fuzzier street.
        let all = labels("12 rue de la paix", 10);
        assert_eq!(all.len(), 6);
        assert_eq!(all[5], "12 Rue de la Paille, 92000 Nanterre");
        assert_eq!(
            labels("rue de la pai", 10).last().unwrap(),
            "12 Rue de la Paille, 92000 Nanterre"
        );
        // No number typed: the street's numbers in order.
        assert_eq!(
            labels("3 allee des erables", 1),
            ["3 Allée des Érables, 92000 Nanterre"]
        );
        assert!(labels("zzzz", 5).is_empty());
        assert!(labels("12", 5).is_empty());
    }
}
