//! `civicmap token`: staff API tokens.

use clap::Subcommand;

use super::database::{DbArgs, with_migrated_database};
use crate::auth::Role;
use anyhow::Context;

#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Create a token and print it (the secret is shown only once).
    Create {
        /// Who or what holds the token.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
        /// Days until it expires (never by default).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (never their secrets): id, name, role, state, created, expires, last used.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set or clear when a token stops working.
    Expire {
        /// The token's id (the number after `cmk_`).
        id: i64,
        /// When it stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z); a past time expires it now.
        #[arg(long, conflicts_with_all = ["in_days", "never", "now"])]
        at: Option<String>,
        /// Stops working in this many days.
        #[arg(long, conflicts_with_all = ["never", "now"])]
        in_days: Option<u32>,
        /// Expires it at once.
        #[arg(long, conflicts_with = "never")]
        now: bool,
        /// Never expires.
        #[arg(long)]
        never: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token for good.
    Revoke {
        /// The token's id (the number after `cmk_`).
        id: i64,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub(super) async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
            db,
        } => {
            with_migrated_database(&db, |pool| async move {
                let expires_at = expires_in_days
                    .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(d.into()));
                let token = crate::auth::create_token(&pool, &name, role, expires_at).await?;
                println!("{token}");
                Ok(())
            })
            .await
        }
        TokenCommand::List { db } => {
            with_migrated_database(&db, |pool| async move {
                let tokens = crate::auth::tokens::list(&pool).await?;
                print!("{}", token_table(&tokens, time::OffsetDateTime::now_utc()));
                Ok(())
            })
            .await
        }
        TokenCommand::Expire {
            id,
            at,
            in_days,
            now,
            never,
            db,
        } => {
            let expires_at = match (at, in_days, now, never) {
                (Some(at), ..) => Some(
                    time::OffsetDateTime::parse(
                        &at,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .with_context(|| format!("--at {at} is not an RFC 3339 time"))?,
                ),
                (None, Some(days), ..) => {
                    Some(time::OffsetDateTime::now_utc() + time::Duration::days(days.into()))
                }
                (None, None, true, _) => Some(time::OffsetDateTime::now_utc()),
                (None, None, false, true) => None,
                (None, None, false, false) => {
                    anyhow::bail!("say when: --at TIME, --in-days N, --now or --never")
                }
            };
            with_migrated_database(&db, |pool| async move {
                let info = crate::auth::tokens::set_expiry(
                    &pool,
                    crate::audit::Actor::Cli,
                    id,
                    expires_at,
                )
                .await?;
                print!("{}", token_table(&[info], time::OffsetDateTime::now_utc()));
                Ok(())
            })
            .await
        }
        TokenCommand::Revoke { id, reason, db } => {
            with_migrated_database(&db, |pool| async move {
                let info = crate::auth::tokens::revoke(&pool, crate::audit::Actor::Cli, id, reason)
                    .await?;
                print!("{}", token_table(&[info], time::OffsetDateTime::now_utc()));
                Ok(())
            })
            .await
        }
    }
}

/// Tokens as a plain-text table, one per line.
fn token_table(tokens: &[crate::auth::tokens::TokenInfo], now: time::OffsetDateTime) -> String {
    let when = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
    };
    let mut out = format!(
        "{:<6} {:<9} {:<8} {:<20} {:<20} {:<20} {}\n",
        "ID", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED", "NAME"
    );
    for t in tokens {
        out.push_str(&format!(
            "{:<6} {:<9} {:<8} {:<20} {:<20} {:<20} {}\n",
            t.id,
            t.role.as_str(),
            t.state(now),
            when(Some(t.created_at)),
            when(t.expires_at),
            when(t.last_used_at),
            t.name
        ));
    }
    out
}
