//! The basemap's MapLibre style, for archives in the Protomaps basemap schema (v4: layers
//! `earth`, `landuse`, `water`, `roads`, `buildings`, `boundaries`, `places`, with `kind` and
//! `name` on their features), which is what `pmtiles extract` of a Protomaps build yields.
//!
//! Sober greys, so that the campaign's choropleth laid over it stays readable; no icons (no
//! sprite); labels in Noto Sans, whose glyphs this server makes ([`super::glyphs`]). Every
//! URL in it is this server's, as the client reached it.

use serde_json::{Value, json};

use super::{ATTRIBUTION, Archive};

/// Font of street and district names.
pub const REGULAR: &str = "Noto Sans Regular";
/// Font of the city's name.
pub const BOLD: &str = "Noto Sans Bold";
/// Font of water names.
pub const ITALIC: &str = "Noto Sans Italic";

/// The name of the basemap's source in the style.
pub const SOURCE: &str = "basemap";

/// The style document, its URLs under `base` (`scheme://host`).
pub fn style(base: &str, archive: &Archive) -> Value {
    let (minzoom, maxzoom) = archive.zooms();
    let name = json!(["coalesce", ["get", "name:fr"], ["get", "name"]]);
    let line_width = |low: f64, high: f64| {
        json!([
            "interpolate",
            ["exponential", 1.6],
            ["zoom"],
            12,
            low,
            18,
            high
        ])
    };
    let water_label = json!({"text-color": "#52657a", "text-halo-color": "rgba(255,255,255,0.8)", "text-halo-width": 1});
    let halo = json!({"text-color": "#4b5563", "text-halo-color": "rgba(255,255,255,0.9)", "text-halo-width": 1.4});
    json!({
        "version": 8,
        "name": "civicmap basemap",
        "glyphs": format!("{base}/basemap/fonts/{{fontstack}}/{{range}}.pbf"),
        "sources": {
            SOURCE: {
                "type": "vector",
                "tiles": [format!("{base}/basemap/{{z}}/{{x}}/{{y}}.mvt")],
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "bounds": archive.bounds(),
                "attribution": ATTRIBUTION,
            }
        },
        "layers": [
            // The same grey as `earth`: no edge shows where an extract ends.
            {"id": "background", "type": "background", "paint": {"background-color": "#f0f1f3"}},
            {"id": "earth", "type": "fill", "source": SOURCE, "source-layer": "earth",
             "paint": {"fill-color": "#f0f1f3"}},
            {"id": "landuse-green", "type": "fill", "source": SOURCE, "source-layer": "landuse",
             "filter": ["in", ["get", "kind"], ["literal", ["park", "forest", "wood", "grass", "garden", "cemetery", "golf_course", "nature_reserve", "playground", "pitch"]]],
             "paint": {"fill-color": "#e2e8df"}},
            {"id": "landuse-other", "type": "fill", "source": SOURCE, "source-layer": "landuse",
             "filter": ["in", ["get", "kind"], ["literal", ["hospital", "school", "university", "college", "industrial", "railway"]]],
             "paint": {"fill-color": "#eaebee"}},
            {"id": "water", "type": "fill", "source": SOURCE, "source-layer": "water",
             "filter": ["==", ["geometry-type"], "Polygon"],
             "paint": {"fill-color": "#cdd6df"}},
            {"id": "water-lines", "type": "line", "source": SOURCE, "source-layer": "water",
             "filter": ["==", ["geometry-type"], "LineString"],
             "paint": {"line-color": "#cdd6df", "line-width": line_width(1.0, 6.0)}},
            {"id": "buildings", "type": "fill", "source": SOURCE, "source-layer": "buildings",
             "minzoom": 13,
             "filter": ["!=", ["get", "kind"], "address"],
             "paint": {"fill-color": "#dfe2e6", "fill-outline-color": "#d2d6db"}},
            {"id": "roads-minor-casing", "type": "line", "source": SOURCE, "source-layer": "roads",
             "minzoom": 13,
             "filter": ["in", ["get", "kind"], ["literal", ["minor_road", "other"]]],
             "layout": {"line-cap": "round", "line-join": "round"},
             "paint": {"line-color": "#d3d7dc", "line-width": line_width(1.5, 16.0)}},
            {"id": "roads-path", "type": "line", "source": SOURCE, "source-layer": "roads",
             "minzoom": 14,
             "filter": ["==", ["get", "kind"], "path"],
             "paint": {"line-color": "#c9cdd3", "line-width": 1, "line-dasharray": [2, 2]}},
            {"id": "roads-minor", "type": "line", "source": SOURCE, "source-layer": "roads",
             "minzoom": 12,
             "filter": ["in", ["get", "kind"], ["literal", ["minor_road", "other"]]],
             "layout": {"line-cap": "round", "line-join": "round"},
             "paint": {"line-color": "#ffffff", "line-width": line_width(0.8, 13.0)}},
            {"id": "roads-major-casing", "type": "line", "source": SOURCE, "source-layer": "roads",
             "filter": ["in", ["get", "kind"], ["literal", ["major_road", "highway"]]],
             "layout": {"line-cap": "round", "line-join": "round"},
             "paint": {"line-color": "#c4c9cf", "line-width": line_width(2.5, 22.0)}},
            {"id": "roads-major", "type": "line", "source": SOURCE, "source-layer": "roads",
             "filter": ["in", ["get", "kind"], ["literal", ["major_road", "highway"]]],
             "layout": {"line-cap": "round", "line-join": "round"},
             "paint": {"line-color": "#fbfbfc", "line-width": line_width(1.5, 18.0)}},
            {"id": "rail", "type": "line", "source": SOURCE, "source-layer": "roads",
             "filter": ["==", ["get", "kind"], "rail"],
             "paint": {"line-color": "#b8bdc4", "line-width": 1.2, "line-dasharray": [3, 2]}},
            {"id": "boundaries", "type": "line", "source": SOURCE, "source-layer": "boundaries",
             "paint": {"line-color": "#a9b0b8", "line-width": 1, "line-dasharray": [4, 2]}},
            {"id": "water-names", "type": "symbol", "source": SOURCE, "source-layer": "water",
             "minzoom": 13,
             "filter": ["==", ["geometry-type"], "Point"],
             "layout": {"text-field": name, "text-font": [ITALIC], "text-size": 12},
             "paint": water_label},
            {"id": "river-names", "type": "symbol", "source": SOURCE, "source-layer": "water",
             "minzoom": 13,
             "filter": ["==", ["geometry-type"], "LineString"],
             "layout": {"text-field": name, "text-font": [ITALIC], "text-size": 12, "symbol-placement": "line"},
             "paint": water_label},
            {"id": "road-names", "type": "symbol", "source": SOURCE, "source-layer": "roads",
             "minzoom": 14,
             "filter": ["has", "name"],
             "layout": {"text-field": name, "text-font": [REGULAR], "symbol-placement": "line",
                        "text-size": ["interpolate", ["linear"], ["zoom"], 14, 10, 18, 14],
                        "text-max-angle": 30, "symbol-spacing": 300},
             "paint": halo},
            {"id": "neighbourhood-names", "type": "symbol", "source": SOURCE, "source-layer": "places",
             "minzoom": 12,
             "filter": ["in", ["get", "kind"], ["literal", ["neighbourhood", "macrohood"]]],
             "layout": {"text-field": name, "text-font": [REGULAR], "text-size": 12,
                        "text-transform": "uppercase", "text-letter-spacing": 0.08, "text-max-width": 8},
             "paint": {"text-color": "#6b7280", "text-halo-color": "rgba(255,255,255,0.9)", "text-halo-width": 1.4}},
            {"id": "locality-names", "type": "symbol", "source": SOURCE, "source-layer": "places",
             "filter": ["==", ["get", "kind"], "locality"],
             "layout": {"text-field": name, "text-font": [BOLD],
                        "text-size": ["interpolate", ["linear"], ["zoom"], 8, 12, 14, 18]},
             "paint": {"text-color": "#374151", "text-halo-color": "rgba(255,255,255,0.9)", "text-halo-width": 1.6}},
        ],
    })
}

/// The fonts the style names (each must be in the fonts folder for its labels to show).
pub const FONTS: [&str; 3] = [REGULAR, BOLD, ITALIC];
