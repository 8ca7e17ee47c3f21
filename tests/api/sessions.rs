//! The console's sign-in: a staff token exchanged for a server-side session in an `HttpOnly`,
//! `SameSite=Strict` cookie; CSRF on every write made with it; expiry, revocation with the
//! token, sign-out; sign-in attempts rate-limited across instances; and nothing of it kept by a
//! cache or leaking to public routes.

use civicmap::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_database, problem, test_config};

const SESSION: &str = "/api/v1/session";

/// A signed-in console: its cookie (`civicmap_session=…`) and CSRF token.
struct Console {
    cookie: String,
    csrf: String,
    set_cookie: String,
    body: Value,
}

fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn sign_in_with(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = app
        .client
        .post(app.url(SESSION))
        .json(&json!({ "token": token }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn sign_in(app: &TestApp, token: &str) -> Console {
    let response = sign_in_with(app, token, &[]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookie = set_cookie(&response).expect("a session cookie");
    let body: Value = response.json().await.unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    Console {
        cookie,
        csrf,
        set_cookie,
        body,
    }
}

impl Console {
    /// `method path` with the session cookie, the headers given and `body` as JSON.
    async fn send(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut request = app
            .client
            .request(method, app.url(path))
            .header("cookie", &self.cookie);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// A write as the console makes it: same origin, with the CSRF token.
    async fn write(&self, app: &TestApp, method: Method, path: &str, body: &Value) -> Response {
        let origin = format!("http://{}", app.addr);
        let headers = [
            ("x-csrf-token", self.csrf.as_str()),
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        self.send(app, method, path, &headers, Some(body)).await
    }

    async fn get(&self, app: &TestApp, path: &str) -> Response {
        self.send(app, Method::GET, path, &[], None).await
    }
}

fn token_id(token: &str) -> i64 {
    token.split('_').nth(1).unwrap().parse().unwrap()
}

async fn sessions_of(app: &TestApp, token_id: i64) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM staff_sessions WHERE token_id = $1")
        .bind(token_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_sets_a_strict_httponly_cookie_and_never_shows_the_token() {
    let app = TestApp::spawn().await;
    let console = sign_in(&app, &app.admin_token).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(console.set_cookie.contains(flag), "{}", console.set_cookie);
    }
    // Plain HTTP: a Secure cookie would never come back.
    assert!(!console.set_cookie.contains("Secure"));
    let secret = console.cookie.strip_prefix("civicmap_session=").unwrap();
    assert_eq!(secret.len(), 43);
    let text = console.body.to_string();
    assert!(
        !text.contains(&app.admin_token),
        "the token is echoed: {text}"
    );
    assert!(
        !text.contains(secret),
        "the session's secret is in the body: {text}"
    );
    assert_eq!(console.body["role"], "admin");
    assert_eq!(console.body["name"], "test admin");
    assert_eq!(console.body["session"], true);
    assert_eq!(console.body["idle_timeout_seconds"], 1800);
    assert_ne!(console.csrf, secret);

    // Only the secret's hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM staff_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, civicmap::auth::hash_secret(secret));

    // The sign-in is in the audit log, without the token.
    let log = app
        .request_as(
            Some(&app.admin_token),
            Method::GET,
            "/api/v1/admin/audit",
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(log.contains("session.create"));
    assert!(!log.contains(&app.admin_token) && !log.contains(secret));

    // Over HTTPS, as the trusted proxy says: Secure.
    let https = sign_in_with(&app, &app.admin_token, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(https.status(), StatusCode::CREATED);
    assert_eq!(https.headers()["cache-control"], "private, no-store");
    assert!(set_cookie(&https).unwrap().contains("; Secure"));

    // A peer that is no trusted proxy cannot say so: not Secure (and not believed).
    let direct = TestApp::spawn_with(civicmap::http::ServerConfig {
        client_ip: Default::default(),
        ..test_config()
    })
    .await;
    let claimed = sign_in_with(
        &direct,
        &direct.admin_token,
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(claimed.status(), StatusCode::CREATED);
    assert!(!set_cookie(&claimed).unwrap().contains("Secure"));
}

#[tokio::test]
async fn bad_sign_ins_are_refused_without_a_cookie_or_an_echo() {
    let app = TestApp::spawn().await;
    let wrong = format!("cmk_{}_{}", token_id(&app.admin_token), "x".repeat(43));
    for (token, words) in [
        (wrong.as_str(), "not valid"),
        ("cmk_999999_nothing", "not valid"),
        ("hello", "not valid"),
        ("", "not valid"),
    ] {
        let response = sign_in_with(&app, token, &[]).await;
        assert!(set_cookie(&response).is_none(), "{token}");
        let refusal = problem(response, StatusCode::UNAUTHORIZED).await;
        let detail = refusal["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{detail}");
        assert!(token.len() < 6 || !refusal.to_string().contains(token));
    }
    // Revoked and expired tokens say so.
    let revoked = app.staff_token(Role::Moderator).await;
    let response = app
        .admin_post(
            &format!("/api/v1/admin/tokens/{}/revoke", token_id(&revoked)),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let refused = problem(
        sign_in_with(&app, &revoked, &[]).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("revoked"));

    // The token in the URL or in a header is not how one signs in; nor a body with more.
    let response = app
        .client
        .post(app.url(&format!("{SESSION}?token={}", app.admin_token)))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    assert!(set_cookie(&response).is_none());
    let response = app
        .client
        .post(app.url(SESSION))
        .json(&json!({"token": app.admin_token, "remember": true}))
        .send()
        .await
        .unwrap();
    let refusal = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(!refusal.to_string().contains(&app.admin_token));

    // From another site: refused before the token is even looked at (login CSRF).
    for headers in [
        [
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        [("origin", "null"), ("sec-fetch-site", "cross-site")],
    ] {
        let response = sign_in_with(&app, &app.admin_token, &headers).await;
        assert!(set_cookie(&response).is_none());
        problem(response, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(sessions_of(&app, token_id(&app.admin_token)).await, 0);
}

#[tokio::test]
async fn the_session_reads_freely_and_writes_only_with_its_csrf_token_from_its_origin() {
    let app = TestApp::spawn().await;
    let console = sign_in(&app, &app.admin_token).await;

    // Reads need the cookie alone.
    let response = console.get(&app, "/api/v1/admin/campaigns").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let me: Value = console.get(&app, SESSION).await.json().await.unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["csrf_token"], console.csrf.as_str());

    let campaign = json!({"slug": "csrf", "title": {"fr": "Essai", "en": "Test"},
                          "form": crate::helpers::test_form()});
    let path = "/api/v1/admin/campaigns";
    let origin = format!("http://{}", app.addr);
    let refused = [
        ("no CSRF header", vec![("origin", origin.as_str())]),
        ("a wrong CSRF token", vec![("x-csrf-token", "0000")]),
        (
            "another session's CSRF token",
            vec![(
                "x-csrf-token",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )],
        ),
        (
            "another origin",
            vec![
                ("x-csrf-token", console.csrf.as_str()),
                ("origin", "https://evil.example"),
            ],
        ),
        (
            "another site",
            vec![
                ("x-csrf-token", console.csrf.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        (
            "a sibling site",
            vec![
                ("x-csrf-token", console.csrf.as_str()),
                ("sec-fetch-site", "same-site"),
            ],
        ),
    ];
    for (what, headers) in refused {
        let response = console
            .send(&app, Method::POST, path, &headers, Some(&campaign))
            .await;
        let refusal = problem(response, StatusCode::FORBIDDEN).await;
        let detail = refusal["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("CSRF") || detail.contains("another"),
            "{what}: {detail}"
        );
    }
    let none: Option<i64> = sqlx::query_scalar("SELECT id FROM campaigns WHERE slug = 'csrf'")
        .fetch_optional(&app.db)
        .await
        .unwrap();
    assert_eq!(none, None, "a refused write wrote");

    // As the console makes it: accepted, and audited as the token's holder.
    let response = console.write(&app, Method::POST, path, &campaign).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = console
        .write(
            &app,
            Method::POST,
            "/api/v1/admin/tokens",
            &json!({"name": "via console", "role": "planner"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'token.create' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(actor.contains("test admin"), "{actor}");

    // Bearer tokens work as before, without CSRF: API clients are unchanged.
    let response = app
        .admin_patch(
            "/api/v1/admin/campaigns/csrf",
            &json!({"title": {"fr": "B", "en": "B"}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = app
        .request_as(Some(&app.admin_token), Method::GET, SESSION, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["session"], false);
    assert_eq!(me["csrf_token"], Value::Null);

    // A session has its token's role, no more: the route table decides.
    let moderator = sign_in(&app, &app.staff_token(Role::Moderator).await).await;
    assert_eq!(moderator.body["role"], "moderator");
    let response = moderator.get(&app, "/api/v1/admin/tokens").await;
    let refusal = problem(response, StatusCode::FORBIDDEN).await;
    assert!(refusal["detail"].as_str().unwrap().contains("moderator"));
    let response = moderator
        .write(
            &app,
            Method::POST,
            "/api/v1/admin/tokens",
            &json!({"name": "x", "role": "admin"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // And one session's CSRF token is worth nothing with another's cookie.
    let response = moderator
        .send(
            &app,
            Method::POST,
            path,
            &[("x-csrf-token", console.csrf.as_str())],
            Some(&campaign),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_expire_when_idle_or_old_and_die_with_their_token() {
    let app = TestApp::spawn().await;
    app.open_campaign("exp", json!({})).await;
    let moderator_token = app.staff_token(Role::Moderator).await;
    let console = sign_in(&app, &moderator_token).await;
    assert_eq!(
        console
            .get(&app, "/api/v1/moderation/campaigns/exp/queue")
            .await
            .status(),
        StatusCode::OK
    );

    // Idle for longer than 30 minutes: over, and deleted.
    sqlx::query("UPDATE staff_sessions SET last_seen_at = now() - interval '31 minutes'")
        .execute(&app.db)
        .await
        .unwrap();
    let over = problem(
        console
            .get(&app, "/api/v1/moderation/campaigns/exp/queue")
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(over["detail"].as_str().unwrap().contains("expired"));
    assert_eq!(sessions_of(&app, token_id(&moderator_token)).await, 0);

    // Used, but past its absolute lifetime: over.
    let console = sign_in(&app, &moderator_token).await;
    sqlx::query("UPDATE staff_sessions SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    let over = problem(console.get(&app, SESSION).await, StatusCode::UNAUTHORIZED).await;
    assert!(over["detail"].as_str().unwrap().contains("expired"));

    // A session never outlives its token: its expiry is the token's when sooner...
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let id = token_id(&moderator_token);
    let response = app
        .admin_patch(
            &format!("/api/v1/admin/tokens/{id}"),
            &json!({"expires_at": soon}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let console = sign_in(&app, &moderator_token).await;
    let ends = time::OffsetDateTime::parse(
        console.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(ends <= time::OffsetDateTime::now_utc() + time::Duration::hours(1));

    // ...it ends when the token is expired...
    let response = app
        .admin_patch(
            &format!("/api/v1/admin/tokens/{id}"),
            &json!({"expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let over = problem(console.get(&app, SESSION).await, StatusCode::UNAUTHORIZED).await;
    assert!(over["detail"].as_str().unwrap().contains("expired"));

    // ...and when it is revoked: every session of the token, at once.
    let planner = app.staff_token(Role::Planner).await;
    let (a, b) = (sign_in(&app, &planner).await, sign_in(&app, &planner).await);
    assert_eq!(sessions_of(&app, token_id(&planner)).await, 2);
    let response = app
        .admin_post(
            &format!("/api/v1/admin/tokens/{}/revoke", token_id(&planner)),
            &json!({"reason": "left the team"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sessions_of(&app, token_id(&planner)).await, 0);
    for console in [a, b] {
        problem(console.get(&app, SESSION).await, StatusCode::UNAUTHORIZED).await;
    }
    let log: Value = app
        .request_as(
            Some(&app.admin_token),
            Method::GET,
            "/api/v1/admin/audit?action=token.revoke",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(log.to_string().contains("\"sessions_ended\":2"), "{log}");
}

#[tokio::test]
async fn sign_out_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let console = sign_in(&app, &app.admin_token).await;
    // Signing out is a write: not without the CSRF token (a page elsewhere cannot do it).
    let response = console.send(&app, Method::DELETE, SESSION, &[], None).await;
    problem(response, StatusCode::FORBIDDEN).await;
    assert_eq!(console.get(&app, SESSION).await.status(), StatusCode::OK);

    let response = console
        .write(&app, Method::DELETE, SESSION, &json!(null))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(&response).unwrap();
    assert!(cleared.starts_with("civicmap_session=;") && cleared.contains("Max-Age=0"));
    let gone = problem(console.get(&app, SESSION).await, StatusCode::UNAUTHORIZED).await;
    assert!(gone["detail"].as_str().unwrap().contains("sign in again"));
    assert_eq!(sessions_of(&app, token_id(&app.admin_token)).await, 0);

    // A bearer token has no session to end.
    let response = app
        .request_as(Some(&app.admin_token), Method::DELETE, SESSION, None)
        .await;
    problem(response, StatusCode::BAD_REQUEST).await;
    // A made-up cookie is nobody.
    let response = app
        .client
        .get(app.url(SESSION))
        .header("cookie", "civicmap_session=made-up")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_client_across_instances() {
    let (db, _) = fresh_database().await;
    let config = civicmap::http::ServerConfig {
        sign_ins_per_minute: 4,
        ..test_config()
    };
    let a = TestApp::spawn_on_with(db.clone(), config.clone()).await;
    let b = TestApp::spawn_on_with(db, config).await;
    let from = [("x-forwarded-for", "203.0.113.7")];
    // A burst of two (half the rate), shared by both instances.
    assert_eq!(
        sign_in_with(&a, "cmk_1_guess", &from).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_with(&b, "cmk_1_guess", &from).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for app in [&a, &b] {
        // Even the right token waits: the limit is on attempts, whatever they hold.
        let response = sign_in_with(app, &app.admin_token, &from).await;
        assert!(set_cookie(&response).is_none());
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=15).contains(&retry), "{retry}");
        let refusal = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        assert!(refusal["detail"].as_str().unwrap().contains("sign-in"));
    }
    // Another client is not held up.
    let response = sign_in_with(&a, &a.admin_token, &[("x-forwarded-for", "203.0.113.8")]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_console_page_and_public_routes_are_kept_by_nobody_and_set_no_cookie() {
    let app = TestApp::spawn().await;
    app.open_campaign("pub", json!({})).await;
    let console = sign_in(&app, &app.admin_token).await;

    let page = app.get("/admin").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "private, no-store");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("http"), "no third party: {csp}");
    assert!(set_cookie(&page).is_none());

    for path in [
        "/",
        "/admin",
        "/api/v1/campaigns/pub",
        "/api/v1/campaigns/pub/districts.geojson",
        "/embed/pub",
    ] {
        let anonymous = app.get(path).await;
        assert_eq!(anonymous.status(), StatusCode::OK, "{path}");
        assert!(set_cookie(&anonymous).is_none(), "{path}");
        // With the session cookie (a staff member browsing): kept by nobody.
        let with_cookie = console.get(&app, path).await;
        assert_eq!(with_cookie.status(), StatusCode::OK, "{path}");
        assert!(set_cookie(&with_cookie).is_none(), "{path}");
        assert_eq!(
            with_cookie.headers()["cache-control"],
            "private, no-store",
            "{path}"
        );
    }
    // The cookie alone does not turn a public figure into a staff one; the console asking
    // with its CSRF token does; a wrong CSRF token is refused.
    let public = app.get("/api/v1/campaigns/pub/aggregates.csv").await;
    let public = public.text().await.unwrap();
    let cookie_only = console
        .get(&app, "/api/v1/campaigns/pub/aggregates.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(cookie_only, public);
    let as_console = console
        .send(
            &app,
            Method::GET,
            "/api/v1/campaigns/pub/aggregates.csv",
            &[("x-csrf-token", console.csrf.as_str())],
            None,
        )
        .await;
    assert_eq!(as_console.status(), StatusCode::OK);
    let wrong = console
        .send(
            &app,
            Method::GET,
            "/api/v1/campaigns/pub/aggregates.csv",
            &[("x-csrf-token", "wrong")],
            None,
        )
        .await;
    problem(wrong, StatusCode::FORBIDDEN).await;
}
