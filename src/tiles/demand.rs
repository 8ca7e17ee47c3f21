//! The estimates of the `demand` layer: the map's H3 hexagons, drawn on the map.
//!
//! The map and the H3 aggregates (`aggregates.{geojson,csv}?by=h3:{6..}`) are one family of
//! figures: the layer shows, at each zoom, the hexagons of one resolution with the estimates
//! the downloads give for them ([`crate::figures::estimates::hexagons`], released with
//! differential privacy), never finer than the campaign's map resolution. They are computed
//! once per release and shared by every tile.

use h3o::{CellIndex, LatLng, Resolution};

use crate::campaigns::Campaign;
use crate::figures::estimates::{self, Released};

use super::{HALF_WORLD, MAX_CELLS_PER_SIDE, TileCoord};

/// The resolutions the public sees, finest last.
const RESOLUTIONS: [Resolution; 5] = [
    Resolution::Six,
    Resolution::Seven,
    Resolution::Eight,
    Resolution::Nine,
    Resolution::Ten,
];

/// The published hexagons of a campaign's releases, by resolution: centre in Web Mercator
/// metres and estimate; and the finest resolution drawn.
#[derive(Debug, Default)]
pub struct Hexagons {
    by_resolution: [Vec<(f64, f64, i64)>; 5],
    /// The campaign's map resolution, and its public precision in metres.
    finest: Option<Resolution>,
    precision_m: f64,
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

    /// The hexagons of `campaign`'s releases (`None` before the first: none), at every
    /// resolution from 6 to its map's.
    pub fn of(released: Option<&Released>, campaign: &Campaign) -> Self {
        let finest = campaign.privacy.map_resolution;
        let k = i64::from(campaign.privacy.min_count);
        let cells: Vec<(CellIndex, i64)> = released
            .map(|released| {
                RESOLUTIONS
                    .iter()
                    .filter(|r| u8::from(**r) <= finest)
                    .flat_map(|&r| estimates::hexagons(released, finest, r, k))
                    .map(|h| (h.cell, h.count))
                    .collect()
            })
            .unwrap_or_default();
        let mut hexagons = Self::new(&cells);
        hexagons.finest = Resolution::try_from(finest).ok();
        hexagons.precision_m = f64::from(campaign.privacy.public_precision_m);
        hexagons
    }

    /// The hexagons drawn on `tile` (centres within the tile and `margin` metres around it):
    /// those of [`resolution_for`]'s resolution, none when the tile is too coarse for any.
    pub fn on(&self, tile: TileCoord, margin: f64) -> Vec<(f64, f64, i64)> {
        let Some(resolution) =
            resolution_for(tile, self.precision_m).map(|r| self.finest.map_or(r, |f| r.min(f)))
        else {
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
        let mut hexagons = Hexagons::new(&[(cell, 7), (cell.parent(Resolution::Six).unwrap(), 7)]);
        hexagons.precision_m = 50.0;
        let tile = tile_at(16, 2.2, 48.9);
        let drawn = hexagons.on(tile, 0.0);
        assert_eq!(drawn.len(), 1);
        assert_eq!(drawn[0].2, 7);
        let centre = mercator(LatLng::from(cell));
        assert_eq!((drawn[0].0, drawn[0].1), centre);
        let elsewhere = tile_at(16, 2.3, 48.9);
        assert!(hexagons.on(elsewhere, 0.0).is_empty());
        let coarse = tile_at(7, 2.2, 48.9);
        assert_eq!(hexagons.on(coarse, 0.0).len(), 1, "resolution 6 at z7");
        // A campaign whose map is at resolution 8 draws no finer, even at z16.
        hexagons.finest = Some(Resolution::Eight);
        assert!(
            hexagons.on(tile, 0.0).is_empty(),
            "no resolution-8 cell given"
        );
    }
}
