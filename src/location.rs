//! Positions on the WGS 84 ellipsoid (EPSG:4326) that can only be built valid.

use serde::Serialize;

/// A longitude/latitude pair that is finite and in range. Building one is the only way to get
/// a position into the database, so no query ever sees NaN or an out-of-range coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WgsPoint {
    lon: f64,
    lat: f64,
}

/// Why a pair of numbers is not a position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointError {
    #[error("longitude must be a finite number between -180 and 180, got {0}")]
    Longitude(f64),
    #[error("latitude must be a finite number between -90 and 90, got {0}")]
    Latitude(f64),
}

impl WgsPoint {
    /// Checks that `lon` and `lat` are finite and within [-180, 180] and [-90, 90].
    pub fn new(lon: f64, lat: f64) -> Result<Self, PointError> {
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(PointError::Longitude(lon));
        }
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(PointError::Latitude(lat));
        }
        Ok(Self { lon, lat })
    }

    /// Longitude in degrees.
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// The H3 cell of resolution [`H3_RESOLUTION`] holding this position, as stored in
    /// `submissions.h3` (the cell's 64-bit index, which always fits an `i64`).
    pub fn h3_cell(self) -> i64 {
        let cell = h3o::LatLng::new(self.lat, self.lon)
            .expect("a WgsPoint is finite and in range")
            .to_cell(H3_RESOLUTION);
        // H3 indexes keep their top bit zero.
        u64::from(cell) as i64
    }
}

/// Resolution of the H3 cell stored with each submission; coarser aggregates use its parents.
pub const H3_RESOLUTION: h3o::Resolution = h3o::Resolution::Ten;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h3_cells_match_the_reference_implementation() {
        // From the H3 C library through its Python binding (h3 4.5.0):
        // h3.latlng_to_cell(48.8925, 2.2069, 10), h3.latlng_to_cell(-33.9, 151.2, 10).
        let nanterre = WgsPoint::new(2.2069, 48.8925).unwrap().h3_cell();
        assert_eq!(format!("{nanterre:x}"), "8a1fb4752a9ffff");
        let sydney = WgsPoint::new(151.2, -33.9).unwrap().h3_cell();
        assert_eq!(format!("{sydney:x}"), "8abe0e341477fff");
    }

    #[test]
    fn accepts_the_corners_of_the_world() {
        assert!(WgsPoint::new(-180.0, -90.0).is_ok());
        assert!(WgsPoint::new(180.0, 90.0).is_ok());
    }

    #[test]
    fn refuses_non_finite_and_out_of_range_coordinates() {
        assert!(matches!(
            WgsPoint::new(f64::NAN, 0.0),
            Err(PointError::Longitude(_))
        ));
        assert!(matches!(
            WgsPoint::new(f64::INFINITY, 0.0),
            Err(PointError::Longitude(_))
        ));
        assert!(matches!(
            WgsPoint::new(180.5, 0.0),
            Err(PointError::Longitude(_))
        ));
        assert!(matches!(
            WgsPoint::new(2.2, 90.01),
            Err(PointError::Latitude(_))
        ));
        assert!(matches!(
            WgsPoint::new(2.2, f64::NEG_INFINITY),
            Err(PointError::Latitude(_))
        ));
    }
}
