//! Faults under load, with the real binary: citizens keep submitting (retrying with the same
//! `Idempotency-Key` on 503 or a broken connection, as the widget does) while civicmap is
//! killed and restarted, the embedded PostgreSQL is killed, PostgreSQL is stopped cleanly,
//! and civicmap is asked to stop (SIGTERM). Afterwards every acknowledged submission is stored
//! exactly once, every district counter equals its rows, no request got a 500, and each time
//! the service came back without a human.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use civicmap::database::embedded::EmbeddedCluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::helpers::{assert_counters_match_rows, assert_stored};

/// A `civicmap serve --demo` process over an embedded cluster of its own.
struct Server {
    data_dir: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn new(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            data_dir: dir.join("data"),
            port,
            log: dir.join("server.log"),
            child: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_civicmap"))
            .args(["serve", "--demo", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "--submissions-per-ip",
                "0",
                "--submissions-per-campaign",
                "0",
            ])
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "civicmap=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// SIGKILL, as the OOM killer or a power cut would.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM, as systemd or Kubernetes would.
    fn ask_to_stop(&self) -> Instant {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        Instant::now()
    }

    /// Whether the process is still running.
    fn running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit after [`Self::ask_to_stop`]; returns whether it exited
    /// successfully.
    async fn exited(&mut self) -> bool {
        let asked = Instant::now();
        let mut child = self.child.take().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if asked.elapsed() > Duration::from_secs(60) {
                child.kill().unwrap();
                panic!("civicmap did not exit within 60 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn cluster(&self) -> EmbeddedCluster {
        EmbeddedCluster::new(&self.data_dir).unwrap()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(env!("CARGO_BIN_EXE_civicmap"))
            .args(["db", "stop", "--data-dir"])
            .arg(&self.data_dir)
            .output();
    }
}

/// Waits until `/readyz` answers 200; returns how long that took.
async fn ready(server: &Server, http: &reqwest::Client, within: Duration) -> Duration {
    let since = Instant::now();
    loop {
        let response = http.get(server.url("/readyz")).send().await;
        if response.is_ok_and(|r| r.status() == 200) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < within,
            "not ready within {within:?}; the server's log:\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the citizens saw.
#[derive(Default)]
struct Seen {
    /// Idempotency key → id of the submission it was acknowledged with.
    acknowledged: HashMap<String, String>,
    /// Every HTTP status received, with how often.
    statuses: BTreeMap<u16, usize>,
    /// Requests that got no HTTP answer (server killed, connection refused or cut).
    no_answer: usize,
}

/// A citizen submitting without pause until `stop`; each submission is retried with its key
/// until acknowledged, so that a stop leaves nothing unresolved.
async fn citizen(server_url: String, n: usize, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    // Points inside Nanterre's districts (the demo campaign).
    let points = [
        (2.2066, 48.8924),
        (2.1950, 48.8990),
        (2.2150, 48.8850),
        (2.2000, 48.8800),
        (2.2200, 48.8950),
        (2.1900, 48.8900),
    ];
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (lon, lat) = points[i % points.len()];
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"households": 1 + i % 9, "connection": "adsl", "building": "apartment"}});
        loop {
            let sent = http
                .post(&server_url)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(_) => {
                    seen.lock().unwrap().no_answer += 1;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            *seen.lock().unwrap().statuses.entry(status).or_default() += 1;
            match status {
                200 | 201 => {
                    let answer: Value = response.json().await.unwrap();
                    let id = answer["id"].as_str().unwrap().to_owned();
                    seen.lock().unwrap().acknowledged.insert(key, id);
                    break;
                }
                503 => tokio::time::sleep(Duration::from_millis(150)).await,
                // Anything else is a defect, counted above and reported by the test.
                _ => break,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_civicmap_and_postgres_crash_and_restart_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::new(dir.path());
    let http = reqwest::Client::new();
    server.start();
    ready(&server, &http, Duration::from_secs(120)).await;
    let pool = civicmap::database::pool(server.cluster().connect_options(), 2);
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&pool)
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = server.url("/api/v1/campaigns/fibre-pour-tous/submissions");
    let citizens: Vec<_> = (0..6)
        .map(|n| tokio::spawn(citizen(url.clone(), n, stop.clone(), seen.clone())))
        .collect();
    let load = Duration::from_secs(2);
    tokio::time::sleep(load).await;

    // (a) civicmap is killed, and started again by its supervisor (systemd, here the test).
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start();
    let after_kill = ready(&server, &http, Duration::from_secs(60)).await;
    tokio::time::sleep(load).await;

    // (b) The embedded PostgreSQL is killed; civicmap (which did not start it this time: it
    // found it running) restarts it.
    let postmaster = server.cluster().postmaster().expect("the cluster runs");
    kill(postmaster, Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ready(&server, &http, Duration::from_secs(30)).await;
    let after_postgres_kill = killed.elapsed();
    tokio::time::sleep(load).await;

    // (c) PostgreSQL is stopped cleanly by an operator (`civicmap db stop`).
    let stopped = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(["db", "stop", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ready(&server, &http, Duration::from_secs(30)).await;
    let after_postgres_stop = stopped.elapsed();
    tokio::time::sleep(load).await;

    // (d) civicmap is asked to stop under load while submissions wait in its queue (the
    // writers are held by a lock): it answers every one it accepted, then exits 0.
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE submissions IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let waiting: Vec<_> = (0..10)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let body = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.2066, 48.8924]},
                    "properties": {"households": 1 + i, "connection": "none", "building": "house"}});
                let response = http.post(url).json(&body).send().await?;
                let status = response.status().as_u16();
                let answer: Value = response.json().await?;
                reqwest::Result::Ok((status, answer["id"].as_str().map(str::to_owned)))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let asked = server.ask_to_stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        server.running(),
        "civicmap exited with submissions in its queue"
    );
    hold.commit().await.unwrap();
    let mut drained = Vec::new();
    for request in waiting {
        let (status, id) = request
            .await
            .unwrap()
            .expect("an answer, not a cut connection");
        assert_eq!(
            status, 201,
            "a submission accepted before SIGTERM is stored"
        );
        drained.push(id.unwrap().parse::<uuid::Uuid>().unwrap());
    }
    assert!(
        server.exited().await,
        "exit status after SIGTERM; log:\n{}",
        server.log_tail()
    );
    let drained_in = asked.elapsed();
    server.start();
    ready(&server, &http, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    stop.store(true, Ordering::Relaxed);
    for citizen in citizens {
        tokio::time::timeout(Duration::from_secs(60), citizen)
            .await
            .expect("every submission resolved within 60 s of the end")
            .unwrap();
    }
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();

    // No request got a 500 (or any answer but 201, a replay's 200, or 503 while away).
    let defects: Vec<_> = seen
        .statuses
        .iter()
        .filter(|(status, _)| ![200, 201, 503].contains(*status))
        .collect();
    assert!(
        defects.is_empty(),
        "unexpected answers: {:?}",
        seen.statuses
    );
    // Every acknowledged submission is stored, exactly once.
    let ids: Vec<uuid::Uuid> = seen
        .acknowledged
        .values()
        .map(|i| i.parse().unwrap())
        .collect();
    assert_stored(&pool, &ids, "acknowledged").await;
    assert_stored(&pool, &drained, "drained at SIGTERM").await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        total - before,
        ids.len() as i64 + 10,
        "a retry was stored twice"
    );
    // Every district counter equals its rows.
    assert_counters_match_rows(&pool).await;
    assert!(
        ids.len() > 100,
        "the load was real: {} acknowledged",
        ids.len()
    );
    eprintln!(
        "{} acknowledged, all stored once; answers {:?}, {} without an answer; back after: \
         civicmap kill {after_kill:?}, postgres kill {after_postgres_kill:?}, postgres stop \
         {after_postgres_stop:?}; SIGTERM with 10 queued: exited {drained_in:?} after",
        ids.len(),
        seen.statuses,
        seen.no_answer
    );
    pool.close().await;
    server.ask_to_stop();
    assert!(server.exited().await);
}
