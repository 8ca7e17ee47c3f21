//! Vector tiles of a campaign: its districts with their published counts (live), and the
//! demand as the map's released hexagons (estimates). Small at any scale, fresh after every
//! write, private by construction.
//!
//! Nothing in a tile comes from a submission row: the `demand` layer draws the hexagons of the
//! campaign's releases, the very estimates of its H3 downloads ([`demand`]), at a resolution per
//! zoom such that a tile never holds more than [`MAX_CELLS_PER_SIDE`]² features, whatever the
//! number of submissions. Exact positions, answers, ids, tokens and counts below k cannot reach
//! a tile.

pub mod demand;
pub mod http;

use std::sync::Arc;

use bytes::Bytes;
use sqlx::PgPool;

use crate::campaigns::Campaign;
use crate::exports::ExportError;
use crate::figures::{self, PublishedCount};

/// Why a tile could not be built: the database is away (a retry will do), or something
/// failed that should not have.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// The database cannot be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a database error.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sqlx::Error> for TileError {
    fn from(error: sqlx::Error) -> Self {
        if crate::database::is_unavailable(&error) {
            Self::Unavailable(error.to_string())
        } else {
            Self::Failed(error.into())
        }
    }
}

impl From<ExportError> for TileError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Database(error) => error.into(),
            other => Self::Failed(other.into()),
        }
    }
}

impl TileError {
    /// The same error for another caller, from the copy a coalesced build handed out.
    fn shared(&self) -> Self {
        match self {
            Self::Unavailable(cause) => Self::Unavailable(cause.clone()),
            Self::Failed(cause) => {
                Self::Failed(anyhow::anyhow!("building a tile failed: {cause:#}"))
            }
        }
    }
}

type Result<T, E = TileError> = std::result::Result<T, E>;

/// Highest zoom served.
pub const MAX_ZOOM: u8 = 22;
/// MVT extent: coordinates inside a tile run from 0 to 4096.
pub const EXTENT: u32 = 4096;
/// Pixels drawn around a tile so that lines and symbols do not break at its edge.
pub const BUFFER: u32 = 64;
/// At most this many hexagons across a tile, so at most its square per tile.
pub const MAX_CELLS_PER_SIDE: f64 = 64.0;
/// Half the width of the Web Mercator world, in metres.
pub(crate) const HALF_WORLD: f64 = 20_037_508.342_789_244;

/// A tile address that can only hold valid values: z ≤ 22, x and y below 2^z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileCoord {
    z: u8,
    x: u32,
    y: u32,
}

impl TileCoord {
    /// Checks z ≤ [`MAX_ZOOM`] and x, y < 2^z.
    pub fn new(z: u32, x: u32, y: u32) -> Result<Self, String> {
        if z > u32::from(MAX_ZOOM) {
            return Err(format!("zoom must be between 0 and {MAX_ZOOM}, got {z}"));
        }
        let n = 1u64 << z;
        if u64::from(x) >= n || u64::from(y) >= n {
            return Err(format!(
                "at zoom {z}, x and y must be between 0 and {}, got x={x}, y={y}",
                n - 1
            ));
        }
        Ok(Self { z: z as u8, x, y })
    }

    /// Zoom.
    pub fn z(self) -> u8 {
        self.z
    }

    /// Column.
    pub fn x(self) -> u32 {
        self.x
    }

    /// Row, from the north (XYZ scheme).
    pub fn y(self) -> u32 {
        self.y
    }

    /// Width of the tile in Web Mercator metres.
    pub fn size(self) -> f64 {
        2.0 * HALF_WORLD / f64::from(1u32 << self.z.min(31))
    }

    /// `[xmin, ymin, xmax, ymax]` of the tile in Web Mercator metres.
    pub fn bounds(self) -> [f64; 4] {
        let size = self.size();
        let xmin = -HALF_WORLD + f64::from(self.x) * size;
        let ymax = HALF_WORLD - f64::from(self.y) * size;
        [xmin, ymax - size, xmin + size, ymax]
    }
}

/// A built tile, kept for as long as its campaign's data does not change.
#[derive(Debug)]
pub struct Tile {
    /// The MVT bytes (empty: no feature).
    pub raw: Bytes,
    /// The same, gzip-compressed once.
    pub gzip: Bytes,
    /// Strong validator of `raw`, derived from the bytes alone (no version or counter of
    /// writes).
    pub etag: String,
    /// Strong validator of `gzip`: another representation, so another tag (`"…-gz"`).
    pub etag_gzip: String,
}

/// Key of the tile cache: a tile of a campaign at given settings and data versions. A write
/// changes the data version (the districts layer is live), and so does a release (the demand
/// layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TileKey {
    campaign: i64,
    config_version: i64,
    data_version: i64,
    tile: TileCoord,
}

/// Built tiles, by campaign, versions and address.
#[derive(Clone)]
pub struct TileCache {
    tiles: moka::future::Cache<TileKey, Arc<Tile>>,
    /// The published hexagons of each campaign at its settings version and latest release.
    hexagons: moka::future::Cache<(i64, i64, i64), Arc<demand::Hexagons>>,
}

impl TileCache {
    /// A cache of at most `megabytes` MiB of tiles; 0 turns caching off (every request builds
    /// its tile; for benchmarks).
    pub fn new(megabytes: u64) -> Self {
        let tiles = moka::future::Cache::builder()
            .weigher(|_, tile: &Arc<Tile>| {
                (tile.raw.len() + tile.gzip.len() + 64)
                    .try_into()
                    .unwrap_or(u32::MAX)
            })
            .max_capacity(megabytes * 1024 * 1024)
            .build();
        // Kept even without a tile cache: the published hexagons are state of the campaign's
        // release, not of a tile.
        let hexagons = moka::future::Cache::builder()
            .max_capacity(64)
            .time_to_idle(std::time::Duration::from_secs(600))
            .build();
        Self { tiles, hexagons }
    }

    /// The tile at `tile` for `campaign` at `data_version` (districts) with its releases
    /// `released` (demand), built once and shared by concurrent requests.
    pub async fn get(
        &self,
        reads: &crate::database::replicas::Replicas,
        campaign: &Arc<Campaign>,
        data_version: i64,
        released: &Arc<Option<crate::figures::estimates::Released>>,
        tile: TileCoord,
    ) -> Result<Arc<Tile>> {
        let key = TileKey {
            campaign: campaign.id,
            config_version: campaign.config_version,
            data_version,
            tile,
        };
        metrics::counter!("civicmap_tile_requests_total").increment(1);
        self.tiles
            .try_get_with(key, async {
                metrics::counter!("civicmap_tile_builds_total").increment(1);
                // A replica holding these versions, else the primary.
                let db = &reads
                    .at(campaign.id, campaign.config_version, data_version)
                    .await;
                let release = released.as_ref().as_ref().map_or(0, |r| r.id);
                let hexagons = self
                    .hexagons
                    .get_with((campaign.id, campaign.config_version, release), async {
                        Arc::new(demand::Hexagons::of(released.as_ref().as_ref(), campaign))
                    })
                    .await;
                let raw = build_with(db, campaign, tile, &hexagons).await?;
                let gzip = gzip(&raw)?;
                let etag = {
                    use sha2::Digest;
                    let hex = format!("{:x}", sha2::Sha256::digest(&raw));
                    format!("\"{}\"", &hex[..32])
                };
                let etag_gzip = format!("{}-gz\"", &etag[..etag.len() - 1]);
                Ok::<_, TileError>(Arc::new(Tile {
                    raw,
                    gzip,
                    etag,
                    etag_gzip,
                }))
            })
            .await
            .map_err(|e: Arc<TileError>| e.shared())
    }
}

/// `raw` compressed with gzip (default level), as served to clients that accept it.
pub fn gzip(raw: &[u8]) -> Result<Bytes> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 2 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(raw).map_err(anyhow::Error::from)?;
    Ok(Bytes::from(encoder.finish().map_err(anyhow::Error::from)?))
}

/// Builds the MVT of `tile`: layer `districts` (outlines simplified to the pixel, code, name,
/// published count or withheld flag, share of the total, target and progress toward it) and
/// layer `demand` (one point per hexagon of the map at the zoom's resolution, at its centre,
/// with its estimate, from the campaign's releases).
pub async fn build(db: &PgPool, campaign: &Campaign, tile: TileCoord) -> Result<Bytes> {
    let released = crate::figures::release::read(db, campaign.id).await?;
    build_with(
        db,
        campaign,
        tile,
        &demand::Hexagons::of(released.as_ref(), campaign),
    )
    .await
}

/// [`build`] with the campaign's published hexagons already read.
pub async fn build_with(
    db: &PgPool,
    campaign: &Campaign,
    tile: TileCoord,
    hexagons: &demand::Hexagons,
) -> Result<Bytes> {
    let counts = figures::district_counts(db, campaign.id).await?;
    let published = counts.published(i64::from(campaign.privacy.min_count));
    let total = published.total.count;
    let ids: Vec<i64> = counts.districts.iter().map(|(id, _)| *id).collect();
    let cells: Vec<PublishedCount> = published.cells[..ids.len()].to_vec();
    let shown: Vec<Option<i64>> = cells.iter().map(|c| c.count).collect();
    let withheld: Vec<bool> = cells.iter().map(|c| c.withheld).collect();
    let shares: Vec<Option<f64>> = shown
        .iter()
        .map(|c| match (c, total) {
            (Some(c), Some(t)) if t > 0 => Some(((*c as f64 / t as f64) * 1e4).round() / 1e4),
            _ => None,
        })
        .collect();
    let pixel = tile.size() / f64::from(EXTENT);
    let margin = pixel * f64::from(BUFFER);
    let cells = hexagons.on(tile, margin);
    let mvt: Option<Vec<u8>> = sqlx::query_scalar!(
        "WITH env AS (SELECT ST_TileEnvelope($2, $3, $4) AS e),
         counts AS (
            SELECT * FROM unnest($5::int8[], $6::int8[], $7::bool[], $8::float8[]) AS t(id, count, withheld, share)),
         districts AS (
            SELECT ST_AsMVTGeom(ST_SimplifyPreserveTopology(d.geom_3857, $9), env.e, 4096, 64, true) AS geom,
                   d.code, d.name, c.count, c.withheld, c.share, t.target,
                   round(c.count::numeric / NULLIF(t.target, 0), 4)::float8 AS progress
            FROM districts d JOIN counts c ON c.id = d.id
            JOIN campaigns cp ON cp.id = d.campaign_id
            CROSS JOIN LATERAL (SELECT (cp.targets ->> d.code)::bigint AS target) t, env
            WHERE d.campaign_id = $1 AND d.geom_3857 && ST_Expand(env.e, $10)),
         cells AS (
            SELECT * FROM unnest($11::float8[], $12::float8[], $13::int8[]) AS c(x, y, count)),
         demand AS (
            SELECT ST_AsMVTGeom(ST_Point(x, y, 3857), env.e, 4096, 64, true) AS geom, count
            FROM cells, env)
         SELECT COALESCE((SELECT ST_AsMVT(districts, 'districts', 4096, 'geom') FROM districts WHERE geom IS NOT NULL), '')
             || COALESCE((SELECT ST_AsMVT(demand, 'demand', 4096, 'geom') FROM demand WHERE geom IS NOT NULL), '')",
        campaign.id,
        i32::from(tile.z()),
        // x, y < 2^22: they fit PostGIS's integers.
        tile.x() as i32,
        tile.y() as i32,
        &ids,
        shown as _,
        &withheld,
        shares as _,
        pixel,
        margin,
        &cells.iter().map(|c| c.0).collect::<Vec<_>>(),
        &cells.iter().map(|c| c.1).collect::<Vec<_>>(),
        &cells.iter().map(|c| c.2).collect::<Vec<_>>(),
    )
    .fetch_one(db)
    .await?;
    Ok(Bytes::from(mvt.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_addresses_are_checked() {
        assert!(TileCoord::new(0, 0, 0).is_ok());
        assert!(TileCoord::new(22, (1 << 22) - 1, 0).is_ok());
        assert_eq!(
            TileCoord::new(23, 0, 0).unwrap_err(),
            "zoom must be between 0 and 22, got 23"
        );
        assert_eq!(
            TileCoord::new(2, 4, 0).unwrap_err(),
            "at zoom 2, x and y must be between 0 and 3, got x=4, y=0"
        );
    }

    #[test]
    fn tile_bounds_cover_the_world() {
        let world = TileCoord::new(0, 0, 0).unwrap().bounds();
        assert_eq!(world, [-HALF_WORLD, -HALF_WORLD, HALF_WORLD, HALF_WORLD]);
        let nw = TileCoord::new(1, 0, 0).unwrap().bounds();
        assert_eq!(nw, [-HALF_WORLD, 0.0, 0.0, HALF_WORLD]);
    }
}
