//! Criterion benchmarks of tile building and encoding.
//!
//! Without a database: planning the aggregation of every zoom, k-suppression, gzip of a tile.
//! With `DATABASE_URL` set (a PostGIS database civicmap may write to, e.g. the one
//! `civicmap db start` prints), also building real tiles of the demo campaign with 20,000 extra
//! synthetic households, cache bypassed:
//!
//!     DATABASE_URL=$(target/release/civicmap db start --data-dir target/bench-criterion) cargo bench --bench tiles

use std::hint::black_box;
use std::sync::Arc;

use civicmap::figures::Tally;
use civicmap::tiles::TileCoord;
use civicmap::tiles::demand::resolution_for;
use criterion::{Criterion, criterion_group, criterion_main};

fn tile_of(lon: f64, lat: f64, z: u32) -> TileCoord {
    let n = f64::from(1u32 << z);
    let r = lat.to_radians();
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let y =
        ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u32;
    TileCoord::new(z, x, y).expect("a tile inside the world")
}

fn pure(c: &mut Criterion) {
    c.bench_function("H3 resolution plan, zooms 0 to 22", |b| {
        b.iter(|| {
            for z in 0..=22 {
                black_box(resolution_for(tile_of(2.2, 48.9, z), black_box(50.0)));
            }
        })
    });
    let districts: Vec<Tally> = (0..12).map(|i| Tally::distinct((i * 7) % 23)).collect();
    c.bench_function("k-suppression, 12 cells", |b| {
        b.iter(|| civicmap::figures::suppress(black_box(&districts), 5))
    });
    let many: Vec<Tally> = (0..500).map(|i| Tally::distinct((i * 37) % 41)).collect();
    c.bench_function("k-suppression, 500 cells", |b| {
        b.iter(|| civicmap::figures::suppress(black_box(&many), 5))
    });
    // A 20 KB tile of mostly distinct varints compresses like a real street tile.
    let tile: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x3f)
        .collect();
    c.bench_function("gzip of a 20 KB tile", |b| {
        b.iter(|| civicmap::tiles::gzip(black_box(&tile)).unwrap())
    });
}

fn with_database(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not set: skipping the tile-building benchmarks");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (pool, campaign) = runtime.block_on(async {
        let pool = civicmap::database::pool(url.parse().expect("a PostgreSQL URL"), 4);
        civicmap::database::migrate(&pool).await.unwrap();
        let (campaign, created) = civicmap::demo::load(&pool).await.unwrap();
        if created {
            civicmap::demo::add_points(&pool, 20_000, 7).await.unwrap();
        }
        let campaign = civicmap::campaigns::get(&pool, &campaign.slug)
            .await
            .unwrap();
        (pool, Arc::new(campaign))
    });
    for z in [10, 13, 16] {
        let tile = tile_of(2.2066, 48.8924, z);
        c.bench_function(&format!("build a z{z} tile of the demo campaign"), |b| {
            b.to_async(&runtime).iter(|| async {
                civicmap::tiles::build(&pool, &campaign, tile)
                    .await
                    .unwrap()
            })
        });
    }
}

criterion_group!(benches, pure, with_database);
criterion_main!(benches);
