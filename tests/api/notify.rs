//! Notices: a citizen follows a district by e-mail (double opt-in) through a real SMTP server
//! (tests/smtp_sink.py, on Debian's aiosmtpd), and the city's systems receive signed webhooks
//! on a real receiver on loopback. The outbox is tested where it matters: civicmap killed
//! while the SMTP server holds a notice, then restarted, and exactly one copy arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use civicmap::notify::outbox::{NotifyConfig, Workers};
use civicmap::notify::webhooks;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, exact, fresh_database, problem, test_config, url_of};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's python3 (with python3-aiosmtpd), rather than another one first on the PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The SMTP server of a test: tests/smtp_sink.py on a loopback port, saving to a folder.
pub(crate) struct Sink {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Sink {
    /// Starts it; with `hold`, the first message matching that regex is held (see the script).
    pub(crate) async fn start(hold: Option<(&str, u32)>) -> Self {
        Self::start_on(free_port(), hold).await
    }

    /// [`Self::start`] on `port`.
    async fn start_on(port: u16, hold: Option<(&str, u32)>) -> Self {
        Self::spawn(port, hold, &[]).await
    }

    /// A sink speaking TLS (`mode`: `starttls` or `implicit`) with `cert`'s certificate.
    async fn start_tls(cert: &TestCertificate, mode: &str) -> Self {
        let (chain, key) = (cert.chain.to_str().unwrap(), cert.key.to_str().unwrap());
        Self::spawn(
            free_port(),
            None,
            &["--tls-cert", chain, "--tls-key", key, "--tls-mode", mode],
        )
        .await
    }

    async fn spawn(port: u16, hold: Option<(&str, u32)>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python());
        command
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .args(extra);
        if let Some((regex, seconds)) = hold {
            command
                .args(["--hold", regex, "--hold-seconds"])
                .arg(seconds.to_string());
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tests/smtp_sink.py (apt-get install python3-aiosmtpd)");
        let sink = Self { port, dir, child };
        wait_for(Duration::from_secs(20), "the SMTP sink to listen", || {
            sink.dir.path().join("ready").exists()
        })
        .await;
        sink
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages accepted so far, decoded, oldest first.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("json"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// The accepted messages of kind `kind` (`X-Civicmap-Notice`).
    pub(crate) fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["headers"]["x-civicmap-notice"] == kind)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn wait_for(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let since = Instant::now();
    while !done() {
        assert!(since.elapsed() < within, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The link of a message's text that starts with `prefix`.
fn link(message: &Value, prefix: &str) -> String {
    let text = message["text"].as_str().unwrap();
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link to {prefix} in {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// A `civicmap serve` process over a test database, sending e-mail to a sink.
struct Server {
    port: u16,
    database_url: String,
    smtp_url: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let public = format!("http://127.0.0.1:{}", self.port);
        let child = Command::new(env!("CARGO_BIN_EXE_civicmap"))
            .args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--database-url", &self.database_url])
            .args(["--smtp-url", &self.smtp_url])
            .args(["--mail-from", "Ville de Test <carte@ville.test>"])
            .args(["--public-url", &public])
            .args(["--notice-interval-ms", "200", "--notice-retry-seconds", "1"])
            .args([
                "--submissions-per-ip",
                "0",
                "--submissions-per-campaign",
                "0",
            ])
            .env("RUST_LOG", "civicmap=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL, as the OOM killer or a power cut would.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    async fn ready(&self, http: &reqwest::Client) {
        let since = Instant::now();
        loop {
            if http
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "not ready; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The three test districts of tests/api/helpers.rs, as a campaign with `settings`.
async fn open_campaign(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    slug: &str,
    settings: Value,
) {
    let mut body = json!({"slug": slug, "title": {"fr": "Fibre pour tous", "en": "Fibre for all"},
                          "form": crate::helpers::test_form()});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/api/v1/admin/campaigns".to_owned(),
            body,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/admin/campaigns/{slug}/districts"),
            crate::helpers::test_districts(),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/admin/campaigns/{slug}"),
            json!({"status": "open"}),
        ),
    ] {
        let response = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn a_district_passing_half_its_target_sends_one_notice_even_when_civicmap_is_killed_mid_send()
{
    // The SMTP server holds the threshold notice long enough for civicmap to be killed while
    // it waits for the server's answer.
    let sink = Sink::start(Some(("X-Civicmap-Notice: threshold", 6))).await;
    let (pool, options) = fresh_database().await;
    let token = civicmap::auth::create_token(&pool, "notices", civicmap::auth::Role::Admin, None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server {
        port: free_port(),
        database_url: url_of(&options),
        smtp_url: sink.url(),
        log: dir.path().join("server.log"),
        child: None,
    };
    server.start();
    let http = reqwest::Client::new();
    server.ready(&http).await;
    let base = server.url("");
    // k = 1, and a target of 2 in `west`: one contribution is 50 %.
    let mut settings = exact();
    settings["targets"] = json!({"west": 2, "east": 10});
    open_campaign(&http, &base, &token, "suivi", settings).await;

    // Alice follows `west`, and confirms from the message she receives.
    let subscribe = |email: &'static str| {
        http.post(server.url("/api/v1/campaigns/suivi/subscriptions"))
            .json(&json!({"email": email, "district": "west", "lang": "fr"}))
            .send()
    };
    assert_eq!(
        subscribe("alice@example.org").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    wait_for(Duration::from_secs(20), "the confirmation message", || {
        !sink.of_kind("confirm").is_empty()
    })
    .await;
    let confirmation = &sink.of_kind("confirm")[0];
    assert_eq!(confirmation["to"], json!(["alice@example.org"]));
    let confirm = link(
        confirmation,
        &server.url("/api/v1/campaigns/suivi/subscriptions/confirm?token="),
    );
    // Opening the link changes nothing (a mail scanner may open it); its button confirms.
    let page = http.get(&confirm).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<form method=\"post\">")
    );
    let confirmed: bool = sqlx::query_scalar("SELECT confirmed FROM subscriptions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!confirmed, "a GET confirmed the subscription");
    let done = http.post(&confirm).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Abonnement confirmé"));

    // One contribution in `west`: 50 % of its target (and 25 %: one notice, of the highest).
    let receipt = http
        .post(server.url("/api/v1/campaigns/suivi/submissions"))
        .json(&crate::helpers::point(2.05, 48.05, answers()))
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), StatusCode::CREATED);

    // civicmap is killed while the SMTP server holds the notice, before it answered.
    wait_for(
        Duration::from_secs(20),
        "the notice to reach the SMTP server",
        || sink.log().contains("held "),
    )
    .await;
    server.kill();
    wait_for(
        Duration::from_secs(20),
        "the SMTP server to drop the unanswered copy",
        || sink.log().contains("abandoned "),
    )
    .await;
    assert!(sink.of_kind("threshold").is_empty());
    let (attempts, sent): (i32, bool) =
        sqlx::query_as("SELECT attempts, sent_at IS NOT NULL FROM outbox WHERE kind = 'threshold'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (attempts, sent),
        (0, false),
        "the killed send left its row to be sent again"
    );

    // Restarted, civicmap sends it again, with the same Message-ID; the finder, running
    // every 200 ms on the restarted server, announces nothing twice.
    server.start();
    server.ready(&http).await;
    wait_for(
        Duration::from_secs(30),
        "the notice after the restart",
        || !sink.of_kind("threshold").is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notices = sink.of_kind("threshold");
    assert_eq!(notices.len(), 1, "exactly one notice: {notices:#?}");
    let notice = &notices[0];
    let held = sink
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("held ").map(str::to_owned))
        .unwrap();
    assert_eq!(
        notice["headers"]["message-id"], held,
        "the copy sent again is the same message"
    );
    assert_eq!(
        notice["headers"]["subject"],
        "West a atteint 50 % de son objectif"
    );
    assert_eq!(notice["headers"]["content-language"], "fr");
    assert_eq!(
        notice["headers"]["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
    let types = notice["content_types"].as_array().unwrap();
    assert!(types.contains(&json!("multipart/alternative")), "{types:?}");
    assert!(types.contains(&json!("text/plain")) && types.contains(&json!("text/html")));
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("1 contributions pour un objectif de 2")
    );
    assert!(notice["html"].as_str().unwrap().contains("<a href=\""));
    let announced: Vec<(String, i16)> = sqlx::query_as(
        "SELECT district_code, threshold FROM notice_announcements ORDER BY threshold",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        announced,
        [("west".to_owned(), 25), ("west".to_owned(), 50)]
    );

    // The one-click unsubscribe of the headers (RFC 8058), as a mail client sends it.
    let header = notice["headers"]["list-unsubscribe"].as_str().unwrap();
    let unsubscribe = header.trim_start_matches('<').trim_end_matches('>');
    assert_eq!(
        unsubscribe,
        link(
            notice,
            &server.url("/api/v1/campaigns/suivi/subscriptions/unsubscribe?token=")
        )
    );
    let page = http.get(unsubscribe).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "opening the unsubscribe page changes nothing");
    let one_click = http
        .post(unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), StatusCode::OK);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "one click deleted the address");
    // Again: not an error.
    assert_eq!(
        http.post(unsubscribe).send().await.unwrap().status(),
        StatusCode::OK
    );

    // `west` reaches 100 %: Alice, gone, hears nothing.
    let receipt = http
        .post(server.url("/api/v1/campaigns/suivi/submissions"))
        .header("x-forwarded-for", "10.9.9.9")
        .json(&crate::helpers::point(2.06, 48.06, answers()))
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.of_kind("threshold").len(), 1);
}

/// Notice workers without e-mail that look every 100 ms and retry after 100 ms: a test's
/// events go out within a second.
fn quick_workers() -> NotifyConfig {
    NotifyConfig {
        mail: None,
        per_second: 100,
        confirmations_per_second: 100,
        interval: Duration::from_millis(100),
        retry_base: Duration::from_millis(100),
        extra_root: None,
    }
}

/// The notice workers of `app`, sending e-mail to `sink`: at most `per_second` notices and
/// webhooks and `confirmations` confirmations a second.
pub(crate) fn mail_workers(
    app: &TestApp,
    sink: &Sink,
    per_second: u32,
    confirmations: u32,
) -> Workers {
    let mail =
        civicmap::notify::mail::MailConfig::new(&sink.url(), "carte@ville.test", &app.url(""))
            .unwrap();
    civicmap::notify::outbox::start(
        app.db.clone(),
        NotifyConfig {
            mail: Some(mail),
            per_second,
            confirmations_per_second: confirmations,
            ..quick_workers()
        },
    )
}

/// An in-process server that sends e-mail to `sink`, with its notice workers.
async fn app_with_mail(sink: &Sink) -> (TestApp, Workers) {
    app_with_smtp(&sink.url()).await
}

/// An in-process server that sends e-mail to `smtp_url`, with its notice workers.
async fn app_with_smtp(smtp_url: &str) -> (TestApp, Workers) {
    app_with_smtp_trusting(smtp_url, None).await
}

/// [`app_with_smtp`], trusting the certificate authority `ca` (PEM) for the SMTP server.
async fn app_with_smtp_trusting(smtp_url: &str, ca: Option<&Path>) -> (TestApp, Workers) {
    let mut config = test_config();
    config.email_notices = true;
    let app = TestApp::spawn_with(config).await;
    let mut mail =
        civicmap::notify::mail::MailConfig::new(smtp_url, "carte@ville.test", &app.url(""))
            .unwrap();
    if let Some(ca) = ca {
        mail = mail.trusting(std::fs::read(ca).unwrap()).unwrap();
    }
    let workers = civicmap::notify::outbox::start(
        app.db.clone(),
        NotifyConfig {
            mail: Some(mail),
            per_second: 50,
            retry_base: Duration::from_millis(200),
            ..quick_workers()
        },
    );
    (app, workers)
}

async fn follow(app: &TestApp, slug: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/campaigns/{slug}/subscriptions")))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn subscribing_says_the_same_whether_the_address_is_new_waiting_or_confirmed() {
    let sink = Sink::start(None).await;
    let (app, _workers) = app_with_mail(&sink).await;
    app.open_campaign("same", exact()).await;
    let body = json!({"email": "Carol@Example.org", "district": "east", "lang": "en"});
    let first = follow(&app, "same", &body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = first.text().await.unwrap();
    wait_for(Duration::from_secs(20), "the confirmation", || {
        !sink.of_kind("confirm").is_empty()
    })
    .await;
    // Waiting: the same answer, and no second message within the hour (no mail bombing).
    let again = follow(&app, "same", &body).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.text().await.unwrap(), first);
    // Confirmed: the same answer still.
    let message = &sink.of_kind("confirm")[0];
    assert_eq!(message["headers"]["content-language"], "en");
    assert!(
        message["headers"]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Confirm your subscription")
    );
    let confirm = link(
        message,
        &app.url("/api/v1/campaigns/same/subscriptions/confirm?token="),
    );
    assert_eq!(
        app.client.post(&confirm).send().await.unwrap().status(),
        StatusCode::OK
    );
    let confirmed = follow(
        &app,
        "same",
        &json!({"email": "carol@example.org", "district": "east", "lang": "en"}),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::ACCEPTED);
    assert_eq!(confirmed.text().await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(sink.messages().len(), 1, "one confirmation in all");
    let rows: Vec<(String, bool)> = sqlx::query_as("SELECT email, confirmed FROM subscriptions")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, [("carol@example.org".to_owned(), true)]);

    // What is wrong is named; a forged or truncated token opens nothing.
    let refused = problem(
        follow(
            &app,
            "same",
            &json!({"email": "not an address", "district": "nowhere"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        crate::helpers::problem_fields(&refused),
        ["email", "district"]
    );
    let refused = problem(
        follow(&app, "same", &json!({"email": "a@b.fr", "lang": "de"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(refused.to_string().contains("lang"), "{refused}");
    for bad in [&confirm[..confirm.len() - 2], "x", ""] {
        let token = bad.rsplit('=').next().unwrap();
        let url = app.url(&format!(
            "/api/v1/campaigns/same/subscriptions/confirm?token={token}"
        ));
        problem(
            app.client.post(&url).send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            app.client.get(&url).send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    // A token is good in its own campaign only.
    app.open_campaign("other", exact()).await;
    let elsewhere = confirm.replace("/campaigns/same/", "/campaigns/other/");
    problem(
        app.client.post(&elsewhere).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn addresses_are_kept_apart_from_submissions_out_of_exports_and_deleted_at_retention() {
    let sink = Sink::start(None).await;
    let (app, _workers) = app_with_mail(&sink).await;
    let mut settings = exact();
    settings["retention_days"] = json!(0);
    app.open_campaign("apart", settings).await;
    app.contribute("apart", 2.05, 48.05, answers()).await;
    assert_eq!(
        follow(
            &app,
            "apart",
            &json!({"email": "dave@example.org", "district": "west"})
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    // Nothing in a subscription points at a submission or a client, and its time is the hour.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_name = 'subscriptions' ORDER BY ordinal_position",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "id",
            "campaign_id",
            "email",
            "lang",
            "district_code",
            "confirmed",
            "created_hour",
            "confirmation_hour",
            "mailbox"
        ]
    );
    let on_the_hour: bool = sqlx::query_scalar(
        "SELECT bool_and(created_hour = date_trunc('hour', created_hour)) FROM subscriptions",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(on_the_hour);
    // No export holds the address: the raw export, the aggregates, the districts layer.
    for path in [
        "/api/v1/admin/campaigns/apart/submissions.csv",
        "/api/v1/admin/campaigns/apart/submissions.geojson",
    ] {
        let body = app
            .request_as(Some(&app.admin_token), reqwest::Method::GET, path, None)
            .await
            .text()
            .await
            .unwrap();
        assert!(!body.contains("dave@"), "{path}: {body}");
    }
    for path in [
        "/api/v1/campaigns/apart/aggregates.csv",
        "/api/v1/campaigns/apart/districts.geojson",
        "/api/v1/campaigns/apart",
    ] {
        let body = app.get(path).await.text().await.unwrap();
        assert!(!body.contains("dave@"), "{path}: {body}");
    }
    // Closed with a retention of 0 days: the address goes with the exact data.
    let response = app
        .admin_patch(
            "/api/v1/admin/campaigns/apart",
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(civicmap::notify::purge(&app.db).await.unwrap(), 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // A closed campaign takes no new follower.
    problem(
        follow(&app, "apart", &json!({"email": "erin@example.org"})).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn without_an_smtp_server_nobody_can_subscribe_and_subscriptions_are_rate_limited() {
    let app = TestApp::spawn().await;
    app.open_campaign("nomail", exact()).await;
    let refused = problem(
        follow(&app, "nomail", &json!({"email": "f@example.org"})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("--smtp-url"),
        "{refused}"
    );

    let mut config = test_config();
    config.email_notices = true;
    // Subscriptions have a bucket of their own: 4 a minute, 2 at once.
    config.rate_limits = civicmap::safety::limits::RateLimitConfig {
        subscriptions_per_ip_per_minute: 4,
        ..civicmap::safety::limits::RateLimitConfig::off()
    };
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("limited", exact()).await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let response = app
            .client
            .post(app.url("/api/v1/campaigns/limited/subscriptions"))
            .header("x-forwarded-for", "10.77.0.1")
            .json(&json!({"email": format!("g{n}@example.org")}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 429, 429]);
}

/// What a webhook receiver on loopback got: (event id, signature header, body), and whether
/// it accepted it.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>, bool)>>>;

/// A receiver on loopback that refuses the first POST it gets (500), then accepts.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    let accept = !seen.is_empty();
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    seen.push((
                        header(webhooks::EVENT_ID_HEADER),
                        header(webhooks::SIGNATURE_HEADER),
                        body.to_vec(),
                        accept,
                    ));
                    if accept {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

#[tokio::test]
async fn webhooks_receive_each_event_once_signed_from_two_instances_and_the_exact_position_only_when_internal()
 {
    let app = TestApp::spawn().await;
    // Two instances' workers over the same database, as two servers would run them.
    let config = quick_workers();
    let _workers = civicmap::notify::outbox::start(app.db.clone(), config.clone());
    let _other_instance = civicmap::notify::outbox::start(app.db.clone(), config);
    let mut settings = exact();
    settings["targets"] = json!({"west": 2});
    app.open_campaign("hooks", settings).await;
    let (internal_url, internal_got) = receiver().await;
    let (public_url, public_got) = receiver().await;
    let all = json!([
        "submission.created",
        "district.threshold",
        "campaign.closed"
    ]);
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns/hooks/webhooks",
            &json!({"url": internal_url, "events": all, "internal": true,
                    "secret": "internal-secret-0123456789"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["secret"], "internal-secret-0123456789");
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns/hooks/webhooks",
            &json!({"url": public_url, "events": all}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let public_secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        public_secret.len() >= 32,
        "a made secret is long: {public_secret}"
    );
    // Shown once: the list has no secrets.
    let listed: Value = app
        .request_as(
            Some(&app.admin_token),
            reqwest::Method::GET,
            "/api/v1/admin/campaigns/hooks/webhooks",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("secret"), "{listed}");

    // Two contributions in `west` (50 % then 100 %), one in `east`, then the campaign closes.
    let points = [(2.05, 48.05), (2.25, 48.05), (2.06, 48.06)];
    for (lon, lat) in points {
        app.contribute("hooks", lon, lat, answers()).await;
        // Each share passed is seen by the finder before the next contribution.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let closed = app
        .admin_patch(
            "/api/v1/admin/campaigns/hooks",
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(closed.status(), StatusCode::OK);

    // 3 submissions, 2 thresholds, 1 closing: 6 events per endpoint.
    let accepted = |got: &Received| got.lock().unwrap().iter().filter(|r| r.3).count();
    wait_for(
        Duration::from_secs(30),
        "every event at both endpoints",
        || accepted(&internal_got) >= 6 && accepted(&public_got) >= 6,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (got, secret, internal) in [
        (&internal_got, "internal-secret-0123456789", true),
        (&public_got, public_secret.as_str(), false),
    ] {
        let got = got.lock().unwrap().clone();
        // The first POST was refused, and sent again with the same id.
        assert!(!got[0].3);
        assert!(
            got[1..].iter().any(|r| r.0 == got[0].0 && r.3),
            "the refused event was retried"
        );
        let accepted: Vec<_> = got.iter().filter(|r| r.3).collect();
        let ids: BTreeSet<&String> = accepted.iter().map(|r| &r.0).collect();
        assert_eq!(
            ids.len(),
            accepted.len(),
            "an event arrived twice: {accepted:?}"
        );
        assert_eq!(accepted.len(), 6);
        let mut types: BTreeMap<String, usize> = BTreeMap::new();
        for (id, signature, body, _) in &accepted {
            assert!(
                webhooks::verify(secret, signature, body, now, 300),
                "bad signature on {id}"
            );
            assert!(!webhooks::verify(
                "another-secret-0123456789",
                signature,
                body,
                now,
                300
            ));
            let event: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(&event["id"], id.as_str());
            assert_eq!(event["campaign"], "hooks");
            *types
                .entry(event["type"].as_str().unwrap().to_owned())
                .or_default() += 1;
            match event["type"].as_str().unwrap() {
                "submission.created" => {
                    let data = &event["data"];
                    assert!(data["district"]["code"].is_string(), "{event}");
                    if internal {
                        let lon = data["submission"]["lon"].as_f64().unwrap();
                        assert!(points.iter().any(|p| (p.0 - lon).abs() < 1e-9), "{event}");
                    } else {
                        // The district alone: no id, no position.
                        let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
                        assert_eq!(keys, ["district"], "{event}");
                    }
                }
                "district.threshold" => {
                    assert_eq!(event["data"]["district"]["code"], "west");
                    assert!(
                        [50, 100].contains(&event["data"]["threshold"].as_i64().unwrap()),
                        "{event}"
                    );
                }
                "campaign.closed" => assert!(event["data"]["closed_at"].is_string()),
                other => panic!("unknown event {other}"),
            }
        }
        assert_eq!(
            types,
            BTreeMap::from([
                ("campaign.closed".to_owned(), 1),
                ("district.threshold".to_owned(), 2),
                ("submission.created".to_owned(), 3)
            ])
        );
    }
}

#[tokio::test]
async fn webhook_endpoints_are_http_urls_set_by_admins() {
    let app = TestApp::spawn().await;
    app.open_campaign("ssrf", exact()).await;
    for url in [
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/",
        "ftp://x/",
        "http://u:p@x/",
    ] {
        let refused = problem(
            app.admin_post(
                "/api/v1/admin/campaigns/ssrf/webhooks",
                &json!({"url": url, "events": ["campaign.closed"]}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(crate::helpers::problem_fields(&refused), ["url"], "{url}");
    }
    let refused = problem(
        app.admin_post(
            "/api/v1/admin/campaigns/ssrf/webhooks",
            &json!({"url": "https://x.example/", "events": ["nothing.happened"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(refused.to_string().contains("events"), "{refused}");
    let planner = app.staff_token(civicmap::auth::Role::Planner).await;
    let response = app
        .request_as(
            Some(&planner),
            reqwest::Method::POST,
            "/api/v1/admin/campaigns/ssrf/webhooks",
            Some(&json!({"url": "https://x.example/", "events": ["campaign.closed"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let created: Value = app
        .admin_post(
            "/api/v1/admin/campaigns/ssrf/webhooks",
            &json!({"url": "https://x.example/in", "events": ["campaign.closed"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/campaigns/ssrf/webhooks/{id}");
    let deleted = app
        .request_as(Some(&app.admin_token), reqwest::Method::DELETE, &path, None)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            ("webhook.create".to_owned(), "test admin (admin)".to_owned()),
            ("webhook.delete".to_owned(), "test admin (admin)".to_owned())
        ]
    );
    let again = app
        .request_as(Some(&app.admin_token), reqwest::Method::DELETE, &path, None)
        .await;
    problem(again, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn staff_updates_and_the_closing_reach_each_confirmed_address_once_in_its_language() {
    let sink = Sink::start(None).await;
    let (app, _workers) = app_with_mail(&sink).await;
    let mut settings = exact();
    settings["title"] = json!({"fr": "Fibre pour tous", "en": "Fibre for all"});
    app.open_campaign("story", settings).await;
    let campaign_id: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE slug = 'story'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    // Hélène follows two districts (one address), Ian the whole campaign, Jo never confirms.
    for (email, district, lang) in [
        ("helene@example.org", Some("west"), "fr"),
        ("helene@example.org", Some("east"), "fr"),
        ("ian@example.org", None, "en"),
        ("jo@example.org", Some("west"), "en"),
    ] {
        let response = follow(
            &app,
            "story",
            &json!({"email": email, "district": district, "lang": lang}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    // One message per mailbox: Hélène's lists both of her requests, each with its link.
    wait_for(Duration::from_secs(20), "three confirmations", || {
        sink.of_kind("confirm").len() == 3
    })
    .await;
    let prefix = app.url("/api/v1/campaigns/story/subscriptions/confirm?token=");
    for message in sink.of_kind("confirm") {
        if message["to"] != json!(["jo@example.org"]) {
            let text = message["text"].as_str().unwrap();
            let links: Vec<&str> = text
                .split_whitespace()
                .filter(|word| word.starts_with(&prefix))
                .collect();
            let expected = if message["to"] == json!(["helene@example.org"]) {
                2
            } else {
                1
            };
            assert_eq!(links.len(), expected, "{text}");
            for confirm in links {
                assert_eq!(
                    app.client.post(confirm).send().await.unwrap().status(),
                    StatusCode::OK
                );
            }
        }
    }

    // A staff update posted through the story API: its notice is queued with it.
    let story = "/api/v1/admin/campaigns/story/story";
    let entry = json!({"kind": "update", "date": "2026-12-01",
        "title": {"fr": "Réunion publique", "en": "Public meeting"},
        "text": {"fr": "Mardi à 19 h", "en": "Tuesday at 7 pm"},
        "link": "https://ville.example/reunion"});
    let posted = app.admin_post(story, &entry).await;
    assert_eq!(
        posted.status(),
        StatusCode::CREATED,
        "{}",
        posted.text().await.unwrap()
    );
    let posted: Value = posted.json().await.unwrap();
    // Edited while public: no second notice. A draft: none.
    let mut edited = entry.clone();
    edited["text"]["en"] = json!("Tuesday at 7 pm, town hall");
    let path = format!("{story}/{}", posted["id"].as_str().unwrap());
    assert_eq!(app.admin_put(&path, &edited).await.status(), StatusCode::OK);
    let mut draft = entry.clone();
    draft["published"] = json!(false);
    assert_eq!(
        app.admin_post(story, &draft).await.status(),
        StatusCode::CREATED
    );
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE campaign_id = $1 AND kind = 'update'",
    )
    .bind(campaign_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(queued <= 2, "one per confirmed address: {queued}");
    // What the story's code does, called again in one transaction: nothing more; rolled back:
    // nothing sent.
    let update = civicmap::notify::Update {
        id: posted["id"].as_str().unwrap().to_owned(),
        title: civicmap::campaigns::Localized {
            fr: "Réunion publique".into(),
            en: "Public meeting".into(),
        },
        text: civicmap::campaigns::Localized {
            fr: "Mardi à 19 h".into(),
            en: "Tuesday at 7 pm".into(),
        },
        link: Some("https://ville.example/reunion".into()),
    };
    let mut tx = app.db.begin().await.unwrap();
    let dropped = civicmap::notify::Update {
        id: "43".into(),
        ..update.clone()
    };
    civicmap::notify::enqueue_update(&mut tx, campaign_id, &dropped)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let closed = app
        .admin_patch(
            "/api/v1/admin/campaigns/story",
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(closed.status(), StatusCode::OK);
    wait_for(
        Duration::from_secs(20),
        "the updates and the closing",
        || sink.of_kind("update").len() == 2 && sink.of_kind("closed").len() == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sink.of_kind("update").len(),
        2,
        "the update once per confirmed address; its edit and the draft sent nothing"
    );
    let by_address = |kind: &str| -> BTreeMap<String, String> {
        sink.of_kind(kind)
            .into_iter()
            .map(|m| {
                (
                    m["to"][0].as_str().unwrap().to_owned(),
                    m["headers"]["subject"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        by_address("update"),
        BTreeMap::from([
            (
                "helene@example.org".to_owned(),
                "Fibre pour tous : Réunion publique".to_owned()
            ),
            (
                "ian@example.org".to_owned(),
                "Fibre for all: Public meeting".to_owned()
            ),
        ])
    );
    assert_eq!(
        by_address("closed"),
        BTreeMap::from([
            (
                "helene@example.org".to_owned(),
                "La campagne « Fibre pour tous » est close".to_owned()
            ),
            (
                "ian@example.org".to_owned(),
                "The campaign \"Fibre for all\" has closed".to_owned()
            ),
        ])
    );
    assert_eq!(
        sink.messages().len(),
        7,
        "3 confirmations (one per mailbox), 2 updates, 2 closings"
    );
    let update = sink
        .of_kind("update")
        .into_iter()
        .find(|m| m["to"][0] == "ian@example.org")
        .unwrap();
    assert!(update["text"].as_str().unwrap().contains("Tuesday at 7 pm"));
    assert!(
        update["text"]
            .as_str()
            .unwrap()
            .contains("https://ville.example/reunion")
    );
}

#[tokio::test]
async fn a_notice_waits_in_the_outbox_while_the_smtp_server_is_down_and_is_retried_with_backoff() {
    let port = free_port();
    let (app, _workers) = app_with_smtp(&format!("smtp://127.0.0.1:{port}")).await;
    app.open_campaign("down", exact()).await;
    let response = follow(&app, "down", &json!({"email": "kim@example.org"})).await;
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "accepted while the SMTP server is down"
    );
    // Nothing listens: each attempt fails, and the next waits twice as long (200 ms, 400 ms...).
    let since = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "attempts: {seen:?}"
        );
        let row: (i32, Option<String>, f64) = sqlx::query_as(
            "SELECT attempts, last_error, extract(epoch FROM next_attempt_at - now())::float8 FROM outbox",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if row.0 > 0 && seen.last().is_none_or(|(a, _)| *a != row.0) {
            assert!(row.1.is_some(), "a failed attempt says why");
            seen.push((row.0, row.2));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed: Option<String> = sqlx::query_scalar("SELECT failed_at::text FROM outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        failed, None,
        "a refused connection is not a reason to give up"
    );
    // The SMTP server comes up: the message goes, once.
    let sink = Sink::start_on(port, None).await;
    wait_for(
        Duration::from_secs(30),
        "the confirmation after the outage",
        || !sink.of_kind("confirm").is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0, "a sent e-mail leaves the outbox");
    assert!(
        seen.iter().all(|(_, wait)| *wait > 0.0),
        "each retry waits: {seen:?}"
    );
}

/// A certificate authority of the test's own and a certificate it issued for `localhost` and
/// 127.0.0.1, made with the openssl command (installed by scripts/setup.sh).
struct TestCertificate {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
}

impl TestCertificate {
    fn issue() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(
            at("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for args in [
            [
                &["req", "-x509"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=civicmap test CA",
                ],
            ]
            .concat(),
            [
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    "leaf.key",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        ] {
            let output = Command::new("openssl")
                .args(&args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(output.status.success(), "openssl {args:?}: {output:?}");
        }
        Self {
            ca: at("ca.pem"),
            chain: at("leaf.pem"),
            key: at("leaf.key"),
            _dir: dir,
        }
    }
}

#[tokio::test]
async fn notices_go_over_starttls_or_tls_and_never_to_a_server_whose_certificate_is_not_trusted() {
    let cert = TestCertificate::issue();
    for (mode, url) in [
        ("starttls", "smtp://127.0.0.1:{port}?tls=required"),
        ("implicit", "smtps://127.0.0.1:{port}"),
    ] {
        let sink = Sink::start_tls(&cert, mode).await;
        let url = url.replace("{port}", &sink.port.to_string());
        let (app, _workers) = app_with_smtp_trusting(&url, Some(&cert.ca)).await;
        app.open_campaign("tls", exact()).await;
        let response = follow(&app, "tls", &json!({"email": "kim@example.org"})).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        wait_for(Duration::from_secs(20), "the confirmation over TLS", || {
            !sink.of_kind("confirm").is_empty()
        })
        .await;
        let message = &sink.of_kind("confirm")[0];
        let version = message["tls"].as_str().unwrap_or_default();
        assert!(version.starts_with("TLSv1."), "{mode}: came over {message}");
        assert_eq!(message["to"], json!(["kim@example.org"]));
    }

    // The same server, but its authority not trusted (the machine's only): nothing is sent,
    // the outbox says why and keeps the message for a later attempt.
    let sink = Sink::start_tls(&cert, "starttls").await;
    let url = format!("smtp://127.0.0.1:{}?tls=required", sink.port);
    let (app, _workers) = app_with_smtp_trusting(&url, None).await;
    app.open_campaign("untrusted", exact()).await;
    follow(&app, "untrusted", &json!({"email": "kim@example.org"})).await;
    let mut error = None;
    let since = Instant::now();
    while error.is_none() {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "no attempt was made"
        );
        error = sqlx::query_scalar::<_, Option<String>>("SELECT last_error FROM outbox")
            .fetch_one(&app.db)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = error.unwrap().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls"),
        "{error}"
    );
    assert!(
        sink.messages().is_empty(),
        "a message went to an untrusted server"
    );
    assert!(!sink.log().contains("received"), "{}", sink.log());
}

#[tokio::test]
async fn under_pre_moderation_a_submission_is_announced_to_webhooks_when_approved_and_only_once() {
    let app = TestApp::spawn().await;
    let _workers = civicmap::notify::outbox::start(app.db.clone(), quick_workers());
    let mut settings = exact();
    settings["moderation"] = json!("pre");
    app.open_campaign("approved", settings).await;
    let (url, got) = receiver().await;
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns/approved/webhooks",
            &json!({"url": url, "events": ["submission.created"], "internal": true}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let events = |got: &Received| -> Vec<Value> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|r| r.3)
            .map(|r| serde_json::from_slice(&r.2).unwrap())
            .collect()
    };
    let decide = |id: uuid::Uuid, action: &'static str| {
        let app = &app;
        async move {
            let response = app
                .admin_post(
                    &format!("/api/v1/moderation/campaigns/approved/submissions/{id}/decision"),
                    &json!({"action": action, "reason": "test"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{action}");
        }
    };
    let waiting = app.contribute("approved", 2.05, 48.05, answers()).await;
    let rejected = app.contribute("approved", 2.25, 48.05, answers()).await;
    assert_eq!(waiting.status, "pending");
    // Waiting for a moderator: not announced (the receiver's first POST is always refused,
    // and nothing is even tried).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        got.lock().unwrap().is_empty(),
        "a pending submission was announced"
    );

    // Approved: announced, with its id and position to this internal endpoint.
    decide(waiting.id, "approve").await;
    wait_for(
        Duration::from_secs(20),
        "the approved submission's event",
        || !events(&got).is_empty(),
    )
    .await;
    let first = events(&got);
    assert_eq!(first[0]["type"], "submission.created");
    assert_eq!(first[0]["data"]["submission"]["id"], waiting.id.to_string());
    assert_eq!(first[0]["data"]["district"]["code"], "west");

    // Hidden then restored: it was announced already, nothing more. A rejection undone is a
    // first publication: announced.
    decide(waiting.id, "hide").await;
    decide(waiting.id, "restore").await;
    decide(rejected.id, "reject").await;
    decide(rejected.id, "restore").await;
    wait_for(
        Duration::from_secs(20),
        "the restored rejection's event",
        || events(&got).len() >= 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let all = events(&got);
    let ids: Vec<&str> = all
        .iter()
        .map(|e| e["data"]["submission"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [waiting.id.to_string(), rejected.id.to_string()],
        "{all:?}"
    );
}

/// tests/https_receiver.py on a loopback port with `cert`, saving each POST to a folder.
struct HttpsReceiver {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl HttpsReceiver {
    async fn start(cert: &TestCertificate) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/https_receiver.py"
            ))
            .arg(port.to_string())
            .arg(dir.path())
            .arg(&cert.chain)
            .arg(&cert.key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tests/https_receiver.py");
        let receiver = Self { port, dir, child };
        wait_for(
            Duration::from_secs(20),
            "the https receiver to listen",
            || receiver.dir.path().join("ready").exists(),
        )
        .await;
        receiver
    }

    /// The POSTs received so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for HttpsReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn https_webhooks_are_sent_over_tls_to_a_trusted_endpoint_and_never_to_an_untrusted_one() {
    let cert = TestCertificate::issue();
    let receiver = HttpsReceiver::start(&cert).await;
    for trusted in [true, false] {
        let app = TestApp::spawn().await;
        let _workers = civicmap::notify::outbox::start(
            app.db.clone(),
            NotifyConfig {
                retry_base: Duration::from_millis(200),
                extra_root: trusted.then(|| std::fs::read(&cert.ca).unwrap()),
                ..quick_workers()
            },
        );
        let slug = if trusted {
            "https-trusted"
        } else {
            "https-untrusted"
        };
        app.open_campaign(slug, exact()).await;
        let url = format!("https://localhost:{}/{slug}", receiver.port);
        let created = app
            .admin_post(
                &format!("/api/v1/admin/campaigns/{slug}/webhooks"),
                &json!({"url": url, "events": ["submission.created"],
                        "secret": "https-secret-0123456789"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        app.contribute(slug, 2.05, 48.05, answers()).await;
        let mine = |receiver: &HttpsReceiver| -> Vec<Value> {
            receiver
                .received()
                .into_iter()
                .filter(|r| r["path"] == format!("/{slug}"))
                .collect()
        };
        if trusted {
            wait_for(Duration::from_secs(20), "the event over https", || {
                !mine(&receiver).is_empty()
            })
            .await;
            let got = &mine(&receiver)[0];
            assert!(got["tls"].as_str().unwrap().starts_with("TLSv1."), "{got}");
            let body = got["body"].as_str().unwrap();
            let signature = got["headers"][webhooks::SIGNATURE_HEADER].as_str().unwrap();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            assert!(webhooks::verify(
                "https-secret-0123456789",
                signature,
                body.as_bytes(),
                now,
                300
            ));
        } else {
            // Not trusted: the POST is never made; the outbox says why and keeps the event.
            let mut error = None;
            let since = Instant::now();
            while error.is_none() {
                assert!(
                    since.elapsed() < Duration::from_secs(20),
                    "no attempt was made"
                );
                error = sqlx::query_scalar::<_, Option<String>>(
                    "SELECT last_error FROM outbox WHERE kind = 'submission.created'",
                )
                .fetch_one(&app.db)
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let error = error.unwrap().to_lowercase();
            assert!(error.contains("certificate"), "{error}");
            assert!(
                mine(&receiver).is_empty(),
                "an event went to an untrusted endpoint"
            );
        }
    }
}

/// The announcements `detect` recorded for campaign `slug`: (district, share).
async fn announced(app: &TestApp, slug: &str) -> Vec<(String, i16)> {
    sqlx::query_as(
        "SELECT a.district_code, a.threshold FROM notice_announcements a
         JOIN campaigns c ON c.id = a.campaign_id
         WHERE c.slug = $1 AND a.kind = 'threshold' ORDER BY 1, 2",
    )
    .bind(slug)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn notices_fire_from_published_totals_so_probes_reveal_no_withheld_count() {
    let app = TestApp::spawn().await;
    // k = 5; east's target is 5, so its shares are 2, 3, 4 and 5 contributions.
    app.open_campaign(
        "probed",
        json!({"privacy": {"public_precision_m": 50, "min_count": 5},
               "targets": {"east": 5, "middle": 20}}),
    )
    .await;
    for i in 0..12 {
        app.contribute("probed", 2.02 + f64::from(i) * 1e-3, 48.05, answers())
            .await;
    }
    // The victim, alone in the east; then the attacker's four probes there, from one address:
    // five contributions (raw), two contributors: the published total is withheld.
    app.contribute("probed", 2.25, 48.05, answers()).await;
    for _ in 0..4 {
        let response = app
            .submit_from("203.0.113.9", "probed", 2.26, 48.05, answers())
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(app.counts("probed").await["east"], None);
    civicmap::notify::detect(&app.db).await.unwrap();
    assert!(
        announced(&app, "probed").await.is_empty(),
        "a notice said what the districts layer withholds: {:?}",
        announced(&app, "probed").await
    );
    // Middle holds 6 contributions of 6 contributors (past k), but is withheld with east
    // (complementary suppression: the total less the others would give east away)...
    for i in 0..6 {
        app.contribute("probed", 2.12 + f64::from(i) * 1e-3, 48.05, answers())
            .await;
    }
    let counts = app.counts("probed").await;
    assert_eq!(
        (counts["east"], counts["middle"]),
        (None, None),
        "{counts:?}"
    );
    civicmap::notify::detect(&app.db).await.unwrap();
    assert!(announced(&app, "probed").await.is_empty());
    // ...until east has k contributors: both published, both announced at their shares.
    for _ in 0..3 {
        app.contribute("probed", 2.27, 48.05, answers()).await;
    }
    let counts = app.counts("probed").await;
    assert_eq!(
        (counts["east"], counts["middle"]),
        (Some(8), Some(6)),
        "{counts:?}"
    );
    civicmap::notify::detect(&app.db).await.unwrap();
    assert_eq!(
        announced(&app, "probed").await,
        [
            ("east".to_owned(), 25),
            ("east".to_owned(), 50),
            ("east".to_owned(), 75),
            ("east".to_owned(), 100),
            ("middle".to_owned(), 25)
        ]
    );
}

#[tokio::test]
async fn erasing_or_hiding_a_submission_leaves_no_undelivered_event_with_its_position() {
    let app = TestApp::spawn().await;
    app.open_campaign("forget", exact()).await;
    // An internal endpoint (exact positions), never reached: no workers run here, so every
    // event waits in the outbox.
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns/forget/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["submission.created"],
                    "internal": true}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let receipts: Vec<civicmap::submissions::Receipt> = futures::future::join_all(
        (0..3).map(|i| app.contribute("forget", 2.05 + f64::from(i) * 1e-3, 48.05, answers())),
    )
    .await;
    let events_of = |id: uuid::Uuid| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (Value, Option<time::OffsetDateTime>)>(
                "SELECT payload, sent_at FROM outbox WHERE key LIKE '%' || $1 || '%'",
            )
            .bind(id.to_string())
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    for r in &receipts {
        let events = events_of(r.id).await;
        assert_eq!(events.len(), 1);
        assert!(events[0].0["submission"]["lon"].is_number(), "{events:?}");
    }
    // The third was delivered already (the row stays a day, marked sent).
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE key LIKE '%' || $1 || '%'")
        .bind(receipts[2].id.to_string())
        .execute(&app.db)
        .await
        .unwrap();
    // Erased by its submitter; hidden by a moderator; erased after delivery.
    for r in [&receipts[0], &receipts[2]] {
        let response = app
            .client
            .delete(app.url(&format!("/api/v1/campaigns/forget/submissions/{}", r.id)))
            .header("X-Edit-Token", &r.edit_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let hidden = app
        .admin_post(
            &format!(
                "/api/v1/moderation/campaigns/forget/submissions/{}/decision",
                receipts[1].id
            ),
            &json!({"action": "hide", "reason": "spam"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    assert!(
        events_of(receipts[0].id).await.is_empty(),
        "the erased one's event is gone"
    );
    assert!(
        events_of(receipts[1].id).await.is_empty(),
        "the hidden one's event is gone"
    );
    let delivered = events_of(receipts[2].id).await;
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].1.is_some());
    assert!(
        delivered[0].0.get("submission").is_none(),
        "the delivered event kept its position: {delivered:?}"
    );
    // Nothing anywhere in the outbox holds the positions any more.
    let positions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE payload ? 'submission'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(positions, 0);
}

/// Subscribing from `from` (a household's address) to `slug`.
async fn follow_from(app: &TestApp, slug: &str, from: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/campaigns/{slug}/subscriptions")))
        .header("X-Forwarded-For", from)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Waits, if the clock is within a minute and a half of the next hour, until that hour has
/// begun: a test that counts the messages of one hour must not straddle two.
pub(crate) async fn away_from_the_hour(db: &sqlx::PgPool) {
    let left: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM date_trunc('hour', now()) + interval '1 hour' - now())::float8",
    )
    .fetch_one(db)
    .await
    .unwrap();
    if left < 90.0 {
        tokio::time::sleep(Duration::from_secs_f64(left + 2.0)).await;
    }
}

/// The attack: someone subscribes a victim's mailbox, spelled many ways and for every district,
/// from many addresses, to have the city's server mail them again and again; or floods the
/// confirmations' queue so that the notices and webhooks wait; or fills the hour's cap so that
/// nobody else can subscribe, and reads the cap's answers to learn who follows. One message an
/// hour reaches the mailbox, listing every request still waiting; a mailbox has one request per
/// district whatever the spelling; past the hour's cap every request, new or not, needs a proof
/// of work (the same answer for all, and the form stays open); genuine confirmation links are
/// never rate-limited; and the notices do not wait behind the confirmations.
#[tokio::test]
async fn confirmations_cannot_be_aimed_at_a_mailbox_nor_delay_notices() {
    let sink = Sink::start(None).await;
    let mut config = test_config();
    config.email_notices = true;
    config.unconfirmed_per_hour = 200; // 20 per recipient domain
    // One confirmation request a minute per client: only guesses are limited.
    config.rate_limits.per_ip_per_minute = 1;
    config.rate_limits.per_ip_burst = 1;
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("aimed", exact()).await;
    away_from_the_hour(&app.db).await;
    // 1. One mailbox, three spellings, three choices of district: stored, one message.
    for (i, (email, district)) in [
        ("j.o@gmail.com", None),
        ("jo+a@gmail.com", Some("west")),
        ("J.O+b@googlemail.com", Some("middle")),
    ]
    .into_iter()
    .enumerate()
    {
        let response = follow_from(
            &app,
            "aimed",
            &format!("203.0.113.{i}"),
            &json!({"email": email, "district": district, "lang": "en"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let _workers = mail_workers(&app, &sink, 50, 1);
    wait_for(Duration::from_secs(20), "the confirmation", || {
        !sink.of_kind("confirm").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = sink.of_kind("confirm");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["to"], json!(["j.o@gmail.com"]));
    let text = messages[0]["text"].as_str().unwrap();
    let prefix = app.url("/api/v1/campaigns/aimed/subscriptions/confirm?token=");
    let links: Vec<String> = text
        .split_whitespace()
        .filter(|word| word.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    assert_eq!(links.len(), 3, "one link per request: {text}");
    assert_eq!(
        text.matches("Another request for this address").count(),
        2,
        "{text}"
    );
    for district in ["(District West)", "(District Middle)"] {
        assert!(text.contains(district), "{district}: {text}");
    }
    // Genuine links are never refused, whatever the client's allowance (1 a minute here);
    // guesses are.
    for link in &links {
        assert_eq!(
            app.client.post(link).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let guess = format!("{prefix}{}.AAAA", uuid::Uuid::new_v4().simple());
    let statuses = [
        app.client.post(&guess).send().await.unwrap().status(),
        app.client.post(&guess).send().await.unwrap().status(),
    ];
    assert_eq!(
        statuses,
        [StatusCode::NOT_FOUND, StatusCode::TOO_MANY_REQUESTS]
    );

    // 2. Thirty more requests this hour, in other spellings, for confirmed and new districts:
    //    one new subscription (east), queued for the next hour; nothing sent now.
    for i in 0..30 {
        let response = follow_from(
            &app,
            "aimed",
            &format!("198.51.100.{i}"),
            &json!({"email": format!("jo+again{i}@gmail.com"), "district": (["west", "east"][i % 2])}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.of_kind("confirm").len(), 1);
    let waiting: Vec<(String, bool)> = sqlx::query_as(
        "SELECT key, next_attempt_at >= date_trunc('hour', now()) + interval '1 hour'
         FROM outbox WHERE kind = 'confirm'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].1, "{waiting:?}");
    // One subscription per district, whatever the spelling: a victim's own request is never
    // crowded out by spellings.
    let held: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT district_code, email FROM subscriptions WHERE mailbox = 'jo@gmail.com'
         ORDER BY district_code NULLS FIRST",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        held.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        [
            None,
            Some("east".into()),
            Some("middle".into()),
            Some("west".into())
        ]
    );

    // 3. Past the hour's cap for a domain (20 unconfirmed here, of which jo's east), every
    //    request to that domain needs a proof of work: a new address and jo's own alike, so
    //    that the answer says nothing of who follows. With one, it gets in; another domain is
    //    not concerned.
    let mut statuses = Vec::new();
    for i in 0..20 {
        let response = follow_from(
            &app,
            "aimed",
            &format!("192.0.2.{i}"),
            &json!({"email": format!("person{i}@gmail.com")}),
        )
        .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        1,
        "{statuses:?}"
    );
    for body in [
        json!({"email": "person99@gmail.com"}),
        json!({"email": "jo@gmail.com", "district": "west"}),
    ] {
        let refused = problem(
            follow_from(&app, "aimed", "192.0.2.150", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["field"], "proof_of_work");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("to addresses at gmail.com this hour"),
            "{refused}"
        );
    }
    let proof = crate::abuse::proof_for(&app, "aimed", "192.0.2.151").await;
    let proven = app
        .client
        .post(app.url("/api/v1/campaigns/aimed/subscriptions"))
        .header("X-Forwarded-For", "192.0.2.151")
        .header("Civicmap-Proof", proof)
        .json(&json!({"email": "person99@gmail.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(proven.status(), StatusCode::ACCEPTED);
    let other = follow_from(
        &app,
        "aimed",
        "192.0.2.200",
        &json!({"email": "someone@ville.fr"}),
    )
    .await;
    assert_eq!(other.status(), StatusCode::ACCEPTED);

    // 4. Twenty more confirmations queue at one a second; a webhook goes out meanwhile.
    for i in 0..20 {
        follow_from(
            &app,
            "aimed",
            &format!("192.0.2.{}", 100 + i),
            &json!({"email": format!("reader{i}@domain{i}.example")}),
        )
        .await;
    }
    let (url, received) = receiver().await;
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns/aimed/webhooks",
            &json!({"url": url, "events": ["submission.created"]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.contribute("aimed", 2.05, 48.05, answers()).await;
    let started = std::time::Instant::now();
    wait_for(Duration::from_secs(10), "the webhook", || {
        received.lock().unwrap().iter().any(|r| r.3)
    })
    .await;
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE kind = 'confirm' AND next_attempt_at <= now()",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        queued >= 10,
        "the webhook went out after {:?}, with {queued} confirmations still queued",
        started.elapsed()
    );
}
