//! The `civicmap` binary's one-shot commands, against a real database.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, fresh_database};

fn civicmap(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

fn url_of(options: &sqlx::postgres::PgConnectOptions) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let mut url = reqwest::Url::parse(&base).unwrap();
    url.set_path(&format!("/{}", options.get_database().unwrap()));
    url.to_string()
}

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
}
