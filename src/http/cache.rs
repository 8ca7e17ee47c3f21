//! Public reads kept in memory as ready-to-send bodies: the plain bytes, the gzipped bytes and
//! the ETag, computed once. An entry is keyed by what its figures depend on ([`Key`]): the
//! campaign's settings version and its data version, which every counted change and every
//! release moves ([`crate::figures::release`]). Both versions are known in memory
//! ([`crate::figures::watch`]), so a crowd of readers (a campaign shared on social media)
//! costs one computation per change and, for every other reader, no database round trip.

use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};

/// What an entry's figures were computed from, besides the campaign's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// The campaign's data version: every counted change and every release moves it.
    Data(i64),
    /// The settings alone (TileJSON).
    Settings,
}

/// The key of an entry: the campaign, its settings version, the basis and the request in
/// canonical form (every parameter that changes the body, e.g. `aggregates/{request:?}/csv`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub campaign: i64,
    pub config_version: i64,
    pub basis: Basis,
    pub request: String,
}

/// A response body ready to send.
#[derive(Debug)]
pub struct Body {
    raw: Bytes,
    /// `raw` gzipped, when that is worth it (a body of at least [`GZIP_FROM`] bytes).
    gzip: Option<Bytes>,
    /// Strong ETag of `raw`, derived from the bytes alone: it tells nothing the body does not.
    etag: HeaderValue,
    /// The ETag of the gzipped representation (`raw`'s with `-gz`), a distinct strong
    /// validator as RFC 9110 asks of another content coding.
    etag_gzip: HeaderValue,
}

/// Bodies shorter than this are sent plain: gzip would save too little to pay its headers.
const GZIP_FROM: usize = 1024;

impl Body {
    /// The body of `raw`, with its ETags and, when worth it, its gzipped bytes.
    pub fn new(raw: Vec<u8>) -> ApiResult<Self> {
        let hex = format!("{:x}", Sha256::digest(&raw));
        let etag = format!("\"{}\"", &hex[..32]);
        let etag_gzip = format!("\"{}-gz\"", &hex[..32]);
        let gzip = if raw.len() >= GZIP_FROM {
            Some(crate::tiles::gzip(&raw)?)
        } else {
            None
        };
        Ok(Self {
            raw: Bytes::from(raw),
            gzip,
            etag: HeaderValue::from_str(&etag).map_err(anyhow::Error::from)?,
            etag_gzip: HeaderValue::from_str(&etag_gzip).map_err(anyhow::Error::from)?,
        })
    }

    /// The response to a request with `headers`: 304 when the client holds either
    /// representation's ETag already, else the gzipped bytes to a client that accepts gzip and
    /// the plain bytes to others, with `content_type` and, when given, an attachment `filename`.
    /// How long it may be kept is the route's `Caching` (see [`super::caching`]).
    pub fn respond(
        &self,
        headers: &HeaderMap,
        content_type: &'static str,
        filename: Option<&str>,
    ) -> Response {
        let gzip = self.gzip.as_ref().filter(|_| super::accepts_gzip(headers));
        let etag = if gzip.is_some() {
            &self.etag_gzip
        } else {
            &self.etag
        };
        let mut out = HeaderMap::with_capacity(6);
        out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        out.insert(header::ETAG, etag.clone());
        let held = |tag: &HeaderValue| {
            tag.to_str()
                .is_ok_and(|tag| super::etag_matches(headers, tag))
        };
        if held(&self.etag) || held(&self.etag_gzip) {
            return (StatusCode::NOT_MODIFIED, out).into_response();
        }
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(name) = filename
            && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        {
            out.insert(header::CONTENT_DISPOSITION, value);
        }
        let bytes = match gzip {
            Some(gzip) => {
                out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                gzip.clone()
            }
            None => self.raw.clone(),
        };
        (StatusCode::OK, out, bytes).into_response()
    }
}

/// Bodies this instance builds at once; a build waits up to [`BUILD_WAIT`] for its turn.
pub const BUILDS_AT_ONCE: usize = 4;
/// Longest wait for a turn to build before the request is answered 503 with `Retry-After`.
pub const BUILD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The public responses this instance has built (cheap to clone), and the turns to build them.
#[derive(Clone)]
pub struct ResponseCache(
    moka::future::Cache<Key, Arc<Body>>,
    Arc<tokio::sync::Semaphore>,
);

impl ResponseCache {
    /// A cache of at most `megabytes` MiB of bodies (0: nothing is kept).
    pub fn new(megabytes: u64) -> Self {
        Self(
            moka::future::Cache::builder()
                .weigher(|key: &Key, body: &Arc<Body>| {
                    let size = body.raw.len() + body.gzip.as_ref().map_or(0, Bytes::len);
                    u32::try_from(size + key.request.len() + 128).unwrap_or(u32::MAX)
                })
                .max_capacity(megabytes * 1024 * 1024)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
            Arc::new(tokio::sync::Semaphore::new(BUILDS_AT_ONCE)),
        )
    }

    /// [`Self::get_or_build`] for a public read by `client`: a body that must be built (no
    /// copy for `key` yet) first takes a cell of the client's and its networks' build
    /// allowance (429 when spent); a cached one is free.
    pub async fn get_or_build_for(
        &self,
        limits: &crate::safety::limits::RateLimits,
        client: std::net::IpAddr,
        key: Option<Key>,
        build: impl Future<Output = ApiResult<Vec<u8>>>,
    ) -> ApiResult<Arc<Body>> {
        if let Some(key) = &key
            && !self.0.contains_key(key)
        {
            limits.check_read(
                crate::safety::limits::Read::Build,
                super::client_ip::ClientKey::from(client),
            )?;
        }
        self.get_or_build(key, build).await
    }

    /// The body of `key`, built by `build` once for all concurrent readers; without a key
    /// (figures that are not shared, such as a planner's live ones), built now and not kept.
    pub async fn get_or_build(
        &self,
        key: Option<Key>,
        build: impl Future<Output = ApiResult<Vec<u8>>>,
    ) -> ApiResult<Arc<Body>> {
        // At most BUILDS_AT_ONCE at a time: a flood of distinct downloads waits its turn (and
        // is told to come back) rather than taking every core from the citizens' writes.
        let build = async {
            let _turn = tokio::time::timeout(BUILD_WAIT, self.1.acquire())
                .await
                .map_err(|_| {
                    ApiError::Busy(
                        "too many downloads are being prepared right now; retry in a few seconds"
                            .into(),
                    )
                })?
                .map_err(anyhow::Error::from)?;
            Ok(Arc::new(Body::new(build.await?)?))
        };
        match key {
            Some(key) => self
                .0
                .try_get_with(key, build)
                .await
                .map_err(|e: Arc<ApiError>| e.as_ref().shared()),
            None => build.await,
        }
    }
}
