//! A campaign's story: the milestones and updates staff post for the public ("the council voted
//! the budget", "the operator's survey starts"), dated, in French and English, with an optional
//! link. The widget shows the published ones as a timeline under the map; [`feed`] writes them
//! as an Atom feed for the city's site and for journalists.
//!
//! Every write bumps the campaign's `config_version` in its transaction: the public story is
//! cached by that version ([`crate::http::cache`]), and other instances learn of it through the
//! version notifications ([`crate::figures::watch`]). Every write is audited.
//!
//! `save` is the one place where an entry is stored, and where it becomes public: the place
//! where the notice to the campaign's followers is queued (`notify::enqueue_update`).

pub mod feed;
pub mod http;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Actor};
use crate::campaigns::{Campaign, CampaignError, Localized};
use crate::validation::{FieldError, Invalid};

/// What can go wrong with a campaign's story.
#[derive(Debug, thiserror::Error)]
pub enum StoryError {
    /// No such campaign.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// No such entry in this campaign.
    #[error("no story entry `{0}` in this campaign")]
    NotFound(Uuid),
    /// The campaign's story holds as many entries as it may.
    #[error("a campaign's story holds at most {MAX_ENTRIES} entries: delete one first")]
    Full,
    /// Some fields are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

type Result<T, E = StoryError> = std::result::Result<T, E>;

/// Most entries in one campaign's story (the public list is sent whole).
pub const MAX_ENTRIES: i64 = 500;
/// Longest title, in characters, per language.
pub const MAX_TITLE: usize = 200;
/// Longest text, in characters, per language.
pub const MAX_TEXT: usize = 5_000;
/// Longest link, in bytes.
pub const MAX_LINK: usize = 2_000;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A step of the campaign (a vote, a decision, works starting).
    Milestone,
    /// News about the campaign.
    Update,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Milestone => "milestone",
            Kind::Update => "update",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "update" {
            Kind::Update
        } else {
            Kind::Milestone
        }
    }
}

/// An entry as staff write it (create, or replace all of an entry).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// `milestone` or `update`.
    pub kind: Kind,
    /// The day it happened (or is planned), `YYYY-MM-DD`.
    #[schema(example = "2026-11-15", pattern = r"^\d{4}-\d{2}-\d{2}$")]
    pub date: String,
    /// A short title, in French and English (at most 200 characters each).
    pub title: Localized,
    /// The text, in French and English (at most 5,000 characters each; plain text, blank
    /// lines between paragraphs).
    pub text: Localized,
    /// An optional `http`/`https` link (the decision, a press release).
    #[serde(default)]
    pub link: Option<String>,
    /// Whether the public sees it (default `true`; `false` keeps a draft).
    #[serde(default = "yes")]
    pub published: bool,
}

fn yes() -> bool {
    true
}

/// An entry once checked.
#[derive(Debug, Clone)]
struct Checked {
    kind: Kind,
    date: Date,
    title: Localized,
    text: Localized,
    link: Option<String>,
    published: bool,
}

/// The day format of the API (`YYYY-MM-DD`).
const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Whether a text holds a character XML 1.0 cannot carry (the feed must stay well formed), or
/// another control character than a line break or a tab.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    })
}

fn check_localized(errors: &mut Vec<FieldError>, field: &str, text: &Localized, max: usize) {
    for (lang, value) in [("fr", &text.fr), ("en", &text.en)] {
        let at = format!("{field}.{lang}");
        if value.trim().is_empty() {
            errors.push(FieldError::new(at, "must not be empty"));
        } else if value.chars().count() > max {
            errors.push(FieldError::new(
                at,
                format!("must be at most {max} characters"),
            ));
        } else if has_control(value) {
            errors.push(FieldError::new(
                at,
                "must not hold control characters (line breaks and tabs are fine)",
            ));
        }
    }
}

impl EntryInput {
    /// Checks every field, reporting every problem with its field.
    fn check(self) -> Result<Checked, Invalid> {
        let mut errors = Vec::new();
        let date = match Date::parse(self.date.trim(), DAY) {
            Ok(date) if (1900..=2200).contains(&date.year()) => Some(date),
            Ok(_) => {
                errors.push(FieldError::new("date", "must be between 1900 and 2200"));
                None
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "date",
                    format!("must be a day written YYYY-MM-DD, got `{}`", self.date),
                ));
                None
            }
        };
        check_localized(&mut errors, "title", &self.title, MAX_TITLE);
        check_localized(&mut errors, "text", &self.text, MAX_TEXT);
        let link = match self
            .link
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            None => None,
            Some(link) if link.len() > MAX_LINK => {
                errors.push(FieldError::new(
                    "link",
                    format!("must be at most {MAX_LINK} bytes"),
                ));
                None
            }
            Some(link) => match url::Url::parse(link) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    Some(url.to_string())
                }
                Ok(_) => {
                    errors.push(FieldError::new(
                        "link",
                        "must be an http:// or https:// address",
                    ));
                    None
                }
                Err(e) => {
                    errors.push(FieldError::new("link", format!("is not an address: {e}")));
                    None
                }
            },
        };
        Invalid::check(errors)?;
        Ok(Checked {
            kind: self.kind,
            date: date.expect("checked above"),
            title: trimmed(self.title),
            text: trimmed(self.text),
            link,
            published: self.published,
        })
    }
}

fn trimmed(text: Localized) -> Localized {
    Localized {
        fr: text.fr.trim().to_owned(),
        en: text.en.trim().to_owned(),
    }
}

/// An entry of a campaign's story.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: Uuid,
    pub kind: Kind,
    pub date: Date,
    pub title: Localized,
    pub text: Localized,
    pub link: Option<String>,
    pub published: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Entry {
    /// The day, as the API writes it.
    pub fn day(&self) -> String {
        self.date.format(DAY).unwrap_or_default()
    }
}

/// An entry as the public reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicEntry {
    pub id: Uuid,
    /// `milestone` or `update`.
    pub kind: Kind,
    /// `YYYY-MM-DD`.
    #[schema(example = "2026-11-15")]
    pub date: String,
    pub title: Localized,
    pub text: Localized,
    pub link: Option<String>,
}

impl From<&Entry> for PublicEntry {
    fn from(e: &Entry) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            date: e.day(),
            title: e.title.clone(),
            text: e.text.clone(),
            link: e.link.clone(),
        }
    }
}

/// An entry as staff read it: drafts too, and when it was written.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffEntry {
    #[serde(flatten)]
    pub entry: PublicEntry,
    pub published: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Entry> for StaffEntry {
    fn from(e: &Entry) -> Self {
        Self {
            entry: PublicEntry::from(e),
            published: e.published,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

struct EntryRow {
    id: Uuid,
    kind: String,
    happened_on: Date,
    title_fr: String,
    title_en: String,
    text_fr: String,
    text_en: String,
    link: Option<String>,
    published: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<EntryRow> for Entry {
    fn from(r: EntryRow) -> Self {
        Self {
            id: r.id,
            kind: Kind::parse(&r.kind),
            date: r.happened_on,
            title: Localized {
                fr: r.title_fr,
                en: r.title_en,
            },
            text: Localized {
                fr: r.text_fr,
                en: r.text_en,
            },
            link: r.link,
            published: r.published,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A campaign's story in the order it happened (by day, then as written); drafts only when
/// `drafts`.
pub async fn list(db: &PgPool, campaign_id: i64, drafts: bool) -> Result<Vec<Entry>> {
    let rows = sqlx::query_as!(
        EntryRow,
        "SELECT id, kind, happened_on, title_fr, title_en, text_fr, text_en, link, published,
                created_at, updated_at
         FROM story_entries WHERE campaign_id = $1 AND (published OR $2)
         ORDER BY happened_on, created_at, id",
        campaign_id,
        drafts,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// What `save` did.
#[derive(Debug, Clone)]
pub struct Saved {
    pub entry: Entry,
    /// The entry was not public and is now (a new published entry, or a draft published).
    pub newly_published: bool,
}

/// Stores a new entry (`id` None) or replaces one, audits it and bumps the campaign's version,
/// in one transaction. The one place where an entry is written and where it becomes public.
async fn save(
    db: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    id: Option<Uuid>,
    input: EntryInput,
) -> Result<Saved> {
    let checked = input.check()?;
    let mut tx = db.begin().await?;
    // Writes to one campaign's story, one at a time (the count below stays true).
    sqlx::query!(
        "SELECT id FROM campaigns WHERE id = $1 FOR UPDATE",
        campaign.id
    )
    .fetch_one(&mut *tx)
    .await?;
    let was_published = match id {
        Some(id) => sqlx::query_scalar!(
            "SELECT published FROM story_entries WHERE id = $1 AND campaign_id = $2",
            id,
            campaign.id,
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoryError::NotFound(id))?,
        None => {
            let count = sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!" FROM story_entries WHERE campaign_id = $1"#,
                campaign.id,
            )
            .fetch_one(&mut *tx)
            .await?;
            if count >= MAX_ENTRIES {
                return Err(StoryError::Full);
            }
            false
        }
    };
    let row = sqlx::query_as!(
        EntryRow,
        "INSERT INTO story_entries AS s (id, campaign_id, kind, happened_on, title_fr, title_en,
                                         text_fr, text_en, link, published)
         VALUES (COALESCE($1, gen_random_uuid()), $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, happened_on = EXCLUDED.happened_on,
             title_fr = EXCLUDED.title_fr, title_en = EXCLUDED.title_en,
             text_fr = EXCLUDED.text_fr, text_en = EXCLUDED.text_en, link = EXCLUDED.link,
             published = EXCLUDED.published, updated_at = now()
         WHERE s.campaign_id = EXCLUDED.campaign_id
         RETURNING id, kind, happened_on, title_fr, title_en, text_fr, text_en, link, published,
                   created_at, updated_at",
        id,
        campaign.id,
        checked.kind.as_str(),
        checked.date,
        checked.title.fr,
        checked.title.en,
        checked.text.fr,
        checked.text.en,
        checked.link,
        checked.published,
    )
    .fetch_one(&mut *tx)
    .await?;
    let entry = Entry::from(row);
    bump(&mut tx, campaign.id).await?;
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: if id.is_some() {
                "story.update"
            } else {
                "story.create"
            },
            campaign_id: Some(campaign.id),
            subject: Some(entry.id.to_string()),
            reason: None,
            details: serde_json::json!({
                "kind": entry.kind.as_str(), "date": entry.day(), "title": entry.title.en,
                "published": entry.published,
            }),
        },
    )
    .await?;
    let newly_published = entry.published && !was_published;
    if newly_published {
        // The entry becomes public with this commit, and its notice to the campaign's
        // followers is queued in the same transaction: sent if and only if it is published.
        crate::notify::enqueue_update(
            &mut tx,
            campaign.id,
            &crate::notify::Update {
                id: entry.id.to_string(),
                title: entry.title.clone(),
                text: entry.text.clone(),
                link: entry.link.clone(),
            },
        )
        .await?;
        tracing::info!(campaign = %campaign.slug, entry = %entry.id, kind = entry.kind.as_str(), "story entry published");
    }
    tx.commit().await?;
    Ok(Saved {
        entry,
        newly_published,
    })
}

/// Adds an entry to `campaign`'s story.
pub async fn create(
    db: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    input: EntryInput,
) -> Result<Saved> {
    save(db, actor, campaign, None, input).await
}

/// Replaces entry `id` of `campaign`'s story.
pub async fn replace(
    db: &PgPool,
    actor: Actor<'_>,
    campaign: &Campaign,
    id: Uuid,
    input: EntryInput,
) -> Result<Saved> {
    save(db, actor, campaign, Some(id), input).await
}

/// Deletes entry `id` of `campaign`'s story (audited, with its title).
pub async fn delete(db: &PgPool, actor: Actor<'_>, campaign: &Campaign, id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        "SELECT id FROM campaigns WHERE id = $1 FOR UPDATE",
        campaign.id
    )
    .fetch_one(&mut *tx)
    .await?;
    let deleted = sqlx::query!(
        "DELETE FROM story_entries WHERE id = $1 AND campaign_id = $2
         RETURNING kind, happened_on, title_en, published",
        id,
        campaign.id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoryError::NotFound(id))?;
    bump(&mut tx, campaign.id).await?;
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: "story.delete",
            campaign_id: Some(campaign.id),
            subject: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({
                "kind": deleted.kind, "date": deleted.happened_on.format(DAY).unwrap_or_default(),
                "title": deleted.title_en, "published": deleted.published,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Moves the campaign's settings version: what is cached of its story is stale.
async fn bump(tx: &mut sqlx::PgConnection, campaign_id: i64) -> Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET config_version = config_version + 1 WHERE id = $1",
        campaign_id
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(date: &str, title: &str, link: Option<&str>) -> EntryInput {
        EntryInput {
            kind: Kind::Milestone,
            date: date.to_owned(),
            title: Localized {
                fr: title.to_owned(),
                en: title.to_owned(),
            },
            text: Localized {
                fr: "Texte".to_owned(),
                en: "Text".to_owned(),
            },
            link: link.map(str::to_owned),
            published: true,
        }
    }

    #[test]
    fn a_good_entry_passes() {
        let checked = input(" 2026-11-15 ", " Vote ", Some("https://ville.example/vote"))
            .check()
            .unwrap();
        assert_eq!(checked.date, time::macros::date!(2026 - 11 - 15));
        assert_eq!(checked.title.fr, "Vote");
        assert_eq!(checked.link.as_deref(), Some("https://ville.example/vote"));
    }

    #[test]
    fn every_problem_is_named() {
        let mut bad = input("15/11/2026", "", Some("javascript:alert(1)"));
        bad.text.en = "a\u{0}b".to_owned();
        let errors = bad.check().unwrap_err().0;
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["date", "title.fr", "title.en", "text.en", "link"]);
    }

    #[test]
    fn limits_hold() {
        let long = "é".repeat(MAX_TITLE + 1);
        let errors = input("2026-02-30", &long, Some("ftp://x.example/"))
            .check()
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(input("1850-01-01", "a", None).check().is_err());
        assert!(
            input("2026-01-01", &"é".repeat(MAX_TITLE), None)
                .check()
                .is_ok()
        );
    }
}
