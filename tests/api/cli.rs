//! The `civicmap` binary's one-shot commands, against a real database.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, civicmap, fresh_database, url_of};

#[tokio::test]
async fn tokens_and_district_imports_from_the_command_line() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;

    let created = civicmap(
        &url,
        &["token", "create", "--name", "web team", "--role", "admin"],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("cmk_"));
    let body = json!({"slug": "cli", "title": {"fr": "a", "en": "a"}});
    let response = app
        .client
        .post(app.url("/api/v1/admin/campaigns"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), civicmap::demo::NANTERRE_DISTRICTS).unwrap();
    let path = file.path().to_str().unwrap();
    let imported = civicmap(
        &url,
        &[
            "districts",
            "import",
            "cli",
            path,
            "--name-prop",
            "name",
            "--code-prop",
            "code",
        ],
    );
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        String::from_utf8_lossy(&imported.stdout).starts_with("11 districts imported into `cli`")
    );

    let refused = civicmap(
        &url,
        &["districts", "import", "cli", path, "--code-prop", "insee"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("features[0].properties.insee: is missing or empty (district code)"),
        "{stderr}"
    );

    let missing = civicmap(&url, &["districts", "import", "nope", path]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no campaign named `nope`"));

    // Their households, from a CSV: every bad line named, then the demo's (synthetic) figures.
    let csv = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(csv.path(), "code;households\ncentre;beaucoup\nnowhere;3\n").unwrap();
    let csv_path = csv.path().to_str().unwrap();
    let refused = civicmap(&url, &["districts", "households", "cli", csv_path]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 2: `beaucoup` is not a whole number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3: no district with code `nowhere`"),
        "{stderr}"
    );
    std::fs::write(csv.path(), civicmap::demo::DEMO_HOUSEHOLDS).unwrap();
    let imported = civicmap(&url, &["districts", "households", "cli", csv_path]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&imported.stdout).trim(),
        "households of 11 districts of `cli` imported (45000 in all)"
    );
}

#[tokio::test]
async fn tokens_are_listed_expired_and_revoked_from_the_command_line_and_audited() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;
    let created = civicmap(
        &url,
        &[
            "token",
            "create",
            "--name",
            "night shift",
            "--role",
            "moderator",
        ],
    );
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let id = token.split('_').nth(1).unwrap().to_owned();
    let secret = token.splitn(3, '_').nth(2).unwrap().to_owned();
    let queue = app.url("/api/v1/moderation/campaigns/none/queue");
    let status = |token: String| {
        let client = app.client.clone();
        let queue = queue.clone();
        async move {
            client
                .get(&queue)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(token.clone()).await, StatusCode::NOT_FOUND);

    let listed = civicmap(&url, &["token", "list"]);
    assert!(listed.status.success());
    let listing = String::from_utf8(listed.stdout).unwrap();
    assert!(!listing.contains(&secret), "{listing}");
    let line = listing
        .lines()
        .find(|l| l.ends_with("night shift"))
        .unwrap();
    assert!(line.starts_with(&id), "{line}");
    assert!(
        line.contains("moderator") && line.contains("active"),
        "{line}"
    );

    let expired = civicmap(&url, &["token", "expire", &id, "--now"]);
    assert!(
        expired.status.success(),
        "{}",
        String::from_utf8_lossy(&expired.stderr)
    );
    assert_eq!(status(token.clone()).await, StatusCode::UNAUTHORIZED);
    let renewed = civicmap(&url, &["token", "expire", &id, "--in-days", "30"]);
    assert!(String::from_utf8_lossy(&renewed.stdout).contains("active"));
    assert_eq!(status(token.clone()).await, StatusCode::NOT_FOUND);
    let unsaid = civicmap(&url, &["token", "expire", &id]);
    assert!(String::from_utf8_lossy(&unsaid.stderr).contains("say when"));

    let revoked = civicmap(&url, &["token", "revoke", &id, "--reason", "rota changed"]);
    assert!(String::from_utf8_lossy(&revoked.stdout).contains("revoked"));
    assert_eq!(status(token.clone()).await, StatusCode::UNAUTHORIZED);
    let twice = civicmap(&url, &["token", "revoke", &id]);
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already revoked"));
    let unknown = civicmap(&url, &["token", "revoke", "999999"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no token with id 999999"));

    let actions: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor, reason FROM audit_log WHERE subject = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let expected = [
        ("token.create", None),
        ("token.expire", None),
        ("token.expire", None),
        ("token.revoke", Some("rota changed")),
    ];
    assert_eq!(actions.len(), expected.len(), "{actions:?}");
    for ((action, actor, reason), (want, why)) in actions.iter().zip(expected) {
        assert_eq!(action, want);
        assert_eq!(actor, "command line");
        assert_eq!(reason.as_deref(), why);
    }
}

#[test]
fn a_proxy_header_without_the_proxies_it_comes_from_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(["serve", "--trusted-proxy-header", "x-forwarded-for"])
        .env_remove("CIVICMAP_TRUSTED_PROXIES")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--trusted-proxies"), "{stderr}");
}

#[tokio::test]
async fn the_figures_are_released_from_the_command_line_and_audited() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let app = TestApp::spawn_on(pool).await;
    app.open_campaign("released", crate::helpers::exact()).await;
    for i in 0..3 {
        app.contribute(
            "released",
            2.05 + f64::from(i) * 1e-3,
            48.05,
            crate::helpers::answers(),
        )
        .await;
    }
    let out = civicmap(&url, &["release", "released"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("counted 3 contributions"), "{text}");
    // Counted once: a second release counts nobody.
    let again = civicmap(&url, &["release", "released"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("counted 0 contributions"));
    let entries: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE action = 'figures.release' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries.iter().all(|(actor, _)| actor == "command line"),
        "{entries:?}"
    );
    // Nothing due yet (the week has not ended): the whole-campaign form makes none.
    let due = civicmap(&url, &["release"]);
    assert!(String::from_utf8_lossy(&due.stdout).contains("0 releases made"));
    // A draft releases nothing.
    let draft = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "draft", "title": {"fr": "b", "en": "d"}}),
        )
        .await;
    assert_eq!(draft.status(), StatusCode::CREATED);
    let refused = civicmap(&url, &["release", "draft"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("draft"));
}
