//! A campaign's story as an Atom 1.0 feed (RFC 4287), one per language, written with the
//! `atom_syndication` crate: it escapes every text and attribute (quick-xml), and the entries'
//! texts cannot hold characters XML cannot carry ([`super::EntryInput`] refuses them).

use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed, FixedDateTime, Generator, Link, Person, Text,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Entry, Kind};
use crate::campaigns::{Campaign, Lang};

/// The media type of the feed.
pub const CONTENT_TYPE: &str = "application/atom+xml";

fn code(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    }
}

fn when(t: OffsetDateTime) -> FixedDateTime {
    let text = t
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default();
    FixedDateTime::parse_from_rfc3339(&text).unwrap_or_default()
}

fn text(value: &str, lang: Lang) -> Text {
    Text {
        value: value.to_owned(),
        lang: Some(code(lang).to_owned()),
        ..Text::plain(value)
    }
}

/// The kind of an entry, as a reader reads it.
fn kind_label(kind: Kind, lang: Lang) -> &'static str {
    match (kind, lang) {
        (Kind::Milestone, Lang::Fr) => "Étape",
        (Kind::Milestone, Lang::En) => "Milestone",
        (Kind::Update, Lang::Fr) => "Actualité",
        (Kind::Update, Lang::En) => "Update",
    }
}

/// A day written out: `15 novembre 2026`, `15 November 2026`.
pub fn long_date(date: time::Date, lang: Lang) -> String {
    const FR: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = usize::from(u8::from(date.month())) - 1;
    let name = match lang {
        Lang::Fr => FR[month],
        Lang::En => EN[month],
    };
    let day = date.day();
    let day = if lang == Lang::Fr && day == 1 {
        "1er".to_owned()
    } else {
        day.to_string()
    };
    format!("{day} {name} {}", date.year())
}

/// The feed of `campaign`'s published `entries` (in the order they happened; the feed lists the
/// latest first) in `lang`. `base` is this server's public address (`http://host`), `updated`
/// the feed's last change when it has no entry.
pub fn write(
    campaign: &Campaign,
    entries: &[Entry],
    lang: Lang,
    base: &str,
    updated: OffsetDateTime,
) -> Vec<u8> {
    let l = code(lang);
    let slug = &campaign.slug;
    let self_url = format!("{base}/api/v1/campaigns/{slug}/story.atom?lang={l}");
    let page = format!("{base}/embed/{slug}?lang={l}");
    let title = match lang {
        Lang::Fr => &campaign.title.fr,
        Lang::En => &campaign.title.en,
    };
    let pick = |t: &crate::campaigns::Localized| match lang {
        Lang::Fr => t.fr.clone(),
        Lang::En => t.en.clone(),
    };
    let updated = entries
        .iter()
        .map(|e| e.updated_at)
        .max()
        .unwrap_or(updated);
    let atom_entries = entries
        .iter()
        .rev()
        .map(|e| {
            let mut links = vec![Link {
                href: format!("{page}#story-{}", e.id),
                rel: "alternate".to_owned(),
                mime_type: Some("text/html".to_owned()),
                ..Default::default()
            }];
            if let Some(link) = &e.link {
                links.push(Link {
                    href: link.clone(),
                    rel: "related".to_owned(),
                    ..Default::default()
                });
            }
            AtomEntry {
                title: text(&pick(&e.title), lang),
                id: format!("urn:uuid:{}", e.id),
                updated: when(e.updated_at),
                published: Some(when(e.created_at)),
                categories: vec![Category {
                    term: e.kind.as_str().to_owned(),
                    label: Some(kind_label(e.kind, lang).to_owned()),
                    ..Default::default()
                }],
                links,
                summary: Some(text(
                    &format!("{} · {}", kind_label(e.kind, lang), long_date(e.date, lang)),
                    lang,
                )),
                content: Some(Content {
                    value: Some(pick(&e.text)),
                    content_type: Some("text".to_owned()),
                    lang: Some(l.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let feed = Feed {
        title: text(title, lang),
        id: self_url.clone(),
        updated: when(updated),
        authors: vec![Person {
            name: title.clone(),
            uri: Some(page.clone()),
            ..Default::default()
        }],
        generator: Some(Generator {
            value: "civicmap".to_owned(),
            ..Default::default()
        }),
        links: vec![
            Link {
                href: self_url,
                rel: "self".to_owned(),
                mime_type: Some(CONTENT_TYPE.to_owned()),
                ..Default::default()
            },
            Link {
                href: page,
                rel: "alternate".to_owned(),
                mime_type: Some("text/html".to_owned()),
                ..Default::default()
            },
        ],
        lang: Some(l.to_owned()),
        entries: atom_entries,
        ..Default::default()
    };
    feed.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_out() {
        let d = time::macros::date!(2026 - 03 - 01);
        assert_eq!(long_date(d, Lang::Fr), "1er mars 2026");
        assert_eq!(long_date(d, Lang::En), "1 March 2026");
        let d = time::macros::date!(2026 - 12 - 25);
        assert_eq!(long_date(d, Lang::Fr), "25 décembre 2026");
    }

    #[test]
    fn times_keep_the_second() {
        let t = time::macros::datetime!(2026-11-15 10:20:30.123456 UTC);
        assert_eq!(when(t).to_rfc3339(), "2026-11-15T10:20:30+00:00");
    }
}
