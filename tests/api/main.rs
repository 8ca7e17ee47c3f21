//! End-to-end tests of the API against a real PostgreSQL + PostGIS and a real HTTP server.
//! Run them with `make test`, which starts the test cluster and sets DATABASE_URL.

mod abuse;
mod addresses;
mod auth;
mod backup;
mod basemap;
mod bulk;
mod caching;
mod campaigns;
mod cdn;
mod cli;
mod concurrency;
mod corrections;
mod districts;
mod errors;
mod exports;
mod faults;
mod flood;
mod hardening;
mod helpers;
mod limits;
mod metrics;
mod moderation;
mod outage;
mod padding;
mod privacy;
mod publication;
mod retention;
mod sessions;
mod submissions;
mod tiles;
