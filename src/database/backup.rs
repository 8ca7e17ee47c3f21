//! Backups with PostgreSQL's own tools: `pg_dump` writes the whole database in its custom
//! format, `pg_restore` puts it back in one transaction, then the migrations bring it up to
//! this version of civicmap.
//!
//! A backup holds everything but the contents of the shared rate limits (an UNLOGGED table of
//! short-lived keyed hashes, restored empty), exact points included: it must be kept as safely
//! as the database, and rotated within the shortest retention period of the campaigns it holds
//! (docs/OPERATIONS.md).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sqlx::PgPool;
use tokio::process::Command;

/// A database that `pg_dump` and `pg_restore` can reach.
#[derive(Debug, Clone)]
pub struct Target {
    /// A libpq connection URL, without its password.
    url: String,
    /// The password, passed in the environment rather than on the command line (where any
    /// user of the machine could read it).
    password: Option<String>,
    /// Where the PostgreSQL tools are: the embedded cluster's own, else the newest installed.
    bin_dir: Option<PathBuf>,
}

impl Target {
    /// The database at `url`, reached with the tools in `bin_dir` (or the newest installed).
    pub fn new(url: &str, bin_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut parsed = url::Url::parse(url).context("the database URL is not a valid URL")?;
        let password = parsed
            .password()
            .map(|p| percent_encoding::percent_decode_str(p).decode_utf8())
            .transpose()
            .context("the database URL's password is not valid UTF-8")?
            .map(String::from);
        if password.is_some() {
            parsed
                .set_password(None)
                .map_err(|()| anyhow::anyhow!("the database URL cannot hold a password"))?;
        }
        Ok(Self {
            url: parsed.to_string(),
            password,
            bin_dir,
        })
    }

    /// Runs `tool` with `args` to the end; an error only when it cannot be started.
    async fn run(
        &self,
        tool: &str,
        args: &[&std::ffi::OsStr],
    ) -> anyhow::Result<std::process::Output> {
        self.command(tool)
            .args(args)
            .output()
            .await
            .with_context(|| format!("cannot run {tool} (install PostgreSQL's client tools)"))
    }

    fn command(&self, tool: &str) -> Command {
        let program = self
            .bin_dir
            .as_ref()
            .map(|dir| dir.join(tool))
            .filter(|path| path.is_file())
            .unwrap_or_else(|| super::embedded::client_tool(tool));
        let mut command = Command::new(program);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command.kill_on_drop(true);
        command
    }
}

/// What a backup or a restore holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Campaigns.
    pub campaigns: i64,
    /// Submissions, whatever their status.
    pub submissions: i64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} campaigns, {} submissions",
            self.campaigns, self.submissions
        )
    }
}

/// Counts what the database holds.
pub async fn summary(pool: &PgPool) -> anyhow::Result<Summary> {
    let counts = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM campaigns) AS "campaigns!",
                  (SELECT count(*) FROM submissions) AS "submissions!""#,
    )
    .fetch_one(pool)
    .await?;
    let (campaigns, submissions) = (counts.campaigns, counts.submissions);
    Ok(Summary {
        campaigns,
        submissions,
    })
}

/// Writes the whole database to `file` in `pg_dump`'s custom format (compressed, restorable
/// table by table). The file appears only once complete: a failed backup leaves none.
pub async fn backup(target: &Target, file: &Path) -> anyhow::Result<()> {
    let partial = partial_name(file);
    // What an interrupted backup left (it holds exact points too).
    let _ = std::fs::remove_file(&partial);
    let output = target
        .run(
            "pg_dump",
            &[
                "--format=custom".as_ref(),
                // The shared rate limits (keyed hashes of recent clients' addresses, gone
                // within seconds) are not worth keeping, nor safe to: the table comes back empty.
                "--no-unlogged-table-data".as_ref(),
                "--file".as_ref(),
                partial.as_os_str(),
                "--dbname".as_ref(),
                target.url.as_ref(),
            ],
        )
        .await?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!("pg_dump failed: {}", stderr(&output));
    }
    std::fs::rename(&partial, file)
        .with_context(|| format!("cannot write the backup to {}", file.display()))?;
    Ok(())
}

fn partial_name(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(OsString::from(".partial"));
    PathBuf::from(name)
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// Replaces the database's content with the backup in `file`, in one transaction: if
/// anything fails, the database is left as it was. Refuses a file that is not a civicmap
/// backup, and (unless `force`) a database that civicmap servers are connected to: their
/// caches would go on serving what the restore replaced.
pub async fn restore(
    target: &Target,
    pool: &PgPool,
    file: &Path,
    force: bool,
) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{}: no such file", file.display());
    }
    let listing = target
        .run("pg_restore", &["--list".as_ref(), file.as_os_str()])
        .await?;
    if !listing.status.success() {
        bail!(
            "{} is not a backup made by `civicmap backup` (pg_dump's custom format): {}",
            file.display(),
            stderr(&listing)
        );
    }
    let listing = String::from_utf8_lossy(&listing.stdout);
    if !listing.contains("TABLE public campaigns") || !listing.contains("TABLE public submissions")
    {
        bail!(
            "{} is a PostgreSQL backup, but not of a civicmap database (it has no campaigns and submissions tables)",
            file.display()
        );
    }
    if !force {
        let servers: i64 = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name IN ('civicmap', 'civicmap-writer')"#,
        )
        .fetch_one(pool)
        .await?;
        if servers > 0 {
            bail!(
                "{servers} connections of running civicmap servers are open on this database; stop them before restoring (or pass --force and restart them after)"
            );
        }
    }
    // The pool's connection would hold locks on nothing, but close it all the same so that
    // only pg_restore works on the database meanwhile.
    pool.close().await;
    let output = target
        .run(
            "pg_restore",
            &[
                "--clean".as_ref(),
                "--if-exists".as_ref(),
                "--no-owner".as_ref(),
                "--no-privileges".as_ref(),
                "--single-transaction".as_ref(),
                "--exit-on-error".as_ref(),
                "--dbname".as_ref(),
                target.url.as_ref(),
                file.as_os_str(),
            ],
        )
        .await?;
    if !output.status.success() {
        bail!(
            "pg_restore failed; the database is unchanged: {}",
            stderr(&output)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_to_the_environment_not_the_command_line() {
        let target = Target::new(
            "postgres://civic:p%40ss%2Fw@db.example:5433/civicmap?sslmode=require",
            None,
        )
        .unwrap();
        assert_eq!(target.password.as_deref(), Some("p@ss/w"));
        assert_eq!(
            target.url,
            "postgres://civic@db.example:5433/civicmap?sslmode=require"
        );
        let target = Target::new(
            "postgres://civicmap@localhost:5432/civicmap?host=/tmp/run",
            None,
        )
        .unwrap();
        assert_eq!(target.password, None);
        assert_eq!(
            target.url,
            "postgres://civicmap@localhost:5432/civicmap?host=/tmp/run"
        );
    }

    #[test]
    fn a_bad_url_is_named() {
        let error = Target::new("not a url", None).unwrap_err();
        assert!(error.to_string().contains("database URL"), "{error}");
    }

    #[test]
    fn a_backup_is_written_beside_its_final_name() {
        assert_eq!(
            partial_name(Path::new("/backups/city.dump")),
            Path::new("/backups/city.dump.partial")
        );
    }
}
