//! Test harness: every test gets its own database (copied from a migrated PostGIS template)
//! and a real civicmap server on a loopback port.

use std::net::SocketAddr;

use civicmap::http::{AppState, ServerConfig};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::sync::OnceCell;

/// The test cluster, started by `make test` (scripts/test.sh).
fn server_options() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at a PostgreSQL + PostGIS server: run the tests with `make test`",
    );
    url.parse().expect("DATABASE_URL is a PostgreSQL URL")
}

/// Name of a template database holding PostGIS and every migration of this build.
fn template_name() -> String {
    let mut hash = Sha256::new();
    for migration in civicmap::database::MIGRATOR.iter() {
        hash.update(migration.version.to_le_bytes());
        hash.update(&migration.checksum);
    }
    format!("civicmap_tpl_{}", &format!("{:x}", hash.finalize())[..12])
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// Creates the template once per cluster (guarded by an advisory lock across processes).
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut admin = server_options()
                .database("postgres")
                .connect()
                .await
                .expect("connect to the test cluster");
            sqlx::query("SELECT pg_advisory_lock(20261126)")
                .execute(&mut admin)
                .await
                .unwrap();
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            if !exists {
                let building = format!("{name}_building");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {building}"
                )))
                .execute(&mut admin)
                .await
                .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let pool = civicmap::database::pool(server_options().database(&building), 2);
                civicmap::database::migrate(&pool)
                    .await
                    .expect("migrate the template");
                pool.close().await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {building} RENAME TO {name}"
                )))
                .execute(&mut admin)
                .await
                .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {name} WITH is_template = true"
                )))
                .execute(&mut admin)
                .await
                .unwrap();
            }
            sqlx::query("SELECT pg_advisory_unlock(20261126)")
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
            name
        })
        .await
}

/// A connection to the test cluster's `postgres` database, to create and rename databases.
async fn admin() -> sqlx::PgConnection {
    server_options()
        .database("postgres")
        .connect()
        .await
        .unwrap()
}

/// A database with nothing in it, not even PostGIS (a new server), and its connection options.
pub async fn empty_database() -> PgConnectOptions {
    let name = format!("empty_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {name} TEMPLATE template0"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    server_options().database(&name)
}

/// A fresh database with every migration applied, and its connection options.
pub async fn fresh_database() -> (PgPool, PgConnectOptions) {
    let template = template().await;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin().await;
    // Two CREATE DATABASE from one template at the same instant can collide; retry briefly.
    for attempt in 0.. {
        match sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {template}"
        )))
        .execute(&mut admin)
        .await
        {
            Ok(_) => break,
            Err(e) if attempt < 20 => {
                eprintln!("retrying CREATE DATABASE: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot create a test database: {e}"),
        }
    }
    admin.close().await.unwrap();
    let options = server_options().database(&name);
    (civicmap::database::pool(options.clone(), 10), options)
}

/// A running civicmap server over its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: PgPool,
    pub client: reqwest::Client,
    pub admin_token: String,
    /// The server's view of its database (see `civicmap::database::Health`).
    pub health: civicmap::database::Health,
    /// Where the server sends its read-only work (see `civicmap::database::replicas`).
    pub reads: civicmap::database::replicas::Replicas,
}

impl TestApp {
    /// A server on a fresh database, with an admin token.
    pub async fn spawn() -> Self {
        let (db, _) = fresh_database().await;
        Self::spawn_on(db).await
    }

    /// A server on the given pool, without rate limits (see [`test_config`]).
    pub async fn spawn_on(db: PgPool) -> Self {
        Self::spawn_on_with(db, test_config()).await
    }

    /// A server on a fresh database with `config` (rate limits, trusted proxy header...).
    pub async fn spawn_with(config: ServerConfig) -> Self {
        let (db, _) = fresh_database().await;
        Self::spawn_on_with(db, config).await
    }

    /// A server on the given pool with `config`.
    pub async fn spawn_on_with(db: PgPool, config: ServerConfig) -> Self {
        let header_read_timeout = config.header_read_timeout;
        let state = AppState::new(db.clone(), config);
        let health = state.health.clone();
        let reads = state.reads.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(civicmap::http::serve_with(
            listener,
            civicmap::http::app(state),
            header_read_timeout,
            std::future::pending(),
        ));
        let admin_token =
            civicmap::auth::create_token(&db, "test admin", civicmap::auth::Role::Admin, None)
                .await
                .unwrap_or_default();
        Self {
            addr,
            db,
            client: reqwest::Client::new(),
            admin_token,
            health,
            reads,
        }
    }

    /// A server running in another process at `addr` over `db`, called with `admin_token`:
    /// its view of the database (health, replicas) is not ours to read, and these stand-ins
    /// say nothing about it.
    pub fn remote(addr: SocketAddr, db: PgPool, admin_token: String) -> Self {
        Self {
            addr,
            reads: civicmap::database::replicas::Replicas::start(
                db.clone(),
                &[],
                Default::default(),
            ),
            db,
            client: reqwest::Client::new(),
            admin_token,
            health: Default::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `method path` with the admin token and a JSON body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        let request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token);
        request.json(body).send().await.unwrap()
    }

    /// A new staff token of `role`.
    pub async fn staff_token(&self, role: civicmap::auth::Role) -> String {
        civicmap::auth::create_token(&self.db, &format!("test {}", role.as_str()), role, None)
            .await
            .unwrap()
    }

    /// `method path` with `token` (if any) as bearer and `body` (if any) as JSON.
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// Releases campaign `slug`'s figures finer than a district now (as an admin would):
    /// the map's hexagons, splits, sums and time series count what was published until now.
    /// Returns the release (`id`, `counted`, `epsilon`).
    pub async fn release(&self, slug: &str) -> Value {
        let response = self
            .admin_post(
                &format!("/api/v1/admin/campaigns/{slug}/releases"),
                &json!({}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "releasing {slug}");
        response.json().await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.admin(reqwest::Method::POST, path, body).await
    }

    pub async fn admin_patch(&self, path: &str, body: &Value) -> Response {
        self.admin(reqwest::Method::PATCH, path, body).await
    }

    pub async fn admin_put(&self, path: &str, body: &Value) -> Response {
        self.admin(reqwest::Method::PUT, path, body).await
    }

    /// Creates campaign `slug` with the test form and `settings` merged in, imports the
    /// three test districts and opens it.
    pub async fn open_campaign(&self, slug: &str, settings: Value) -> Value {
        let mut body =
            json!({"slug": slug, "title": {"fr": "Essai", "en": "Test"}, "form": test_form()});
        if let (Some(body), Some(settings)) = (body.as_object_mut(), settings.as_object()) {
            body.extend(settings.clone());
        }
        let response = self.admin_post("/api/v1/admin/campaigns", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        let response = self
            .admin_put(
                &format!("/api/v1/admin/campaigns/{slug}/districts"),
                &test_districts(),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        let response = self
            .admin_patch(
                &format!("/api/v1/admin/campaigns/{slug}"),
                &json!({"status": "open"}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        response.json().await.unwrap()
    }

    /// Posts a submission at `(lon, lat)` with `answers`, as a household of its own: from an
    /// address no other call used (see [`household`]), so that it counts toward k.
    pub async fn submit(&self, slug: &str, lon: f64, lat: f64, answers: Value) -> Response {
        self.submit_from(&household(), slug, lon, lat, answers)
            .await
    }

    /// Posts a submission as [`Self::submit`] does, asserts it was stored (201), and returns
    /// its receipt.
    pub async fn contribute(
        &self,
        slug: &str,
        lon: f64,
        lat: f64,
        answers: Value,
    ) -> civicmap::submissions::Receipt {
        let response = self.submit(slug, lon, lat, answers).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Posts a submission from client address `from` (through the trusted proxy header of
    /// [`test_config`]).
    pub async fn submit_from(
        &self,
        from: &str,
        slug: &str,
        lon: f64,
        lat: f64,
        answers: Value,
    ) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/campaigns/{slug}/submissions")))
            .header("x-forwarded-for", from)
            .json(&point(lon, lat, answers))
            .send()
            .await
            .unwrap()
    }

    /// Submission `id` of `slug` as its submitter reads it back with its edit token.
    pub async fn own_submission(&self, slug: &str, id: &str, token: &str) -> Value {
        self.client
            .get(self.url(&format!("/api/v1/campaigns/{slug}/submissions/{id}")))
            .header("X-Edit-Token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Published count per district code (None when withheld), plus "total".
    pub async fn counts(&self, slug: &str) -> std::collections::BTreeMap<String, Option<i64>> {
        let body: Value = self
            .get(&format!("/api/v1/campaigns/{slug}/districts.geojson"))
            .await
            .json()
            .await
            .unwrap();
        let mut counts: std::collections::BTreeMap<String, Option<i64>> = body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["properties"]["code"].as_str().unwrap().to_owned(),
                    f["properties"]["count"].as_i64(),
                )
            })
            .collect();
        counts.insert("total".into(), body["total"]["count"].as_i64());
        counts.insert(
            "outside".into(),
            body["outside_districts"]["count"].as_i64(),
        );
        counts
    }
}

/// A client address no other call of this test process got: one household.
pub fn household() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::net::Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff)).to_string()
}

/// The settings of test servers: the defaults, without rate limits (tests post many
/// submissions from one address; the limits have their own tests), behind a proxy on
/// loopback whose `X-Forwarded-For` is believed, so that tests can post as distinct
/// households ([`TestApp::submit`]): only distinct contributors count toward k.
pub fn test_config() -> ServerConfig {
    let mut config = ServerConfig::new("widget");
    config.client_ip.trusted_header = Some("x-forwarded-for".parse().unwrap());
    config.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    config.rate_limits = civicmap::safety::limits::RateLimitConfig::off();
    config
}

/// A GeoJSON Point Feature.
pub fn point(lon: f64, lat: f64, answers: Value) -> Value {
    json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": answers})
}

/// The form of the test campaigns.
pub fn test_form() -> Value {
    json!({"fields": [
        {"key": "households", "type": "number", "label": {"fr": "Foyers", "en": "Households"}, "required": true, "min": 1, "max": 500, "integer": true},
        {"key": "connection", "type": "choice", "label": {"fr": "Connexion", "en": "Connection"}, "required": true,
         "options": [{"value": "adsl", "label": {"fr": "ADSL", "en": "ADSL"}}, {"value": "none", "label": {"fr": "Aucune", "en": "None"}}]},
        {"key": "comment", "type": "text", "label": {"fr": "Commentaire", "en": "Comment"}, "max_length": 20},
        {"key": "tenant", "type": "boolean", "label": {"fr": "Locataire", "en": "Tenant"}}
    ]})
}

/// Campaign settings under which every count is shown exactly: k = 1 and a 50 m grid. For
/// tests about what is counted, not about what is withheld.
pub fn exact() -> Value {
    json!({"privacy": {"public_precision_m": 50, "min_count": 1}})
}

/// Asserts that every submission in `ids` is stored: what was acknowledged is never lost.
pub async fn assert_stored(pool: &PgPool, ids: &[uuid::Uuid], what: &str) {
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions WHERE id = ANY($1)")
        .bind(ids)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(stored, ids.len() as i64, "{what}: submissions lost");
}

/// Asserts that every district counter (all shards together) equals its published rows.
pub async fn assert_counters_match_rows(pool: &PgPool) {
    let wrong: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT r.n, c.n FROM
            (SELECT campaign_id, district_id, count(*) AS n FROM submissions
             WHERE status = 'published' GROUP BY 1, 2) r
         FULL JOIN
            (SELECT campaign_id, district_id, sum(published)::bigint AS n FROM district_counts
             GROUP BY 1, 2) c
         ON r.campaign_id = c.campaign_id AND r.district_id IS NOT DISTINCT FROM c.district_id
         WHERE COALESCE(r.n, 0) <> COALESCE(c.n, 0)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(wrong.is_empty(), "counters differ from rows: {wrong:?}");
}

/// Runs the `civicmap` binary with `args` against the database at `url`.
pub fn civicmap(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_civicmap"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

/// The URL of the test cluster's database named in `options`.
pub fn url_of(options: &PgConnectOptions) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let mut url = reqwest::Url::parse(&base).unwrap();
    url.set_path(&format!("/{}", options.get_database().unwrap()));
    url.to_string()
}

/// Valid answers to the test form.
pub fn answers() -> Value {
    json!({"households": 2, "connection": "adsl"})
}

/// A square polygon ring with its south-west corner at (x, y) and side `size` degrees.
pub fn square(x: f64, y: f64, size: f64) -> Value {
    json!([[
        [x, y],
        [x + size, y],
        [x + size, y + size],
        [x, y + size],
        [x, y]
    ]])
}

/// Three districts side by side: west [2.0, 2.1], middle [2.1, 2.2] (a MultiPolygon of a
/// south and a north half), east [2.2, 2.3], all between latitudes 48.0 and 48.1.
pub fn test_districts() -> Value {
    json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "West", "code": "west"}, "geometry": {"type": "Polygon", "coordinates": square(2.0, 48.0, 0.1)}},
        {"type": "Feature", "properties": {"name": "Middle", "code": "middle"}, "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[2.1, 48.0], [2.2, 48.0], [2.2, 48.05], [2.1, 48.05], [2.1, 48.0]]],
            [[[2.1, 48.05], [2.2, 48.05], [2.2, 48.1], [2.1, 48.1], [2.1, 48.05]]]
        ]}},
        {"type": "Feature", "properties": {"name": "East", "code": "east"}, "geometry": {"type": "Polygon", "coordinates": square(2.2, 48.0, 0.1)}}
    ]})
}

/// Asserts `response` is a problem+json with `status`, and returns the problem.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

/// The fields named by a validation problem.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}
