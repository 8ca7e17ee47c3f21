//! HTTP hardening: the sites allowed to embed and write, connection timeouts, and logs that
//! never hold a secret.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, answers, fresh_database, point, problem, test_config};

const CITY: &str = "https://www.ville.example";
const EVIL: &str = "https://evil.example";

fn settings(origins: Value) -> Value {
    json!({"privacy": {"public_precision_m": 50, "min_count": 1}, "allowed_origins": origins})
}

#[tokio::test]
async fn allowed_origins_are_validated_and_become_the_embed_pages_frame_ancestors() {
    let app = TestApp::spawn().await;
    let response = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "bad", "title": {"fr": "a", "en": "a"}, "allowed_origins": ["https://ok.example", "ville.example/page"]}),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "allowed_origins[1]");

    let campaign = app
        .open_campaign(
            "framed",
            settings(json!([CITY, "HTTPS://Mairie.Example:443/"])),
        )
        .await;
    assert_eq!(
        campaign["allowed_origins"],
        json!([CITY, "https://mairie.example"])
    );
    app.open_campaign("open", settings(json!([]))).await;
    for page in ["/embed/framed", "/embed/framed/edit"] {
        let response = app.get(page).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("frame-ancestors 'self' https://www.ville.example https://mairie.example"),
            "{csp}"
        );
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let response = app.get("/embed/open").await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.ends_with("frame-ancestors *"), "{csp}");
}

#[tokio::test]
async fn only_allowed_sites_may_write_and_every_site_may_read() {
    let app = TestApp::spawn().await;
    app.open_campaign("city", settings(json!([CITY]))).await;
    app.open_campaign("open", settings(json!([]))).await;
    let preflight = |slug: &str, origin: &str, method: &str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/api/v1/campaigns/{slug}/submissions")),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "content-type, idempotency-key, civicmap-fill-ms, civicmap-honeypot, civicmap-proof",
            )
            .send()
    };
    let allowed = preflight("city", CITY, "POST").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], CITY);
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed_headers.contains("civicmap-proof"),
        "{allowed_headers}"
    );
    let refused = preflight("city", EVIL, "POST").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let open = preflight("open", EVIL, "PATCH").await.unwrap();
    assert_eq!(open.headers()["access-control-allow-origin"], EVIL);

    let post = |slug: &str, origin: Option<&str>| {
        let mut request = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{slug}/submissions")))
            .json(&point(2.05, 48.05, answers()));
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send()
    };
    let response = post("city", Some(EVIL)).await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let body = problem(response, StatusCode::FORBIDDEN).await;
    assert!(body["detail"].as_str().unwrap().contains(EVIL), "{body}");
    let response = post("city", Some(CITY)).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["access-control-allow-origin"], CITY);
    // The iframe page is on this server: its own origin may always write.
    let own = format!("http://{}", app.addr);
    assert_eq!(
        post("city", Some(&own)).await.unwrap().status(),
        StatusCode::CREATED
    );
    // Programs send no Origin; an open campaign takes any site.
    assert_eq!(
        post("city", None).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post("open", Some(EVIL)).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(app.counts("city").await["west"], Some(3));

    // Reads stay open to every site.
    for path in [
        "/api/v1/campaigns/city",
        "/api/v1/campaigns/city/districts.geojson",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("Origin", EVIL)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_stays_idle_is_closed() {
    let mut config = test_config();
    config.header_read_timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(config).await;

    // Silent from the start.
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buffer))
        .await
        .expect("the server closes a silent connection");
    assert!(read.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Half a request head, then nothing.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buffer))
        .await
        .expect("the server closes a connection whose head never ends")
        .ok();
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));

    // Idle after a kept-alive request.
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut buffer))
        .await
        .expect("the server closes an idle kept-alive connection")
        .unwrap();
    assert!(String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn a_request_whose_body_never_ends_gets_a_408_problem_naming_why() {
    let app = TestApp::spawn().await;
    app.open_campaign("slow-body", json!({})).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(
        b"POST /api/v1/campaigns/slow-body/submissions HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\"",
    )
    .await
    .unwrap();
    // The server's request timeout is 30 s; the rest of the body never comes.
    let mut buffer = vec![0; 4096];
    let mut read = 0;
    let answered = tokio::time::timeout(Duration::from_secs(45), async {
        loop {
            let n = slow.read(&mut buffer[read..]).await.unwrap();
            read += n;
            if n == 0 || String::from_utf8_lossy(&buffer[..read]).contains("}") {
                break;
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer within 45 s");
    let text = String::from_utf8_lossy(&buffer[..read]).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(
        text.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(text.contains("its body came too slowly"), "{text}");
}

/// Reads the binary's stderr into a shared string, and the port it listens on.
pub fn capture(child: &mut std::process::Child) -> (std::sync::Arc<std::sync::Mutex<String>>, u16) {
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line.find("listening on http://127.0.0.1:") {
                let rest = &line[i + "listening on http://127.0.0.1:".len()..];
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = port_tx.send(port.parse::<u16>().unwrap());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server starts");
    (log, port)
}

#[tokio::test]
async fn no_token_or_edit_token_ever_reaches_the_log() {
    let (pool, options) = fresh_database().await;
    let mut url = reqwest::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&format!("/{}", options.get_database().unwrap()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(["serve", "--listen", "127.0.0.1:0", "--max-connections", "4"])
        .env("DATABASE_URL", url.as_str())
        // Everything civicmap and its HTTP stack can say.
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, port) = capture(&mut child);
    let admin_token =
        civicmap::auth::create_token(&pool, "log test", civicmap::auth::Role::Admin, None)
            .await
            .unwrap();
    let app = TestApp::remote(([127, 0, 0, 1], port).into(), pool, admin_token.clone());
    app.open_campaign("logged", settings(json!([]))).await;
    let receipt = app.contribute("logged", 2.05, 48.05, answers()).await;
    let (id, edit_token) = (receipt.id.to_string(), receipt.edit_token.as_str());
    let own = app.url(&format!("/api/v1/campaigns/logged/submissions/{id}"));
    let read = app
        .client
        .get(&own)
        .header("X-Edit-Token", edit_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let corrected = app
        .client
        .patch(&own)
        .header("X-Edit-Token", edit_token)
        .json(&point(2.15, 48.05, answers()))
        .send()
        .await
        .unwrap();
    assert_eq!(corrected.status(), StatusCode::OK);
    let wrong = app
        .client
        .delete(&own)
        .header("X-Edit-Token", format!("{edit_token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let erased = app
        .client
        .delete(&own)
        .header("X-Edit-Token", edit_token)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    let bad_admin = app
        .client
        .get(app.url("/api/v1/admin/campaigns"))
        .bearer_auth(format!("{admin_token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_admin.status(), StatusCode::UNAUTHORIZED);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let log = log.lock().unwrap().clone();
    // The scenario was logged (so that the check below can fail)...
    assert!(
        log.contains("submission corrected by its submitter"),
        "{log}"
    );
    assert!(log.contains("submission erased by its submitter"));
    assert!(log.contains(&id), "requests are traced with their paths");
    // ...and no secret was.
    assert!(!log.contains(&admin_token), "the admin token is in the log");
    assert!(!log.contains(edit_token), "an edit token is in the log");
    let secret_part = admin_token.splitn(3, '_').nth(2).unwrap();
    assert!(!log.contains(secret_part));
}

/// Ways of writing `/api/v1/campaigns/fibre-pour-tous/{rest}` that a guard reading the raw path
/// could mistake for another campaign or for no campaign at all.
fn spellings(rest: &str) -> Vec<String> {
    let slug = "fibre-pour-tous";
    [
        format!("/api/v1/campaigns/{slug}/{rest}"),
        format!("/api/v1/campaigns/fibre%2Dpour-tous/{rest}"),
        format!("/api/v1/campaigns/fibre%2dpour-tous/{rest}"),
        format!("/api/v1/campaigns/%66%69%62%72%65-pour-tous/{rest}"),
        format!("/api/v1/campaigns/FIBRE-pour-tous/{rest}"),
        format!("/api/v1/campaigns/{slug}/{rest}/"),
        format!("/api/v1/campaigns//{slug}/{rest}"),
        format!("//api/v1/campaigns/{slug}/{rest}"),
        format!("/api/v1/campaigns/{slug}//{rest}"),
        format!("/api/v1/%63ampaigns/{slug}/{rest}"),
        format!("/API/v1/campaigns/{slug}/{rest}"),
        format!("/api/v1/campaigns/{slug}/%73ubmissions"),
        format!("/api/v1/campaigns/{slug}%2F/{rest}"),
    ]
    .into()
}

#[tokio::test]
async fn no_spelling_of_a_path_walks_around_the_origin_guard_or_cors() {
    let app = TestApp::spawn().await;
    app.open_campaign("fibre-pour-tous", settings(json!([CITY])))
        .await;
    for path in spellings("submissions") {
        let response = app
            .client
            .post(app.url(&path))
            .header("Origin", EVIL)
            .json(&point(2.05, 48.05, answers()))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!((403..=405).contains(&status.as_u16()), "{path}: {status}");
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{path}"
        );
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(&path))
            .header("Origin", EVIL)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            !preflight
                .headers()
                .contains_key("access-control-allow-origin"),
            "{path}: the preflight lets {EVIL} in"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a write from {EVIL} was stored");
}

#[tokio::test]
async fn no_spelling_of_a_path_gets_a_fresh_rate_limit() {
    let mut config = test_config();
    config.rate_limits.per_campaign_per_minute = 12; // bursts of 2
    let app = TestApp::spawn_with(config).await;
    app.open_campaign("fibre-pour-tous", settings(json!([CITY])))
        .await;
    let mut created = 0;
    for path in spellings("submissions") {
        for _ in 0..2 {
            let response = app
                .client
                .post(app.url(&path))
                .header("Origin", CITY)
                .json(&point(2.05, 48.05, answers()))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::CREATED {
                created += 1;
            }
        }
    }
    // The campaign's burst of 2, then (the campaign now asking for proofs of work) one from the
    // reserve for this client's first in ten minutes: once, whatever the spelling.
    assert_eq!(
        created, 3,
        "the campaign's burst of 2 and the client's reserve, once, whatever the spelling"
    );
}

#[tokio::test]
async fn no_spelling_of_a_staff_path_reaches_a_handler_without_its_token() {
    let app = TestApp::spawn().await;
    app.open_campaign("fibre-pour-tous", settings(json!([])))
        .await;
    app.submit("fibre-pour-tous", 2.05, 48.05, answers()).await;
    let moderator =
        civicmap::auth::create_token(&app.db, "m", civicmap::auth::Role::Moderator, None)
            .await
            .unwrap();
    let mut paths = Vec::new();
    for rest in ["submissions.csv", "submissions.geojson", "embed"] {
        for path in spellings(rest) {
            paths.push(path.replacen("/api/v1/campaigns", "/api/v1/admin/campaigns", 1));
            paths.push(path.replacen("/api/v1/", "/api/v1/%61dmin/", 1));
        }
    }
    paths.extend(
        [
            "/api/v1/admin/campaigns",
            "/api/v1/admin/campaigns/",
            "//api/v1/admin/campaigns",
            "/api/v1//admin/campaigns",
            "/api/v1/ADMIN/campaigns",
            "/api/v1/admin/tokens",
            "/api/v1/admin/%74okens",
            "/api/v1/admin/audit/",
        ]
        .map(String::from),
    );
    for path in paths {
        for token in [None, Some(moderator.as_str())] {
            let mut request = app.client.get(app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            assert!(status.is_client_error(), "{path} with {token:?}: {status}");
        }
    }
}
