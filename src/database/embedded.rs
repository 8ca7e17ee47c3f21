//! A private PostgreSQL cluster that civicmap runs itself when no `DATABASE_URL` is given.
//!
//! The cluster lives under the data directory, listens on a Unix socket only (no TCP port),
//! trusts local connections (the socket directory is private) and is started and stopped with
//! the machine's own `initdb` and `pg_ctl`. PostgreSQL refuses to run as root, so when
//! civicmap runs as root the cluster runs as the `postgres` system user.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sha2::Digest;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::process::Command;

/// Database and role name inside the embedded cluster.
pub const DATABASE: &str = "civicmap";
const PORT: u16 = 5432;
/// How often a supervised cluster is checked.
const SUPERVISION_PERIOD: Duration = Duration::from_millis(500);
/// How long `start` keeps trying to start the server (old backends of a crashed one may hold
/// its shared memory for a moment).
const START_PATIENCE: Duration = Duration::from_secs(30);
/// sun_path is 108 bytes on Linux; the socket file name adds `/.s.PGSQL.5432`.
const MAX_SOCKET_DIR_LEN: usize = 90;

/// A PostgreSQL cluster under a directory of ours.
#[derive(Debug, Clone)]
pub struct EmbeddedCluster {
    bin_dir: PathBuf,
    root: PathBuf,
    socket_dir: PathBuf,
    owner: Option<nix::unistd::User>,
}

impl EmbeddedCluster {
    /// Describes (without starting) the cluster under `root`: data in `root/pg`, socket in
    /// `root/run`, log in `root/log/postgres.log`.
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create data directory {}", root.display()))?;
        let mut root = root.canonicalize()?;
        let digest = format!(
            "{:x}",
            sha2::Sha256::digest(root.as_os_str().as_encoded_bytes())
        );
        let owner = if nix::unistd::geteuid().is_root() {
            Some(
                nix::unistd::User::from_name("postgres")?
                    .context("running as root, but there is no `postgres` system user to run the embedded PostgreSQL as (install the postgresql package)")?,
            )
        } else {
            None
        };
        if let Some(owner) = &owner
            && !reachable_by(&root, owner)
        {
            // A parent of the data directory is closed to the postgres user (e.g. /root):
            // keep the cluster in a directory of its own under the system's temporary folder.
            let moved = private_temp_dir(&format!("civicmap-{}", &digest[..16]), Some(owner))?;
            tracing::warn!(
                requested = %root.display(),
                used = %moved.display(),
                "the postgres user cannot reach the data directory; the embedded cluster lives elsewhere"
            );
            root = moved;
        }
        let mut socket_dir = root.join("run");
        if socket_dir.as_os_str().len() > MAX_SOCKET_DIR_LEN {
            // Too long for a Unix socket path: use a short directory named after the root.
            socket_dir =
                private_temp_dir(&format!("civicmap-{}-run", &digest[..16]), owner.as_ref())?;
        }
        Ok(Self {
            bin_dir: find_bin_dir()?,
            root,
            socket_dir,
            owner,
        })
    }

    /// Where the cluster's PostgreSQL programs are (its `pg_dump` matches its server).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Where the cluster's files are.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("pg")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("log").join("postgres.log")
    }

    /// Connection options for the civicmap database, over the Unix socket.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(DATABASE)
            .database(DATABASE)
    }

    /// A `DATABASE_URL` for the civicmap database over the Unix socket.
    pub fn url(&self) -> String {
        format!(
            "postgres://{DATABASE}@localhost:{PORT}/{DATABASE}?host={}",
            self.socket_dir.display()
        )
    }

    /// Creates the cluster if needed, starts it unless it already runs, and creates the
    /// civicmap database. Waits until the server accepts connections.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.prepare_dirs()?;
        if !self.data_dir().join("PG_VERSION").exists() {
            tracing::info!(dir = %self.data_dir().display(), "creating the embedded PostgreSQL cluster");
            let data_dir = self.data_dir();
            let args: [&OsStr; 8] = [
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-U".as_ref(),
                DATABASE.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-instructions".as_ref(),
            ];
            self.run("initdb", &args).await?;
        }
        if !self.is_running().await? {
            tracing::info!(socket = %self.socket_dir.display(), "starting the embedded PostgreSQL");
            let options = format!(
                "-k {} -p {PORT} -c listen_addresses='' -c unix_socket_permissions=0700",
                self.socket_dir.display()
            );
            let data_dir = self.data_dir();
            let log_file = self.log_file();
            let args: [&OsStr; 10] = [
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-l".as_ref(),
                log_file.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ];
            // Right after a crash the old backends may still hold the shared memory for a
            // moment, and PostgreSQL refuses to start until they are gone: retry a while.
            let mut delay = Duration::from_millis(250);
            let deadline = Instant::now() + START_PATIENCE;
            loop {
                match self.run("pg_ctl", &args).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() + delay < deadline => {
                        tracing::warn!(error = %e, retry_in = ?delay, "the embedded PostgreSQL did not start yet");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(4));
                    }
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!(
                                "the embedded PostgreSQL did not start; see {}",
                                self.log_file().display()
                            )
                        });
                    }
                }
            }
        }
        self.create_database().await
    }

    /// Makes this cluster a streaming replica of `primary` (another embedded cluster, running)
    /// if it does not exist yet: a copy by `pg_basebackup` over the primary's socket, set to
    /// follow it (`standby.signal`, `primary_conninfo`) with `hot_standby_feedback` on, so that
    /// long reads here do not see their rows vacuumed away on the primary. Then starts it
    /// like [`Self::start`]. For trying replicas on one machine and for the tests; in
    /// production the provider's or the DBA's replicas serve (docs/DEPLOY.md).
    pub async fn start_standby(&self, primary: &EmbeddedCluster) -> anyhow::Result<()> {
        if !self.data_dir().join("PG_VERSION").exists() {
            self.prepare_dirs()?;
            tracing::info!(dir = %self.data_dir().display(), "copying the primary for a standby");
            let (data_dir, socket_dir, port) = (
                self.data_dir(),
                primary.socket_dir.clone(),
                PORT.to_string(),
            );
            let args: [&OsStr; 12] = [
                "-h".as_ref(),
                socket_dir.as_os_str(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                DATABASE.as_ref(),
                "-D".as_ref(),
                data_dir.as_os_str(),
                "--write-recovery-conf".as_ref(),
                "--wal-method=stream".as_ref(),
                "--checkpoint=fast".as_ref(),
                "--no-password".as_ref(),
            ];
            self.run("pg_basebackup", &args).await?;
            // After the primary_conninfo that --write-recovery-conf appended.
            let auto_conf = data_dir.join("postgresql.auto.conf");
            let mut conf = std::fs::read_to_string(&auto_conf)
                .with_context(|| format!("cannot read {}", auto_conf.display()))?;
            conf.push_str("hot_standby_feedback = on\n");
            std::fs::write(&auto_conf, conf)?;
        }
        self.start().await
    }

    /// The postmaster's process id, from `postmaster.pid`, if it is alive.
    pub fn postmaster(&self) -> Option<nix::unistd::Pid> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        let pid = nix::unistd::Pid::from_raw(pid);
        let alive = match nix::sys::signal::kill(pid, None) {
            // EPERM: alive, under another user (the `postgres` user when civicmap runs as root).
            Ok(()) | Err(nix::errno::Errno::EPERM) => true,
            Err(_) => false,
        };
        // A killed postmaster stays a zombie until its parent (often init, or nobody in a
        // container) reaps it: `kill` still finds it, /proc says it is dead ("Z").
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
                Some(state == 'Z' || state == 'X')
            })
            .unwrap_or(false);
        (alive && !zombie).then_some(pid)
    }

    /// Watches the cluster this process started and starts it again whenever it dies (a
    /// crash, the kernel's OOM killer), with backoff, marking `health` away meanwhile so that
    /// readiness and writes answer 503 at once. Runs until aborted: abort it before stopping
    /// the cluster on purpose.
    pub fn supervise(self, health: super::Health) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut restarts: u64 = 0;
            loop {
                tokio::time::sleep(SUPERVISION_PERIOD).await;
                if self.postmaster().is_some() {
                    continue;
                }
                health.set_away(true);
                let down = Instant::now();
                tracing::error!(
                    log = %self.log_file().display(),
                    "the embedded PostgreSQL stopped unexpectedly; starting it again"
                );
                let mut delay = Duration::from_millis(500);
                loop {
                    match self.start().await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::error!(error = %e, retry_in = ?delay, "the embedded PostgreSQL could not be started again");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                restarts += 1;
                metrics::counter!("civicmap_embedded_restarts_total").increment(1);
                health.set_away(false);
                tracing::warn!(
                    restarts,
                    after = ?down.elapsed(),
                    "the embedded PostgreSQL is back"
                );
            }
        })
    }

    /// Stops the cluster, letting running transactions be rolled back cleanly ("fast" mode).
    pub async fn stop(&self) -> anyhow::Result<()> {
        if !self.is_running().await? {
            return Ok(());
        }
        tracing::info!("stopping the embedded PostgreSQL");
        let data_dir = self.data_dir();
        let args: [&OsStr; 6] = [
            "stop".as_ref(),
            "-w".as_ref(),
            "-m".as_ref(),
            "fast".as_ref(),
            "-D".as_ref(),
            data_dir.as_os_str(),
        ];
        self.run("pg_ctl", &args).await?;
        Ok(())
    }

    /// True when a postmaster runs on this data directory (a killed one that is still a
    /// zombie does not count: `pg_ctl status` would say it runs).
    pub async fn is_running(&self) -> anyhow::Result<bool> {
        if !self.data_dir().join("PG_VERSION").exists() {
            return Ok(false);
        }
        Ok(self.postmaster().is_some())
    }

    fn prepare_dirs(&self) -> anyhow::Result<()> {
        for dir in [
            self.data_dir(),
            self.socket_dir.clone(),
            self.root.join("log"),
        ] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::set_permissions(self.data_dir(), std::fs::Permissions::from_mode(0o700))?;
        std::fs::set_permissions(&self.socket_dir, std::fs::Permissions::from_mode(0o700))?;
        if let Some(owner) = &self.owner {
            // The postgres user must reach the root through its parents and own what it writes.
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o755))?;
            for dir in [
                self.data_dir(),
                self.socket_dir.clone(),
                self.root.join("log"),
            ] {
                chown_recursive(&dir, owner)?;
            }
        }
        Ok(())
    }

    async fn create_database(&self) -> anyhow::Result<()> {
        let mut conn = self
            .connect_options()
            .database("postgres")
            .connect()
            .await
            .context("cannot connect to the embedded PostgreSQL")?;
        let exists: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
            DATABASE,
        )
        .fetch_one(&mut conn)
        .await?;
        if !exists {
            sqlx::query!("CREATE DATABASE civicmap",)
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    fn command(&self, program: &str, args: &[&OsStr]) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .args(args)
            .current_dir(&self.root)
            .env("LC_ALL", "C")
            .kill_on_drop(false);
        if let Some(owner) = &self.owner {
            command.uid(owner.uid.as_raw()).gid(owner.gid.as_raw());
        }
        command
    }

    async fn run(&self, program: &str, args: &[&OsStr]) -> anyhow::Result<Output> {
        let output = self
            .command(program, args)
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.bin_dir.join(program).display()))?;
        if !output.status.success() {
            bail!(
                "{program} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output)
    }
}

/// Whether `user` can traverse every parent of `path` (the execute bit for it on each).
fn reachable_by(path: &Path, user: &nix::unistd::User) -> bool {
    use std::os::unix::fs::MetadataExt;
    path.ancestors()
        .skip(1)
        .all(|dir| match std::fs::metadata(dir) {
            Ok(meta) => {
                let mode = meta.mode();
                mode & 0o001 != 0
                    || (meta.uid() == user.uid.as_raw() && mode & 0o100 != 0)
                    || (meta.gid() == user.gid.as_raw() && mode & 0o010 != 0)
            }
            Err(_) => false,
        })
}

/// A directory `name` in the system's temporary folder that is civicmap's alone: created now
/// (mode 0700), or left by an earlier run, owned by this user or by `owner`, writable by no
/// one else, and not a link. Anything else there (another user's directory, a link planted to
/// make us hand a directory to PostgreSQL with trust authentication) is refused.
fn private_temp_dir(name: &str, owner: Option<&nix::unistd::User>) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::temp_dir().join(name);
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            return Ok(dir);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    let uid = meta.uid();
    let ours =
        uid == nix::unistd::geteuid().as_raw() || owner.is_some_and(|o| o.uid.as_raw() == uid);
    if !meta.file_type().is_dir() || !ours || meta.mode() & 0o022 != 0 {
        bail!(
            "{} exists but is not a private directory of civicmap's (a {}, owner uid {uid}, mode {:o}); \
             remove it, or give --data-dir a directory the postgres user can reach",
            dir.display(),
            if meta.file_type().is_symlink() {
                "link"
            } else if meta.is_dir() {
                "directory"
            } else {
                "file"
            },
            meta.mode() & 0o7777
        );
    }
    Ok(dir)
}

/// Gives `path` and everything under it to `owner`, never following a link (a link is given
/// itself, not what it points to).
fn chown_recursive(path: &Path, owner: &nix::unistd::User) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.uid.as_raw()), Some(owner.gid.as_raw()))
        .with_context(|| format!("cannot give {} to the postgres user", path.display()))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_recursive(&entry?.path(), owner)?;
        }
    }
    Ok(())
}

/// Finds a directory with `initdb`, `pg_ctl` and `postgres`: `CIVICMAP_PG_BIN` if set, else
/// the newest `/usr/lib/postgresql/*/bin` (preferring one whose PostGIS is installed), else
/// the PATH.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    if let Some(dir) = std::env::var_os("CIVICMAP_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_all(&dir) {
            return Ok(dir);
        }
        bail!(
            "CIVICMAP_PG_BIN={} has no initdb, pg_ctl and postgres",
            dir.display()
        );
    }
    let versions: Vec<(u32, PathBuf)> = installed_versions()
        .into_iter()
        .filter(|(_, dir)| has_all(dir))
        .collect();
    let with_postgis = versions.iter().find(|(v, _)| {
        Path::new(&format!(
            "/usr/share/postgresql/{v}/extension/postgis.control"
        ))
        .exists()
    });
    if let Some((_, dir)) = with_postgis.or(versions.first()) {
        return Ok(dir.clone());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_all(dir))
        .context("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found under /usr/lib/postgresql/*/bin or on PATH; install postgresql and postgis, or set DATABASE_URL")
}

/// The `bin` directories of the installed PostgreSQL versions, newest first.
fn installed_versions() -> Vec<(u32, PathBuf)> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions
}

/// A PostgreSQL client program (`pg_dump`, `pg_restore`) for any server: from
/// `CIVICMAP_PG_BIN` if it has it, else the newest installed version's (a newer `pg_dump`
/// reads older servers, not the reverse), else the PATH's.
pub fn client_tool(name: &str) -> PathBuf {
    let configured = std::env::var_os("CIVICMAP_PG_BIN").map(PathBuf::from);
    configured
        .into_iter()
        .chain(installed_versions().into_iter().map(|(_, dir)| dir))
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn unique(tag: &str) -> String {
        format!("civicmap-test-{tag}-{}", uuid::Uuid::new_v4().simple())
    }

    #[test]
    fn a_fresh_temporary_directory_is_created_private() {
        let name = unique("fresh");
        let dir = private_temp_dir(&name, None).unwrap();
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        // Left by an earlier run of ours: used again.
        assert_eq!(private_temp_dir(&name, None).unwrap(), dir);
        std::fs::remove_dir(dir).unwrap();
    }

    #[test]
    fn a_planted_link_or_an_open_directory_is_refused() {
        // A link to a directory the attacker wants handed to PostgreSQL.
        let name = unique("link");
        let target = std::env::temp_dir().join(unique("target"));
        std::fs::create_dir(&target).unwrap();
        let planted = std::env::temp_dir().join(&name);
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        let error = private_temp_dir(&name, None).unwrap_err().to_string();
        assert!(error.contains("a link"), "{error}");
        std::fs::remove_file(planted).unwrap();
        // A directory anyone may write to.
        let name = unique("open");
        let open = std::env::temp_dir().join(&name);
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = private_temp_dir(&name, None).unwrap_err().to_string();
        assert!(error.contains("not a private directory"), "{error}");
        std::fs::remove_dir(open).unwrap();
        std::fs::remove_dir(target).unwrap();
    }

    #[test]
    fn another_users_directory_is_refused_and_links_are_never_followed() {
        if !nix::unistd::geteuid().is_root() {
            return; // giving files to another user needs root, as the embedded cluster does
        }
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let name = unique("theirs");
        let theirs = std::env::temp_dir().join(&name);
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::lchown(&theirs, Some(nobody.uid.as_raw()), None).unwrap();
        let error = private_temp_dir(&name, None).unwrap_err().to_string();
        assert!(
            error.contains(&format!("owner uid {}", nobody.uid)),
            "{error}"
        );

        // chown_recursive gives a link itself, never the file it points to.
        let outside = std::env::temp_dir().join(unique("outside"));
        std::fs::write(&outside, "root's").unwrap();
        let tree = std::env::temp_dir().join(unique("tree"));
        std::fs::create_dir(&tree).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        chown_recursive(&tree, &nobody).unwrap();
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), 0);
        assert_eq!(
            std::fs::symlink_metadata(tree.join("link")).unwrap().uid(),
            nobody.uid.as_raw()
        );
        std::fs::remove_file(outside).unwrap();
        std::fs::remove_dir_all(tree).unwrap();
        std::fs::remove_dir(theirs).unwrap();
    }
}
