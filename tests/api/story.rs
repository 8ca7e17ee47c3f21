//! The campaign's story: staff post, edit and delete milestones and updates (audited); the
//! public reads the published ones, as JSON and as an Atom feed, fresh after every write and on
//! every instance.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, problem_fields};
use civicmap::auth::Role;

fn entry(date: &str, title: &str, published: bool) -> Value {
    json!({
        "kind": "milestone", "date": date,
        "title": {"fr": format!("{title} (fr)"), "en": title},
        "text": {"fr": "Le conseil a voté.\n\nDeuxième paragraphe.", "en": "The council voted.\n\nSecond paragraph."},
        "link": "https://ville.example/deliberation?id=1&x=2",
        "published": published,
    })
}

async fn public_story(app: &TestApp, slug: &str) -> Value {
    let response = app.get(&format!("/api/v1/campaigns/{slug}/story")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn titles(story: &Value) -> Vec<String> {
    story["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"]["en"].as_str().unwrap().to_owned())
        .collect()
}

async fn post(app: &TestApp, slug: &str, body: &Value) -> Value {
    let response = app
        .admin_post(&format!("/api/v1/admin/campaigns/{slug}/story"), body)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
    response.json().await.unwrap()
}

async fn feed(app: &TestApp, slug: &str, lang: &str) -> atom_syndication::Feed {
    let response = app
        .get(&format!("/api/v1/campaigns/{slug}/story.atom?lang={lang}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/atom+xml");
    let text = response.text().await.unwrap();
    text.parse::<atom_syndication::Feed>()
        .unwrap_or_else(|e| panic!("not an Atom feed ({e}): {text}"))
}

#[tokio::test]
async fn staff_tell_the_story_and_the_public_reads_it() {
    let app = TestApp::spawn().await;
    app.open_campaign("story", json!({})).await;
    assert_eq!(
        titles(&public_story(&app, "story").await),
        Vec::<String>::new()
    );

    // Posted out of order: read in the order they happened; a draft is not public.
    let later = post(
        &app,
        "story",
        &entry("2026-12-01", "Operator's survey", true),
    )
    .await;
    let first = post(
        &app,
        "story",
        &entry("2026-10-01", "Campaign launched", true),
    )
    .await;
    let draft = post(&app, "story", &entry("2026-11-01", "Draft", false)).await;
    assert_eq!(later["published"], true);
    assert_eq!(draft["published"], false);
    let story = public_story(&app, "story").await;
    assert_eq!(titles(&story), ["Campaign launched", "Operator's survey"]);
    let shown = &story["entries"][0];
    assert_eq!(shown["date"], "2026-10-01");
    assert_eq!(shown["kind"], "milestone");
    assert_eq!(shown["link"], "https://ville.example/deliberation?id=1&x=2");
    assert!(shown.get("published").is_none() && shown.get("created_at").is_none());

    // Staff see the drafts too.
    let all: Value = serde_json::from_str(
        &app.get_as_admin("/api/v1/admin/campaigns/story/story")
            .await,
    )
    .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);

    // Publishing the draft, editing and deleting show at once (the cache follows the version).
    let id = draft["id"].as_str().unwrap();
    let response = app
        .admin_put(
            &format!("/api/v1/admin/campaigns/story/story/{id}"),
            &entry("2026-11-01", "Council vote", true),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        titles(&public_story(&app, "story").await),
        ["Campaign launched", "Council vote", "Operator's survey"]
    );
    let id = first["id"].as_str().unwrap();
    let response = app
        .request_as(
            Some(&app.admin_token),
            Method::DELETE,
            &format!("/api/v1/admin/campaigns/story/story/{id}"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        titles(&public_story(&app, "story").await),
        ["Council vote", "Operator's survey"]
    );
    // Gone is gone: 404, never 500.
    let response = app
        .admin_put(
            &format!("/api/v1/admin/campaigns/story/story/{id}"),
            &entry("2026-11-01", "Again", true),
        )
        .await;
    problem(response, StatusCode::NOT_FOUND).await;
    let response = app
        .admin_put(
            "/api/v1/admin/campaigns/story/story/not-a-uuid",
            &entry("2026-11-01", "Again", true),
        )
        .await;
    problem(response, StatusCode::NOT_FOUND).await;

    // Every write is in the audit log, with who.
    let audit: Value =
        serde_json::from_str(&app.get_as_admin("/api/v1/admin/audit?campaign=story").await)
            .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .or_else(|| audit.as_array())
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.starts_with("story."))
        .collect();
    for action in ["story.create", "story.update", "story.delete"] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }

    // Only admins write; planners and moderators are refused.
    for role in [Role::Moderator, Role::Planner] {
        let token = app.staff_token(role).await;
        let response = app
            .request_as(
                Some(&token),
                Method::POST,
                "/api/v1/admin/campaigns/story/story",
                Some(&entry("2026-11-02", "Intruder", true)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn bad_entries_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    app.open_campaign("story-bad", json!({})).await;
    let path = "/api/v1/admin/campaigns/story-bad/story";
    let response = app
        .admin_post(
            path,
            &json!({
                "kind": "milestone", "date": "2026-13-45",
                "title": {"fr": "", "en": "x".repeat(201)},
                "text": {"fr": "ok", "en": "bell\u{7}"},
                "link": "javascript:alert(1)",
            }),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        problem_fields(&body),
        ["date", "title.fr", "title.en", "text.en", "link"]
    );
    // An unknown kind or a missing field: 422 or 400 with a problem, never a 500.
    for bad in [
        json!({"kind": "rumour", "date": "2026-01-01", "title": {"fr": "a", "en": "a"}, "text": {"fr": "a", "en": "a"}}),
        json!({"kind": "update", "date": "2026-01-01", "title": {"fr": "a"}, "text": {"fr": "a", "en": "a"}}),
        json!({"kind": "update", "date": "2026-01-01", "title": {"fr": "a", "en": "a"}, "text": {"fr": "a", "en": "a"}, "extra": 1}),
    ] {
        let response = app.admin_post(path, &bad).await;
        assert!(response.status().is_client_error(), "{bad}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // A draft campaign has no public story; an unknown campaign neither.
    let response = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "story-draft", "title": {"fr": "B", "en": "D"}, "form": crate::helpers::test_form()}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    post(&app, "story-draft", &entry("2026-10-01", "Not yet", true)).await;
    for path in [
        "/api/v1/campaigns/story-draft/story",
        "/api/v1/campaigns/story-draft/story.atom",
        "/api/v1/campaigns/nowhere/story",
    ] {
        problem(app.get(path).await, StatusCode::NOT_FOUND).await;
    }
    problem(
        app.get("/api/v1/campaigns/story-bad/story.atom?lang=de")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn the_atom_feed_is_valid_and_escapes_everything() {
    let app = TestApp::spawn().await;
    app.open_campaign(
        "story-feed",
        json!({"title": {"fr": "Fibre <pour> tous & \"vous\"", "en": "Fibre for <all>"}}),
    )
    .await;
    let empty = feed(&app, "story-feed", "fr").await;
    assert!(empty.entries().is_empty());
    assert_eq!(empty.title().as_str(), "Fibre <pour> tous & \"vous\"");

    let hostile = "<script>alert('x')</script> & ]]> \"quotes\" 'apostrophes'";
    let mut body = entry("2026-11-15", hostile, true);
    body["text"]["fr"] = json!(format!("Texte {hostile}\nligne 2"));
    body["link"] = json!("https://ville.example/a?b=1&c=<d>");
    let posted = post(&app, "story-feed", &body).await;
    post(&app, "story-feed", &{
        let mut e = entry("2026-12-01", "Update", true);
        e["kind"] = json!("update");
        e["link"] = Value::Null;
        e
    })
    .await;

    let raw = app
        .get("/api/v1/campaigns/story-feed/story.atom?lang=fr")
        .await
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with("<?xml"), "{raw}");
    assert!(!raw.contains("<script>"), "unescaped markup in {raw}");
    let fr = feed(&app, "story-feed", "fr").await;
    assert_eq!(fr.lang(), Some("fr"));
    assert_eq!(fr.entries().len(), 2);
    // Latest first; every text comes back exactly as written.
    let entry = &fr.entries()[1];
    assert_eq!(entry.title().as_str(), format!("{hostile} (fr)"));
    assert_eq!(
        entry.content().and_then(|c| c.value()),
        Some(format!("Texte {hostile}\nligne 2").as_str())
    );
    assert_eq!(
        entry.summary().unwrap().as_str(),
        "Étape · 15 novembre 2026"
    );
    assert_eq!(
        entry.id(),
        format!("urn:uuid:{}", posted["id"].as_str().unwrap())
    );
    let related: Vec<&str> = entry
        .links()
        .iter()
        .filter(|l| l.rel() == "related")
        .map(|l| l.href())
        .collect();
    assert_eq!(related, ["https://ville.example/a?b=1&c=%3Cd%3E"]);
    assert_eq!(fr.entries()[0].categories()[0].term(), "update");
    assert!(fr.links().iter().any(|l| {
        l.rel() == "self"
            && l.href()
                .ends_with("/api/v1/campaigns/story-feed/story.atom?lang=fr")
    }));
    assert!(!fr.authors().is_empty(), "Atom needs an author");
    assert!(fr.updated() >= entry.updated());

    let en = feed(&app, "story-feed", "en").await;
    assert_eq!(en.entries()[1].title().as_str(), hostile);
    assert_eq!(
        en.entries()[1].summary().unwrap().as_str(),
        "Milestone · 15 November 2026"
    );
    assert_ne!(en.id(), fr.id());
}

#[tokio::test]
async fn a_story_written_on_one_instance_is_read_at_once_on_another() {
    let app = TestApp::spawn().await;
    app.open_campaign("story-two", json!({})).await;
    let other = TestApp::spawn_on(app.db.clone()).await;
    // The other instance keeps the empty story.
    assert!(titles(&public_story(&other, "story-two").await).is_empty());
    post(&app, "story-two", &entry("2026-11-01", "Vote", true)).await;
    let started = Instant::now();
    loop {
        if titles(&public_story(&other, "story-two").await) == ["Vote"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other instance still serves the old story"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "a story entry reached the other instance in {:?}",
        started.elapsed()
    );
}
