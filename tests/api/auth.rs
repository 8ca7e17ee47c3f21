//! Access control: the route table (derived from the routes' declarations) is walked route by
//! route with every kind of bad token, the served OpenAPI document is checked against it, and
//! tokens are issued, listed, expired and revoked.

use std::path::Path;
use std::sync::Arc;

use civicmap::auth::Role;
use civicmap::http::routes::{self, Access, AccessTable};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem};

/// Every route of the server with its access, as `civicmap::http::app` declares them.
fn route_table() -> AccessTable {
    civicmap::http::route_table(Path::new("widget"))
}

/// A concrete path for a route pattern: parameters replaced by plausible values.
fn concrete(pattern: &str, token_id: i64) -> String {
    pattern
        .split('/')
        .map(|segment| match segment {
            "{slug}" | "{campaign}" => "auth".to_owned(),
            "{tilejson}" => "auth.json".to_owned(),
            "{z}" | "{x}" => "0".to_owned(),
            "{y}" => "0.mvt".to_owned(),
            "{fontstack}" => "Noto Sans Regular".to_owned(),
            "{range}" => "0-255.pbf".to_owned(),
            "{id}" if pattern.contains("/tokens/") => token_id.to_string(),
            "{id}" => "0192f0c4-7d3e-7a51-9c1d-3b0e6f6a8d21".to_owned(),
            s if s.starts_with("{*") => "civicmap.js".to_owned(),
            s if s.starts_with('{') => panic!("no sample value for {s} in {pattern}: add one here"),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(route: &routes::Route) -> Method {
    Method::from_bytes(route.method.as_str().as_bytes()).unwrap()
}

#[tokio::test]
async fn every_protected_route_refuses_missing_malformed_wrong_revoked_expired_and_low_role_tokens()
{
    let app = TestApp::spawn().await;
    app.open_campaign("auth", json!({})).await;
    let tokens = [
        (Role::Admin, app.admin_token.clone()),
        (Role::Moderator, app.staff_token(Role::Moderator).await),
        (Role::Planner, app.staff_token(Role::Planner).await),
    ];
    let revoked = app.staff_token(Role::Admin).await;
    let revoked_id: i64 = revoked.split('_').nth(1).unwrap().parse().unwrap();
    civicmap::auth::tokens::revoke(&app.db, civicmap::audit::Actor::Cli, revoked_id, None)
        .await
        .unwrap();
    let expired = app.staff_token(Role::Admin).await;
    let expired_id: i64 = expired.split('_').nth(1).unwrap().parse().unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expired_id)
        .execute(&app.db)
        .await
        .unwrap();
    let wrong_secret = format!("cmk_{revoked_id}_{}", "A".repeat(43));

    let mut protected = 0;
    for route in &route_table() {
        let Access::Staff(allowed) = route.access else {
            continue;
        };
        protected += 1;
        let path = concrete(&route.path, expired_id);
        let what = format!("{} {path}", route.method);
        let send = |auth: Option<String>| {
            let mut request = app.client.request(method(route), app.url(&path));
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            request.send()
        };
        let refusals = [
            (None, "needs an `Authorization: Bearer <token>` header"),
            (Some("Bearer".to_owned()), "must be `Bearer <token>`"),
            (
                Some(format!("Basic {}", app.admin_token)),
                "must be `Bearer <token>`",
            ),
            (Some("Bearer not-a-token".to_owned()), "is not valid"),
            (Some("Bearer cmk_x_y".to_owned()), "is not valid"),
            (Some(format!("Bearer {wrong_secret}")), "is not valid"),
            (Some(format!("Bearer {revoked}")), "has been revoked"),
            (Some(format!("Bearer {expired}")), "has expired"),
        ];
        for (auth, detail) in refusals {
            let refused =
                problem(send(auth.clone()).await.unwrap(), StatusCode::UNAUTHORIZED).await;
            assert!(
                refused["detail"].as_str().unwrap().contains(detail),
                "{what} with {auth:?}: {refused}"
            );
        }
        for (role, token) in &tokens {
            let response = send(Some(format!("Bearer {token}"))).await.unwrap();
            if allowed.contains(role) {
                // Let through to the handler (which may still refuse an empty body).
                let status = response.status();
                let body = response.text().await.unwrap();
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{what} as {role:?}: {status} {body}"
                );
                assert!(
                    !body.contains("no route for"),
                    "{what} is not routed: {body}"
                );
            } else {
                let refused = problem(response, StatusCode::FORBIDDEN).await;
                assert!(
                    refused["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("this token has the {} role", role.as_str())),
                    "{what} as {role:?}: {refused}"
                );
            }
        }
    }
    assert!(protected >= 14, "the table lost its protected routes");
}

#[tokio::test]
async fn public_routes_in_the_table_are_open_to_everyone() {
    let app = TestApp::spawn().await;
    app.open_campaign("auth", json!({})).await;
    for route in route_table()
        .routes()
        .iter()
        .filter(|r| !matches!(r.access, Access::Staff(_)))
    {
        let path = concrete(&route.path, 0);
        let mut request = app.client.request(method(route), app.url(&path));
        if route.access == Access::EditToken {
            // Not staff: the handler itself checks the submitter's token (404 for this id).
            request = request.header("X-Edit-Token", "not-the-token");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{} {path}: {status} {body}",
            route.method
        );
    }
}

#[tokio::test]
async fn every_documented_route_is_declared_in_the_route_table_and_every_protected_one_documented()
{
    let app = TestApp::spawn().await;
    let table = route_table();
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let declared = table.routes().iter().find(|r| {
                r.method.as_str() == method && r.documented.as_deref() == Some(path.as_str())
            });
            match declared {
                None => missing.push(format!("{method} {path}")),
                Some(route) => {
                    assert!(
                        routes::pattern_matches(&route.path, path),
                        "{method} {path} is routed at {}, which does not match it",
                        route.path
                    );
                    let staff_only = path.starts_with("/api/v1/admin/")
                        || path.starts_with("/api/v1/moderation/");
                    assert!(
                        !staff_only || matches!(route.access, Access::Staff(_)),
                        "{method} {path} is documented under a staff prefix but declared {:?}",
                        route.access
                    );
                    let documented_secure =
                        operations[method.to_lowercase()].get("security").is_some();
                    assert_eq!(
                        documented_secure,
                        matches!(route.access, Access::Staff(_)),
                        "{method} {path}: the OpenAPI security and the route table disagree"
                    );
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented routes missing from the route table: {missing:?}"
    );
    for route in &table {
        let documented = route.documented.as_ref().is_some_and(|path| {
            doc["paths"][path]
                .get(route.method.as_str().to_lowercase())
                .is_some()
        });
        assert!(
            documented || route.documented.is_none(),
            "{} {} is declared documented ({:?}) but not in the OpenAPI document",
            route.method,
            route.path,
            route.documented
        );
        assert!(
            documented || !matches!(route.access, Access::Staff(_)),
            "{} {} is protected but not in the OpenAPI document",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn a_route_missing_from_the_table_is_refused_whatever_the_token() {
    let app = TestApp::spawn().await;
    let state =
        civicmap::http::AppState::new(app.db.clone(), civicmap::http::ServerConfig::new("widget"));
    // Added to the router without a declaration: the server's whole table does not know them.
    let router = axum::Router::new()
        .route(
            "/api/v1/admin/forgotten",
            axum::routing::get(|| async { "secret" }),
        )
        .route(
            "/api/v1/campaigns/{slug}/forgotten",
            axum::routing::get(|| async { "secret" }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), Arc::new(route_table())),
            routes::enforce,
        ))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    for path in ["/api/v1/admin/forgotten", "/api/v1/campaigns/x/forgotten"] {
        let response = app
            .client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        let refused = problem(response, StatusCode::FORBIDDEN).await;
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("has no declared access"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn admins_issue_list_expire_and_revoke_tokens_and_every_change_is_audited() {
    let app = TestApp::spawn().await;
    let created = app
        .admin_post(
            "/api/v1/admin/tokens",
            &json!({"name": "moderation desk", "role": "moderator"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert!(token.starts_with(&format!("cmk_{id}_")));
    assert_eq!(created["role"], "moderator");
    assert_eq!(created["expires_at"], Value::Null);
    let secret = token.splitn(3, '_').nth(2).unwrap();

    // The token works, and using it is noted.
    let queue = app
        .request_as(Some(&token), Method::GET, "/api/v1/admin/tokens", None)
        .await;
    problem(queue, StatusCode::FORBIDDEN).await;
    let listing = app.get_as_admin("/api/v1/admin/tokens").await;
    assert!(!listing.contains(secret), "a listing never shows a secret");
    let listed: Vec<Value> = serde_json::from_str(&listing).unwrap();
    let entry = listed.iter().find(|t| t["id"] == id).unwrap();
    assert_eq!(entry["name"], "moderation desk");
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert!(entry.get("token").is_none() && entry.get("secret_hash").is_none());

    // Expire it: refused at once; clear the expiry: accepted again.
    let path = format!("/api/v1/admin/tokens/{id}");
    let past = app
        .admin_patch(&path, &json!({"expires_at": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(past.status(), StatusCode::OK);
    let moderation_queue = "/api/v1/moderation/campaigns/none/queue";
    let refused = app
        .request_as(Some(&token), Method::GET, moderation_queue, None)
        .await;
    assert!(
        problem(refused, StatusCode::UNAUTHORIZED).await["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let cleared = app.admin_patch(&path, &json!({"expires_at": null})).await;
    assert_eq!(cleared.status(), StatusCode::OK);
    let accepted = app
        .request_as(Some(&token), Method::GET, moderation_queue, None)
        .await;
    assert_eq!(
        problem(accepted, StatusCode::NOT_FOUND).await["detail"],
        "no campaign named `none`"
    );

    // Revoke it: refused for good.
    let revoked = app
        .admin_post(
            &format!("{path}/revoke"),
            &json!({"reason": "left the team"}),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked: Value = revoked.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());
    let refused = app
        .request_as(Some(&token), Method::GET, moderation_queue, None)
        .await;
    assert!(
        problem(refused, StatusCode::UNAUTHORIZED).await["detail"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let again = app.admin_post(&format!("{path}/revoke"), &json!({})).await;
    assert!(
        problem(again, StatusCode::CONFLICT).await["detail"]
            .as_str()
            .unwrap()
            .contains("already revoked")
    );
    let no_expiry_for_revoked = app.admin_patch(&path, &json!({"expires_at": null})).await;
    problem(no_expiry_for_revoked, StatusCode::CONFLICT).await;

    // Bad input names its field; unknown tokens are 404.
    for (body, field) in [
        (json!({"name": "", "role": "admin"}), "name"),
        (json!({"name": "x", "role": "owner"}), "role"),
        (
            json!({"name": "x", "role": "planner", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "role": "planner", "secret": "mine"}),
            "secret",
        ),
    ] {
        let refused = app.admin_post("/api/v1/admin/tokens", &body).await;
        let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            refused["field"].as_str().unwrap().starts_with(field),
            "{body}: {refused}"
        );
    }
    problem(
        app.admin_patch("/api/v1/admin/tokens/999999", &json!({"expires_at": null}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.admin_patch("/api/v1/admin/tokens/abc", &json!({"expires_at": null}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.admin_patch(&path, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // The audit log has each change, with who did it.
    let log: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/audit?action=token.revoke")
            .await,
    )
    .unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["subject"], id.to_string());
    assert_eq!(entries[0]["reason"], "left the team");
    assert_eq!(entries[0]["actor"], "test admin (admin)");
    let all: Value =
        serde_json::from_str(&app.get_as_admin("/api/v1/admin/audit?limit=1000").await).unwrap();
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"].as_str() == Some(id.to_string().as_str()))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.revoke",
            "token.expire",
            "token.expire",
            "token.create"
        ]
    );
}

#[tokio::test]
async fn the_audit_log_is_paged_filtered_and_checks_its_parameters() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.admin_post(
            "/api/v1/admin/tokens",
            &json!({"name": format!("t{i}"), "role": "planner"}),
        )
        .await;
    }
    let first: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/audit?action=token.create&limit=2")
            .await,
    )
    .unwrap();
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let before = first["next_before"].as_i64().unwrap();
    let second: Value = serde_json::from_str(
        &app.get_as_admin(&format!(
            "/api/v1/admin/audit?action=token.create&limit=2&before={before}"
        ))
        .await,
    )
    .unwrap();
    let ids: Vec<i64> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["entries"].as_array().unwrap())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    for (query, status) in [
        ("limit=0", StatusCode::BAD_REQUEST),
        ("limit=1001", StatusCode::BAD_REQUEST),
        ("limit=many", StatusCode::BAD_REQUEST),
        ("before=x", StatusCode::BAD_REQUEST),
        ("colour=red", StatusCode::BAD_REQUEST),
        ("campaign=nope", StatusCode::NOT_FOUND),
    ] {
        let response = app
            .request_as(
                Some(&app.admin_token),
                Method::GET,
                &format!("/api/v1/admin/audit?{query}"),
                None,
            )
            .await;
        problem(response, status).await;
    }
}

impl TestApp {
    /// The body of an admin GET that must succeed.
    pub async fn get_as_admin(&self, path: &str) -> String {
        let response = self
            .request_as(Some(&self.admin_token), Method::GET, path, None)
            .await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}
