//! The address search: importing the national address file (plain, gzip, refused lines,
//! replacement by commune), suggestions (accents, abbreviations, bis, a typo, ranking, the
//! campaign's area), bad requests, and what an attacker cannot learn from it (the answer does
//! not depend on submissions; the query is neither stored nor logged).

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, civicmap, fresh_database, problem, problem_fields, url_of};

const HEADER: &str = civicmap::addresses::synthetic::HEADER;

/// A line of a BAN file.
fn line(id: &str, numero: u32, rep: &str, street: &str, insee: &str, lon: f64, lat: f64) -> String {
    let (postcode, commune) = match insee {
        "92050" => ("92000", "Nanterre"),
        "92063" => ("92500", "Rueil-Malmaison"),
        _ => ("75001", "Paris"),
    };
    format!(
        "{id};{insee}_x;{numero};{rep};{street};{postcode};{insee};{commune};;;;;{lon};{lat};entrée;;;{};;commune;commune;1;",
        commune.to_uppercase()
    )
}

fn file(lines: &[String]) -> Vec<u8> {
    let mut text = format!("{HEADER}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text.into_bytes()
}

/// A street of the test districts (see `helpers::test_districts`), numbers 1 to `n` along
/// latitude 48.05 from `lon`, every one 0.0002° further east.
fn street(prefix: &str, name: &str, insee: &str, lon: f64, n: u32) -> Vec<String> {
    (1..=n)
        .map(|i| {
            line(
                &format!("{insee}_{prefix}_{i:05}"),
                i,
                "",
                name,
                insee,
                lon + f64::from(i) * 0.0002,
                48.05,
            )
        })
        .collect()
}

/// The addresses the search tests use: inside the test districts (lon 2.0 to 2.3), except
/// the Paris one at lon 2.5.
fn town() -> Vec<String> {
    let mut lines = street("paix", "Rue de la Paix", "92050", 2.01, 20);
    lines.push(line(
        "92050_paix_00012_bis",
        12,
        "bis",
        "Rue de la Paix",
        "92050",
        2.01 + 12.5 * 0.0002,
        48.05,
    ));
    lines.extend(street("paille", "Rue de la Paille", "92050", 2.06, 20));
    lines.extend(street("erables", "Allée des Érables", "92050", 2.11, 5));
    lines.extend(street(
        "gaulle",
        "Avenue du Général de Gaulle",
        "92063",
        2.16,
        5,
    ));
    lines.extend(street("michel", "Boulevard Saint-Michel", "92063", 2.21, 5));
    // The same street name outside every test district.
    lines.push(line(
        "75101_paix_00012",
        12,
        "",
        "Rue de la Paix",
        "75101",
        2.5,
        48.05,
    ));
    lines
}

async fn import(app: &TestApp, lines: &[String]) -> civicmap::addresses::ImportReport {
    civicmap::addresses::import(
        &app.db,
        Box::new(std::io::Cursor::new(file(lines))),
        "test",
        &mut civicmap::import::Quiet,
    )
    .await
    .unwrap()
}

async fn suggest(app: &TestApp, slug: &str, q: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/campaigns/{slug}/addresses")))
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{q}");
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    response.json::<Vec<Value>>().await.unwrap()
}

fn labels(suggestions: &[Value]) -> Vec<&str> {
    suggestions
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn suggestions_understand_accents_abbreviations_numbers_and_typos() {
    let app = TestApp::spawn().await;
    app.open_campaign("town", json!({})).await;
    let report = import(&app, &town()).await;
    assert_eq!((report.rows, report.communes, report.replaced), (57, 3, 0));

    // The exact number and suffix on the named street first, then its other numbers.
    let found = suggest(&app, "town", "12 bis r de la paix").await;
    assert_eq!(found[0]["label"], "12 bis Rue de la Paix, 92000 Nanterre");
    assert_eq!(found[0]["id"], "92050_paix_00012_bis");
    assert!((found[0]["lon"].as_f64().unwrap() - 2.0125).abs() < 1e-9);
    assert_eq!(found[0]["lat"], 48.05);
    assert_eq!(found[1]["label"], "12 Rue de la Paix, 92000 Nanterre");
    let found = suggest(&app, "town", "12 Rue de la Paix").await;
    assert_eq!(
        labels(&found)[..4],
        [
            "12 Rue de la Paix, 92000 Nanterre",
            "12 bis Rue de la Paix, 92000 Nanterre",
            "11 Rue de la Paix, 92000 Nanterre",
            "13 Rue de la Paix, 92000 Nanterre",
        ]
    );
    assert!(
        found
            .iter()
            .all(|s| s["label"].as_str().unwrap().contains("Rue de la Paix")),
        "the same street before a fuzzier one: {:?}",
        labels(&found)
    );
    // Rue de la Paille comes after every number of Rue de la Paix.
    let all = app
        .client
        .get(app.url("/api/v1/campaigns/town/addresses"))
        .query(&[("q", "12 rue de la paix"), ("limit", "20")])
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 20);
    assert!(
        labels(&all)[..20].iter().all(|l| l.contains("Paix")),
        "{:?}",
        labels(&all)
    );
    // Outside the campaign's area (the Paris one) never.
    assert!(all.iter().all(|s| s["id"] != "75101_paix_00012"));

    // A typo, and a word typed halfway.
    let found = suggest(&app, "town", "7 rue de la paiz").await;
    assert_eq!(found[0]["label"], "7 Rue de la Paix, 92000 Nanterre");
    let found = suggest(&app, "town", "7 rue de la pa").await;
    assert!(
        labels(&found).contains(&"7 Rue de la Paix, 92000 Nanterre"),
        "{:?}",
        labels(&found)
    );
    // Accents and case.
    let found = suggest(&app, "town", "3 ALLEE DES ERABLES").await;
    assert_eq!(found[0]["label"], "3 Allée des Érables, 92000 Nanterre");
    // Abbreviations.
    let found = suggest(&app, "town", "2 av du gal de gaulle").await;
    assert_eq!(
        found[0]["label"],
        "2 Avenue du Général de Gaulle, 92500 Rueil-Malmaison"
    );
    let found = suggest(&app, "town", "4 bd st michel").await;
    assert_eq!(
        found[0]["label"],
        "4 Boulevard Saint-Michel, 92500 Rueil-Malmaison"
    );
    // The commune may be typed too.
    let found = suggest(&app, "town", "5 rue de la paix nanterre").await;
    assert_eq!(found[0]["label"], "5 Rue de la Paix, 92000 Nanterre");
    // Nothing to search for: no suggestion (not an error).
    assert_eq!(suggest(&app, "town", "12").await, Vec::<Value>::new());
    assert_eq!(suggest(&app, "town", "§§ !!").await, Vec::<Value>::new());
    assert_eq!(suggest(&app, "town", "zzzzqqqq").await, Vec::<Value>::new());

    // Without a number: the street's numbers in order, a plain number before its bis.
    let found = suggest(&app, "town", "rue de la paix").await;
    assert_eq!(
        labels(&found)[..3],
        [
            "1 Rue de la Paix, 92000 Nanterre",
            "2 Rue de la Paix, 92000 Nanterre",
            "3 Rue de la Paix, 92000 Nanterre",
        ]
    );
    // The area is the campaign's outline, not its bounding box: an L-shaped area whose box
    // holds Rue de la Paille, but not its outline.
    let l_shape = json!({"type": "Polygon", "coordinates": [[
        [2.0, 48.0], [2.3, 48.0], [2.3, 48.02], [2.05, 48.02], [2.05, 48.1], [2.0, 48.1], [2.0, 48.0]
    ]]});
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "corner", "title": {"fr": "A", "en": "A"}, "status": "open", "area": l_shape}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let found = suggest(&app, "corner", "12 rue de la paille").await;
    assert!(
        found
            .iter()
            .all(|s| !s["label"].as_str().unwrap().contains("Paille")),
        "{:?}",
        labels(&found)
    );
    let found = suggest(&app, "corner", "12 rue de la paix").await;
    assert_eq!(found[0]["label"], "12 Rue de la Paix, 92000 Nanterre");

    // The campaign says the search is available; one whose area has no addresses says not,
    // and finds nothing.
    let campaign: Value = app
        .get("/api/v1/campaigns/town")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(campaign["address_search"], true);
    app.admin_post(
        "/api/v1/admin/campaigns",
        &json!({"slug": "elsewhere", "title": {"fr": "A", "en": "A"}, "status": "open",
                "area": {"type": "Polygon", "coordinates": crate::helpers::square(5.0, 45.0, 0.1)}}),
    )
    .await;
    let campaign: Value = app
        .get("/api/v1/campaigns/elsewhere")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(campaign["address_search"], false, "{campaign}");
    assert_eq!(
        suggest(&app, "elsewhere", "12 rue de la paix").await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn bad_searches_are_refused_naming_the_parameter() {
    let app = TestApp::spawn().await;
    app.open_campaign("town", json!({})).await;
    let url = |query: &str| format!("/api/v1/campaigns/town/addresses{query}");
    for (query, fields) in [
        ("", vec!["q"]),
        ("?q=", vec!["q"]),
        ("?q=%20%20", vec!["q"]),
        ("?q=rue&limit=0", vec!["limit"]),
        ("?q=rue&limit=21", vec!["limit"]),
        ("?q=rue&limit=abc", vec!["limit"]),
        ("?limit=-1", vec!["q", "limit"]),
    ] {
        let body = problem(app.get(&url(query)).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&body), fields, "{query}: {body}");
    }
    let long = "a".repeat(201);
    let body = problem(
        app.get(&url(&format!("?q={long}"))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&body), ["q"]);
    assert!(
        !body.to_string().contains(&long),
        "the query is not repeated"
    );
    // A query string that is not one: a 400.
    problem(app.get(&url("?q=a&q=b")).await, StatusCode::BAD_REQUEST).await;
    // An unknown campaign, or a draft: 404.
    problem(
        app.get("/api/v1/campaigns/nope/addresses?q=rue").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    app.admin_post(
        "/api/v1/admin/campaigns",
        &json!({"slug": "draft", "title": {"fr": "A", "en": "A"}}),
    )
    .await;
    problem(
        app.get("/api/v1/campaigns/draft/addresses?q=rue").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// Every row of every table of the public schema, as text.
async fn whole_database(db: &sqlx::PgPool) -> Vec<(String, Vec<String>)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut all = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {table} t ORDER BY 1"
        )))
        .fetch_all(db)
        .await
        .unwrap();
        all.push((table, rows));
    }
    all
}

/// An attacker who searches addresses learns nothing about households: the answers are the
/// same before and after submissions arrive at and around the addresses, and searching leaves
/// nothing behind in the database.
#[tokio::test]
async fn the_search_reveals_no_household_and_stores_no_query() {
    let app = TestApp::spawn().await;
    app.open_campaign("town", json!({})).await;
    import(&app, &town()).await;
    let queries = [
        "12 rue de la paix",
        "rue de la pa",
        "3 allee des erables",
        "av du gal de gaulle",
        "rue",
        "paille",
    ];
    let mut before = Vec::new();
    for q in queries {
        before.push(suggest(&app, "town", q).await);
    }
    // Households at and right next to the addresses suggested, in every district.
    for s in before.iter().flatten() {
        let (lon, lat) = (s["lon"].as_f64().unwrap(), s["lat"].as_f64().unwrap());
        for (dx, dy) in [(0.0, 0.0), (0.00001, 0.0), (0.0, -0.00001)] {
            app.contribute("town", lon + dx, lat + dy, answers()).await;
        }
    }
    for (q, earlier) in queries.iter().zip(&before) {
        assert_eq!(&suggest(&app, "town", q).await, earlier, "{q}");
    }

    // Searching stores nothing: every table holds the same rows after a hundred searches, and
    // the query is in none of them.
    let marker = "zqxjvw";
    let stored = whole_database(&app.db).await;
    for i in 0..100 {
        suggest(&app, "town", &format!("{i} rue {marker} de la paix")).await;
    }
    suggest(&app, "town", marker).await;
    let after = whole_database(&app.db).await;
    assert_eq!(stored, after, "a search changed the database");
    for (table, rows) in &after {
        assert!(
            rows.iter().all(|r| !r.contains(marker)),
            "the query is in {table}"
        );
    }
}

/// The query is never logged: the binary at its most verbose (`RUST_LOG=trace`) logs the
/// search's path but not what was typed.
#[tokio::test]
async fn the_query_never_reaches_the_log() {
    let (pool, options) = fresh_database().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(["serve", "--listen", "127.0.0.1:0", "--max-connections", "4"])
        .env("DATABASE_URL", url_of(&options))
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, port) = crate::hardening::capture(&mut child);
    let admin_token =
        civicmap::auth::create_token(&pool, "log test", civicmap::auth::Role::Admin, None)
            .await
            .unwrap();
    let app = TestApp::remote(([127, 0, 0, 1], port).into(), pool, admin_token);
    app.open_campaign("logged", json!({})).await;
    import(&app, &town()).await;
    let marker = "Qwxzyk";
    suggest(&app, "logged", &format!("12 rue de la paix {marker}")).await;
    suggest(&app, "logged", "12 rue de la paix").await;
    // Refused queries too: their problem names the field, never the text.
    let refused = app
        .client
        .get(app.url("/api/v1/campaigns/logged/addresses"))
        .query(&[("q", marker.repeat(40).as_str()), ("limit", marker)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("/api/v1/campaigns/logged/addresses"),
        "searches are traced by their path"
    );
    assert!(
        !log.to_lowercase().contains(&marker.to_lowercase()),
        "the query is in the log"
    );
    assert!(
        !log.contains("rue+de+la+paix")
            && !log.contains("rue%20de%20la%20paix")
            && !log.contains("rue de la paix")
    );
}

/// The command line: a good file (plain, then gzip) is imported; a file with bad lines is
/// refused with each line and field named, and nothing of it is stored; a second file
/// replaces the addresses of its communes.
#[tokio::test]
async fn the_command_line_imports_all_or_nothing_and_replaces_communes() {
    let (pool, options) = fresh_database().await;
    let url = url_of(&options);
    let dir = tempfile::tempdir().unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM addresses")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    let plain = dir.path().join("adresses-92.csv");
    std::fs::write(&plain, file(&town())).unwrap();
    let output = civicmap(&url, &["addresses", "import", plain.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("57 addresses of 3 communes imported"),
        "{stdout}"
    );
    assert_eq!(count().await, 57);

    // The same file compressed, with a name that does not say so: told by its first bytes.
    // Importing it again replaces the same addresses.
    let gzipped = dir.path().join("adresses-92.data");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&file(&town())).unwrap();
    std::fs::write(&gzipped, encoder.finish().unwrap()).unwrap();
    let output = civicmap(&url, &["addresses", "import", gzipped.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("57 addresses of these communes replaced")
    );
    assert_eq!(count().await, 57);

    // Bad lines: each named, nothing stored (the earlier addresses stay as they were).
    let mut lines = street("new", "Rue Neuve", "92050", 2.01, 3);
    lines.push(line(
        "92050_bad_1",
        1,
        "",
        "Rue Neuve",
        "92050",
        200.0,
        48.0,
    ));
    lines.push(line("92050_bad_2", 1, "", "", "92050", 2.0, 48.0));
    lines.push("92050_bad_3;x;y".into());
    lines.push(line(
        "92050_new_00001",
        9,
        "",
        "Rue Neuve",
        "92050",
        2.0,
        48.0,
    ));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, file(&lines)).unwrap();
    let output = civicmap(&url, &["addresses", "import", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 5, lon/lat: "), "{stderr}");
    assert!(stderr.contains("line 6, nom_voie: is empty"), "{stderr}");
    assert!(
        stderr.contains("line 7, line: has 3 fields where the header has 23"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 of 7 lines refused; nothing was imported"),
        "{stderr}"
    );
    assert_eq!(count().await, 57);
    // A duplicate id alone is refused too, by line.
    lines.truncate(3);
    lines.push(line(
        "92050_new_00001",
        9,
        "",
        "Rue Neuve",
        "92050",
        2.0,
        48.0,
    ));
    std::fs::write(&bad, file(&lines)).unwrap();
    let output = civicmap(&url, &["addresses", "import", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 5, id: `92050_new_00001` is already on line 2"),
        "{stderr}"
    );
    assert_eq!(count().await, 57);
    // Not a BAN file at all.
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let output = civicmap(&url, &["addresses", "import", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no column `id`"), "{stderr}");

    // A file of Nanterre alone replaces Nanterre's addresses, and leaves the other communes'.
    lines.truncate(3);
    std::fs::write(&bad, file(&lines)).unwrap();
    let output = civicmap(&url, &["addresses", "import", bad.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let by_commune: Vec<(String, i64)> =
        sqlx::query_as("SELECT code_insee, count(*) FROM addresses GROUP BY 1 ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        by_commune,
        [
            ("75101".to_owned(), 1),
            ("92050".to_owned(), 3),
            ("92063".to_owned(), 10)
        ]
    );
}

/// The demo's synthetic addresses are loaded with it, and found.
#[tokio::test]
async fn the_demo_has_synthetic_addresses() {
    let app = TestApp::spawn().await;
    civicmap::demo::load(&app.db).await.unwrap();
    let campaign: Value = app
        .get("/api/v1/campaigns/fibre-pour-tous")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(campaign["address_search"], true);
    let found = suggest(&app, "fibre-pour-tous", "3 r synthetique des acacias").await;
    assert_eq!(
        found[0]["label"],
        "3 Rue Synthétique des Acacias, 92000 Nanterre"
    );
}

/// Every suggestion for `q` (at most 20), as the server gives them.
async fn suggest_all(app: &TestApp, slug: &str, q: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/campaigns/{slug}/addresses")))
        .query(&[("q", q), ("limit", "20")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{q}");
    response.json().await.unwrap()
}

/// The index in memory answers as the database does: the same suggestions in the same order,
/// for typed, abbreviated, accented, misspelt and half-typed queries, from an instance that
/// keeps indexes, one that always searches the database, and one whose index may hold fewer
/// addresses than the area has (which then searches the database).
#[tokio::test]
async fn the_index_in_memory_answers_as_the_database_does() {
    let app = TestApp::spawn().await;
    app.open_campaign("town", json!({})).await;
    import(&app, &town()).await;
    let mut config = crate::helpers::test_config();
    config.address_index_max = 0;
    let database = TestApp::spawn_on_with(app.db.clone(), config).await;
    let mut config = crate::helpers::test_config();
    config.address_index_max = 10;
    let too_large = TestApp::spawn_on_with(app.db.clone(), config).await;
    let mut found = 0;
    for q in [
        "12 bis r de la paix",
        "12 Rue de la Paix",
        "12 rue de la paix",
        "7 rue de la paiz",
        "7 rue de la pa",
        "rue de la pai",
        "3 ALLEE DES ERABLES",
        "2 av du gal de gaulle",
        "4 bd st michel",
        "5 rue de la paix nanterre",
        "rue de la paix",
        "rue",
        "r",
        "paille",
        "9 ter rue de la paille",
        "rueil malmaison",
        "zzzzqqqq",
        "12",
    ] {
        let indexed = suggest_all(&app, "town", q).await;
        assert_eq!(indexed, suggest_all(&database, "town", q).await, "{q}");
        assert_eq!(indexed, suggest_all(&too_large, "town", q).await, "{q}");
        found += indexed.len();
    }
    assert!(found > 100, "the queries find addresses: {found}");
}

/// A new address file is searched as soon as it is imported: the next searches on this
/// instance and on another one no longer find the replaced addresses and find the new ones
/// (within a second: each instance learns of the import by notification), and a campaign
/// whose area changes is searched in its new area.
#[tokio::test]
async fn an_import_or_a_new_area_is_searched_at_once_on_every_instance() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_on(app.db.clone()).await;
    app.open_campaign("town", json!({})).await;
    import(&app, &town()).await;
    for instance in [&app, &other] {
        let found = suggest(instance, "town", "12 rue de la paix").await;
        assert_eq!(found[0]["id"], "92050_paix_00012");
        assert!(suggest(instance, "town", "rue neuve").await.is_empty());
    }
    // Nanterre's file again, with Rue de la Paix renamed Rue Neuve.
    let renamed: Vec<String> = street("neuve", "Rue Neuve", "92050", 2.01, 20);
    let report = import(&app, &renamed).await;
    assert_eq!((report.rows, report.communes, report.replaced), (20, 1, 46));
    for instance in [&app, &other] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let old = suggest(instance, "town", "12 rue de la paix").await;
            let new = suggest(instance, "town", "12 rue neuve").await;
            let gone = old
                .iter()
                .all(|s| !s["id"].as_str().unwrap().starts_with("92050"));
            if gone && new.first().is_some_and(|s| s["id"] == "92050_neuve_00012") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still the old file after 1 s: {old:?} {new:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    // An area of its own, then a smaller one: the next search is in the smaller one.
    let created = app
        .admin_post(
            "/api/v1/admin/campaigns",
            &json!({"slug": "moving", "title": {"fr": "A", "en": "A"}, "status": "open",
                    "area": {"type": "Polygon", "coordinates": crate::helpers::square(2.0, 48.0, 0.3)}}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        suggest(&app, "moving", "12 rue neuve").await[0]["id"],
        "92050_neuve_00012"
    );
    let moved = app
        .admin_patch(
            "/api/v1/admin/campaigns/moving",
            &json!({"area": {"type": "Polygon", "coordinates": crate::helpers::square(2.1, 48.0, 0.2)}}),
        )
        .await;
    assert_eq!(
        moved.status(),
        StatusCode::OK,
        "{}",
        moved.text().await.unwrap()
    );
    let found = suggest(&app, "moving", "12 rue neuve").await;
    assert!(
        found.is_empty(),
        "Rue Neuve (lon 2.01 to 2.014) is outside: {found:?}"
    );
}
