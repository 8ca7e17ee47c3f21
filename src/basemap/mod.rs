//! The self-hosted basemap: streets, water, buildings and names from a PMTiles file the city
//! supplies (an OpenStreetMap extract in the Protomaps schema), its MapLibre style, and the
//! glyphs of its labels made from fonts on the machine. Nothing is asked of another host, and
//! nothing here reads the database: a basemap request tells nothing about households.
//!
//! [`Archive`] reads tiles by range (memory-mapped) with the `pmtiles` crate; [`style`] writes
//! the style; [`glyphs`] turns TrueType/OpenType fonts into MapLibre's PBF glyph ranges;
//! [`demo`] builds a small archive from the repository's data for `serve --demo`.

pub mod demo;
pub mod glyphs;
pub mod http;
pub mod style;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use pmtiles::{AsyncPmTilesReader, Compression, MmapBackend, TileType};
use sha2::{Digest, Sha256};

use crate::tiles::TileCoord;

/// Why a basemap could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BasemapError {
    /// The file is missing or unreadable, or is not a PMTiles v3 archive.
    #[error("cannot read {path} as a PMTiles v3 archive: {cause}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        cause: String,
    },
    /// The archive holds something else than vector tiles (raster, unknown).
    #[error("{path} holds {kind:?} tiles; civicmap serves vector (MVT) basemaps")]
    NotVector {
        /// The file.
        path: PathBuf,
        /// Its tile type.
        kind: TileType,
    },
    /// The tiles are compressed in a way civicmap does not pass on (brotli, zstd).
    #[error(
        "{path} has {compression:?}-compressed tiles; civicmap serves gzip or uncompressed tiles \
         (convert it with `pmtiles convert` or extract it again)"
    )]
    Compression {
        /// The file.
        path: PathBuf,
        /// Its tile compression.
        compression: Compression,
    },
    /// A tile could not be read (a truncated or corrupt file).
    #[error("cannot read tile {z}/{x}/{y} of the basemap: {cause}")]
    Read {
        /// Zoom.
        z: u8,
        /// Column.
        x: u32,
        /// Row.
        y: u32,
        /// What the reader said.
        cause: String,
    },
}

type Result<T, E = BasemapError> = std::result::Result<T, E>;

/// The licence line of OpenStreetMap data, shown with the map.
pub const ATTRIBUTION: &str = "© OpenStreetMap contributors, ODbL";

/// A PMTiles archive of vector tiles, opened once and read by range for every tile.
///
/// The file is memory-mapped: replace it by renaming a new file over it (then restart), never
/// by writing into it while a server has it open.
pub struct Archive {
    reader: AsyncPmTilesReader<MmapBackend>,
    path: PathBuf,
    /// A short hash of the archive's header, root directory and size: part of every ETag, so
    /// that another file gives other validators.
    id: String,
    gzip: bool,
    min_zoom: u8,
    max_zoom: u8,
    bounds: [f64; 4],
    center: [f64; 3],
    vector_layers: serde_json::Value,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("zooms", &(self.min_zoom, self.max_zoom))
            .finish_non_exhaustive()
    }
}

impl Archive {
    /// Opens `path`, checking that it is a PMTiles v3 archive of gzip or uncompressed vector
    /// tiles.
    pub async fn open(path: &Path) -> Result<Self> {
        let open_error = |cause: String| BasemapError::Open {
            path: path.to_owned(),
            cause,
        };
        let head = read_head(path)
            .await
            .map_err(|e| open_error(e.to_string()))?;
        let reader = AsyncPmTilesReader::new_with_path(path)
            .await
            .map_err(|e| open_error(e.to_string()))?;
        let header = reader.get_header();
        if header.tile_type != TileType::Mvt {
            return Err(BasemapError::NotVector {
                path: path.to_owned(),
                kind: header.tile_type,
            });
        }
        let gzip = match header.tile_compression {
            Compression::Gzip => true,
            Compression::None => false,
            compression => {
                return Err(BasemapError::Compression {
                    path: path.to_owned(),
                    compression,
                });
            }
        };
        let metadata: serde_json::Value = reader
            .get_metadata()
            .await
            .ok()
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default();
        let digest = Sha256::digest(&head);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            path: path.to_owned(),
            id,
            gzip,
            min_zoom: header.min_zoom,
            max_zoom: header.max_zoom.min(crate::tiles::MAX_ZOOM),
            bounds: [
                header.min_longitude,
                header.min_latitude,
                header.max_longitude,
                header.max_latitude,
            ],
            center: [
                header.center_longitude,
                header.center_latitude,
                f64::from(header.center_zoom),
            ],
            vector_layers: metadata
                .get("vector_layers")
                .cloned()
                .unwrap_or_else(|| serde_json::json!([])),
            reader,
        })
    }

    /// The file served.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the stored tiles are gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Lowest and highest zoom of the archive (the highest capped at [`crate::tiles::MAX_ZOOM`]).
    pub fn zooms(&self) -> (u8, u8) {
        (self.min_zoom, self.max_zoom)
    }

    /// `[west, south, east, north]` of the archive.
    pub fn bounds(&self) -> [f64; 4] {
        self.bounds
    }

    /// `[lon, lat, zoom]` the archive suggests to start at.
    pub fn center(&self) -> [f64; 3] {
        self.center
    }

    /// The archive's `vector_layers` (TileJSON), as its metadata gives them.
    pub fn vector_layers(&self) -> &serde_json::Value {
        &self.vector_layers
    }

    /// Whether the archive has tiles at zoom `z`.
    pub fn covers_zoom(&self, z: u8) -> bool {
        (self.min_zoom..=self.max_zoom).contains(&z)
    }

    /// Strong validator of the tile (or of its absence) at `coord`: the archive and the address.
    pub fn etag(&self, coord: TileCoord) -> String {
        format!("\"{}-{}-{}-{}\"", self.id, coord.z(), coord.x(), coord.y())
    }

    /// The tile at `coord` as stored (gzip-compressed when [`Archive::is_gzip`], else plain
    /// MVT), `None` when the archive has none there.
    pub async fn tile(&self, coord: TileCoord) -> Result<Option<Bytes>> {
        let (z, x, y) = (coord.z(), coord.x(), coord.y());
        let read_error = |cause: String| BasemapError::Read { z, x, y, cause };
        let at = pmtiles::TileCoord::new(z, x, y).map_err(|e| read_error(e.to_string()))?;
        let bytes = self
            .reader
            .get_tile(at)
            .await
            .map_err(|e| read_error(e.to_string()))?;
        Ok(bytes.filter(|b| !b.is_empty()))
    }
}

/// The first bytes of the file (header and root directory) and its size, which together tell
/// one archive from another.
async fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    let mut head = Vec::with_capacity(16_392);
    (&mut file).take(16_384).read_to_end(&mut head).await?;
    head.extend_from_slice(&size.to_le_bytes());
    Ok(head)
}

/// Gunzips a stored tile for a client that does not accept gzip.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(bytes.len() * 3);
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}
