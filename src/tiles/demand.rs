//! The counts of the `demand` layer: the H3 hexagons the public downloads, drawn on the map.
//!
//! The map and the H3 aggregates (`aggregates.{geojson,csv}?by=h3:{6..10}`) are one family of
//! figures: the layer shows, at each zoom, the published cells of one resolution, with the
//! counts the downloads give for them ([`crate::exports::published_hexagons`]). Two families
//! of places that do not nest (squares and hexagons) could be compared with each other, a
//! hexagon less the squares inside it leaving a few households on its rim; one family,
//! protected once, leaves nothing to compare. The cells are read once per campaign publication
//! and shared by every tile.

use h3o::{CellIndex, LatLng, Resolution};
use sqlx::PgPool;

use super::TileError;
use crate::campaigns::Campaign;

use super::{HALF_WORLD, MAX_CELLS_PER_SIDE, TileCoord};

/// The resolutions the public sees, finest last.
const RESOLUTIONS: [Resolution; 5] = [
    Resolution::Six,
    Resolution::Seven,
    Resolution::Eight,
    Resolution::Nine,
    Resolution::Ten,
];

/// The published hexagons of a campaign's publication, by resolution: centre in Web Mercator
/// metres and count.
#[derive(Debug, Default)]
pub struct Hexagons {
    by_resolution: [Vec<(f64, f64, i64)>; 5],
}

impl Hexagons {
    /// Places the published `cells` (any resolution from 6 to 10) at their centres.
    pub fn new(cells: &[(CellIndex, i64)]) -> Self {
        let mut hexagons = Self::default();
        for &(cell, count) in cells {
            let Some(slot) = RESOLUTIONS.iter().position(|r| *r == cell.resolution()) else {
                continue;
            };
            let (x, y) = mercator(LatLng::from(cell));
            hexagons.by_resolution[slot].push((x, y, count));
        }
        hexagons
    }

    /// The published hexagons of `campaign` at publication `snapshot`.
    pub async fn load(
        db: &PgPool,
        campaign: &Campaign,
        snapshot: time::OffsetDateTime,
    ) -> Result<Self, TileError> {
        let cells = crate::exports::published_hexagons(db, campaign, Some(snapshot)).await?;
        Ok(Self::new(&cells))
    }

    /// The hexagons drawn on `tile` (centres within the tile and `margin` metres around it):
    /// those of [`resolution_for`]'s resolution, none when the tile is too coarse for any.
    pub fn on(&self, tile: TileCoord, precision_m: f64, margin: f64) -> Vec<(f64, f64, i64)> {
        let Some(resolution) = resolution_for(tile, precision_m) else {
            return Vec::new();
        };
        let slot = RESOLUTIONS
            .iter()
            .position(|r| *r == resolution)
            .expect("resolution_for picks one of RESOLUTIONS");
        let [xmin, ymin, xmax, ymax] = tile.bounds();
        self.by_resolution[slot]
            .iter()
            .copied()
            .filter(|&(x, y, _)| {
                x >= xmin - margin && x <= xmax + margin && y >= ymin - margin && y <= ymax + margin
            })
            .collect()
    }
}

/// The resolution drawn on `tile`: the finest of 6 to 10 whose hexagons are no smaller than
/// the campaign's public precision (a square of `precision_m` metres) and of which at most
/// [`MAX_CELLS_PER_SIDE`] fit across the tile, so that no tile grows with the data. `None`
/// when even resolution 6 is too fine for the tile (zooms below about 7): the districts layer
/// alone is drawn there.
pub fn resolution_for(tile: TileCoord, precision_m: f64) -> Option<Resolution> {
    // Ground metres per Web Mercator metre at the tile's centre.
    let [_, ymin, _, ymax] = tile.bounds();
    let lat = (2.0 * (((ymin + ymax) / 2.0) / EARTH_RADIUS).exp().atan()
        - std::f64::consts::FRAC_PI_2)
        .cos();
    let across = tile.size() * lat / MAX_CELLS_PER_SIDE;
    RESOLUTIONS.iter().rev().copied().find(|r| {
        // A hexagon's width across its flat sides is √3 times its edge.
        r.area_m2() >= precision_m * precision_m && 3f64.sqrt() * r.edge_length_m() >= across
    })
}

/// Radius of the sphere of Web Mercator (EPSG:3857).
const EARTH_RADIUS: f64 = 6_378_137.0;

/// Web Mercator metres of a position.
fn mercator(ll: LatLng) -> (f64, f64) {
    let x = ll.lng() / 180.0 * HALF_WORLD;
    let y = (std::f64::consts::FRAC_PI_4 + ll.lat().to_radians() / 2.0)
        .tan()
        .ln()
        * EARTH_RADIUS;
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile_at(z: u32, lon: f64, lat: f64) -> TileCoord {
        let n = f64::from(1u32 << z);
        let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
        let r = lat.to_radians();
        let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor()
            as u32;
        TileCoord::new(z, x, y).unwrap()
    }

    #[test]
    fn finer_zooms_draw_finer_hexagons_never_finer_than_the_precision() {
        let at = |z| resolution_for(tile_at(z, 2.2, 48.9), 50.0);
        assert_eq!(at(5), None, "a tile of a country holds too many hexagons");
        let mut last = None;
        for z in 7..=22 {
            let r = at(z).expect("resolution 6 fits from zoom 7");
            assert!(last.is_none_or(|l| r >= l), "z{z}: {r:?} after {last:?}");
            last = Some(r);
        }
        assert_eq!(at(16), Some(Resolution::Ten));
        assert_eq!(at(22), Some(Resolution::Ten));
        // A coarse public precision keeps street zooms coarse too.
        let coarse = resolution_for(tile_at(18, 2.2, 48.9), 400.0);
        assert_eq!(coarse, Some(Resolution::Eight));
    }

    #[test]
    fn no_tile_holds_more_than_its_bound_of_hexagons_across() {
        for z in 0..=22 {
            let tile = tile_at(z, 2.2, 48.9);
            if let Some(r) = resolution_for(tile, 50.0) {
                let ground = tile.size() * 48.9f64.to_radians().cos();
                let across = ground / (3f64.sqrt() * r.edge_length_m());
                assert!(across <= MAX_CELLS_PER_SIDE * 1.02, "z{z}: {across}");
            }
        }
    }

    #[test]
    fn hexagons_are_drawn_at_their_centres_on_the_tiles_that_hold_them() {
        let cell = LatLng::new(48.9, 2.2).unwrap().to_cell(Resolution::Ten);
        let hexagons = Hexagons::new(&[(cell, 7), (cell.parent(Resolution::Six).unwrap(), 7)]);
        let tile = tile_at(16, 2.2, 48.9);
        let drawn = hexagons.on(tile, 50.0, 0.0);
        assert_eq!(drawn.len(), 1);
        assert_eq!(drawn[0].2, 7);
        let centre = mercator(LatLng::from(cell));
        assert_eq!((drawn[0].0, drawn[0].1), centre);
        let elsewhere = tile_at(16, 2.3, 48.9);
        assert!(hexagons.on(elsewhere, 50.0, 0.0).is_empty());
        let coarse = tile_at(7, 2.2, 48.9);
        assert_eq!(
            hexagons.on(coarse, 50.0, 0.0).len(),
            1,
            "resolution 6 at z7"
        );
    }
}
