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
mod households;
mod limits;
mod metrics;
mod moderation;
mod nginx;
mod outage;
mod padding;
mod privacy;
mod publication;
mod replicas;
mod report;
mod retention;
mod scale;
mod story;
mod submissions;
mod tiles;
