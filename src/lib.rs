//! civicmap: an embeddable collaborative map for cities.
//!
//! Citizens drop pins on a campaign's map; the pins are stored in PostGIS, counted per district
//! in the same transaction, and published only in aggregated, privacy-preserving forms.
//! See `docs/ARCHITECTURE.md` for a map of the modules.

pub mod addresses;
pub mod audit;
pub mod auth;
pub mod basemap;
pub mod campaigns;
pub mod cli;
pub mod database;
pub mod demo;
pub mod districts;
pub mod exports;
pub mod figures;
pub mod http;
pub mod import;
pub mod location;
pub mod moderation;
pub mod notify;
pub mod report;
pub mod retention;
pub mod safety;
pub mod story;
pub mod submissions;
pub mod synthetic;
#[cfg(test)]
pub(crate) mod testing;
pub mod tiles;
pub mod validation;
