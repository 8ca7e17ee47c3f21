//! Read replicas (`--replica-url`) with a real PostgreSQL streaming replica: a primary and a
//! standby copied from it by `pg_basebackup`, both started here on private Unix sockets.
//! Public figures, tiles and raw exports are built on the replica when it holds the versions
//! the primary announced, and on the primary otherwise: a replica whose replay is paused never
//! makes a reader see less than what was acknowledged, is skipped once it lags beyond the
//! bound, and is read from again when it catches up; a replica that stops is skipped, and
//! taken back when it returns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use civicmap::database::embedded::EmbeddedCluster;
use civicmap::database::replicas::ReplicaStatus;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{TestApp, answers, exact, test_config};
use crate::tiles::tile_of;

/// A primary and a streaming replica of it, each an embedded cluster under a directory of its
/// own; both stopped when dropped.
pub struct ReplicaPair {
    pub primary: EmbeddedCluster,
    pub replica: EmbeddedCluster,
    dirs: [PathBuf; 2],
    _root: tempfile::TempDir,
}

impl ReplicaPair {
    /// Starts a primary, migrates it, then copies it into a standby and starts that.
    pub async fn start() -> Self {
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        // The postgres user runs the clusters when the tests run as root.
        std::fs::set_permissions(
            root.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let dirs = [root.path().join("primary"), root.path().join("replica")];
        let primary = EmbeddedCluster::new(&dirs[0]).unwrap();
        primary.start().await.unwrap();
        civicmap::database::migrate(&civicmap::database::pool(primary.connect_options(), 2))
            .await
            .unwrap();
        let replica = EmbeddedCluster::new(&dirs[1]).unwrap();
        replica.start_standby(&primary).await.unwrap();
        Self {
            primary,
            replica,
            dirs,
            _root: root,
        }
    }

    pub fn primary_pool(&self) -> PgPool {
        civicmap::database::pool(self.primary.connect_options(), 10)
    }

    pub async fn replica_connection(&self) -> sqlx::PgConnection {
        <sqlx::PgConnection as sqlx::Connection>::connect_with(&self.replica.connect_options())
            .await
            .unwrap()
    }

    pub fn replica_dir(&self) -> &Path {
        &self.dirs[1]
    }
}

impl Drop for ReplicaPair {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = Command::new(env!("CARGO_BIN_EXE_civicmap"))
                .args(["db", "stop", "--data-dir"])
                .arg(dir)
                .output();
        }
    }
}

/// Waits (at most `within`) until the replica's status satisfies `wanted`.
pub async fn until(
    app_reads: &civicmap::database::replicas::Replicas,
    within: Duration,
    what: &str,
    wanted: impl Fn(&ReplicaStatus) -> bool,
) -> Duration {
    let since = Instant::now();
    loop {
        let status = app_reads.status().remove(0);
        if wanted(&status) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < within,
            "{what}: not within {within:?}; the replica: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the public reads of the campaign now, and how many reads the replica was given for it.
struct Seen {
    total: Option<i64>,
    csv_rows: usize,
    raw_rows: usize,
    tile: StatusCode,
}

async fn read_everything(app: &TestApp, slug: &str, planner: &str, nonce: u32) -> Seen {
    // `nonce` changes each time: a query the response cache has not kept, so that it is built.
    let districts: Value = app
        .get(&format!("/api/v1/campaigns/{slug}/districts.geojson"))
        .await
        .json()
        .await
        .unwrap();
    let csv = app
        .get(&format!(
            "/api/v1/campaigns/{slug}/aggregates.csv?excel={}",
            nonce % 2
        ))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.unwrap();
    let (x, y) = tile_of(2.05, 48.05, 8 + nonce % 6);
    let tile = app
        .get(&format!("/tiles/{slug}/{}/{x}/{y}.mvt", 8 + nonce % 6))
        .await
        .status();
    let raw = app
        .client
        .get(app.url(&format!("/api/v1/admin/campaigns/{slug}/submissions.csv")))
        .bearer_auth(planner)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    let raw = raw.text().await.unwrap();
    Seen {
        total: districts["total"]["count"].as_i64(),
        csv_rows: csv.lines().count(),
        raw_rows: raw.lines().count() - 1,
        tile,
    }
}

fn replica_reads(app: &TestApp) -> u64 {
    app.reads.status()[0].reads
}

#[tokio::test]
async fn public_reads_go_to_a_caught_up_replica_and_never_show_less_than_was_acknowledged() {
    let pair = ReplicaPair::start().await;
    let mut config = test_config();
    config.replicas = vec![pair.replica.connect_options()];
    let bound = Duration::from_millis(800);
    config.replica_max_lag = bound;
    let app = TestApp::spawn_on_with(pair.primary_pool(), config).await;
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    app.open_campaign("replicated", exact()).await;
    for i in 0..3 {
        app.contribute("replicated", 2.02 + 0.02 * f64::from(i), 48.05, answers())
            .await;
    }
    until(&app.reads, Duration::from_secs(10), "replica usable", |s| {
        s.usable
    })
    .await;

    // 1. Caught up: the replica builds the figures, the tile and the raw export.
    let before = replica_reads(&app);
    let seen = read_everything(&app, "replicated", &planner, 0).await;
    assert_eq!(seen.total, Some(3));
    assert_eq!(seen.raw_rows, 3);
    assert_eq!(seen.tile, StatusCode::OK);
    let csv_rows = seen.csv_rows;
    let given = replica_reads(&app) - before;
    assert!(
        given >= 4,
        "districts, aggregates, tile and raw export built on the replica: it was given {given} reads"
    );

    // What the replica built is what the primary builds, byte for byte: the same figures
    // behind the same k-protection (an instance without replicas, over the same primary).
    let plain = TestApp::spawn_on_with(pair.primary_pool(), test_config()).await;
    let (x, y) = tile_of(2.05, 48.05, 8);
    for path in [
        "/api/v1/campaigns/replicated/districts.geojson".to_owned(),
        "/api/v1/campaigns/replicated/aggregates.csv?excel=0".to_owned(),
        "/api/v1/campaigns/replicated/timeseries.csv".to_owned(),
        format!("/tiles/replicated/8/{x}/{y}.mvt"),
    ] {
        let from_replica = app.get(&path).await.bytes().await.unwrap();
        let from_primary = plain.get(&path).await.bytes().await.unwrap();
        assert_eq!(from_replica, from_primary, "{path}");
    }
    assert!(
        replica_reads(&app) - before > given,
        "the time series too was built on the replica"
    );

    // 2. Replay paused: every write acknowledged since is seen at once all the same (the
    // replica does not hold the new version, the primary builds), and past the bound the
    // replica is skipped altogether.
    let mut replica = pair.replica_connection().await;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut replica)
        .await
        .unwrap();
    let paused_reads = replica_reads(&app);
    for (i, expected) in (4..=6).enumerate() {
        let receipt = app
            .contribute("replicated", 2.03 + 0.01 * i as f64, 48.06, answers())
            .await;
        let seen = read_everything(&app, "replicated", &planner, 1 + i as u32).await;
        assert_eq!(seen.total, Some(expected), "a write not yet on the replica");
        assert_eq!(seen.raw_rows, expected as usize);
        assert_eq!(seen.csv_rows, csv_rows);
        // The submitter reads their own submission from the primary.
        let own = app
            .own_submission("replicated", &receipt.id.to_string(), &receipt.edit_token)
            .await;
        assert_eq!(own["id"], receipt.id.to_string());
    }
    assert_eq!(
        replica_reads(&app),
        paused_reads,
        "nothing newer than the paused replica's versions was read from it"
    );
    let skipped_after = until(
        &app.reads,
        bound + Duration::from_secs(5),
        "a replica paused beyond the bound is skipped",
        |s| !s.usable,
    )
    .await;
    let status = app.reads.status().remove(0);
    assert!(
        status.lag.is_none_or(|lag| lag > bound),
        "skipped for its lag: {status:?}"
    );

    // 3. Replay resumed: back within the bound, it serves reads again, with every write.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut replica)
        .await
        .unwrap();
    let back_after = until(&app.reads, Duration::from_secs(10), "replica back", |s| {
        s.usable
    })
    .await;
    let resumed_reads = replica_reads(&app);
    let seen = read_everything(&app, "replicated", &planner, 7).await;
    assert_eq!(seen.total, Some(6));
    assert_eq!(seen.raw_rows, 6);
    // The tile (a zoom not read at this version) and the raw export; the figures at this
    // version were built on the primary while the replica was paused, and are kept.
    assert!(
        replica_reads(&app) >= resumed_reads + 2,
        "the caught-up replica builds again: {:?}",
        app.reads.status()
    );
    eprintln!(
        "replica paused: set aside {skipped_after:?} after the reads that followed the writes (bound {bound:?}); \
         resumed: usable again after {back_after:?}"
    );
}

#[tokio::test]
async fn a_replica_that_stops_is_skipped_and_taken_back_when_it_returns() {
    let pair = ReplicaPair::start().await;
    let mut config = test_config();
    config.replicas = vec![pair.replica.connect_options()];
    let app = TestApp::spawn_on_with(pair.primary_pool(), config).await;
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    app.open_campaign("stopped", exact()).await;
    app.contribute("stopped", 2.05, 48.05, answers()).await;
    until(&app.reads, Duration::from_secs(10), "replica usable", |s| {
        s.usable
    })
    .await;
    assert_eq!(
        read_everything(&app, "stopped", &planner, 0).await.total,
        Some(1)
    );

    // Stopped (as the postgres user when the tests run as root).
    let stopped = Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(["db", "stop", "--data-dir"])
        .arg(pair.replica_dir())
        .output()
        .unwrap();
    assert!(stopped.status.success(), "{stopped:?}");
    // A write, then reads at its new version: the replica is found away at the version check
    // (or already by the probe), and the primary answers.
    app.contribute("stopped", 2.06, 48.06, answers()).await;
    for nonce in 1..4 {
        let seen = read_everything(&app, "stopped", &planner, nonce).await;
        assert_eq!(seen.total, Some(2));
        assert_eq!(seen.raw_rows, 2);
    }
    until(
        &app.reads,
        Duration::from_secs(5),
        "stopped replica set aside",
        |s| !s.usable,
    )
    .await;

    // Back: the probe finds it caught up, and it builds again.
    pair.replica.start().await.unwrap();
    let back = until(&app.reads, Duration::from_secs(20), "replica back", |s| {
        s.usable
    })
    .await;
    let before = replica_reads(&app);
    app.contribute("stopped", 2.07, 48.07, answers()).await;
    // Its version reaches the replica within milliseconds; reads at it then go there.
    let since = Instant::now();
    loop {
        let seen = read_everything(&app, "stopped", &planner, 10).await;
        assert_eq!(seen.total, Some(3));
        if replica_reads(&app) > before {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the returned replica was given no read: {:?}",
            app.reads.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("stopped replica: usable again {back:?} after it restarted");
}
