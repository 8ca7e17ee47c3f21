//! What the privacy budget costs in accuracy, measured: a synthetic campaign shaped like
//! Nanterre's (2,000 households over its 11 districts, 10 weekly releases; see
//! `civicmap::figures::simulation`) is released through the real mechanism (plan, OpenDP's
//! sampler, post-processing) at several budgets, many times over, and the public estimates
//! after the last release are compared with the truth. Run by `benches/privacy-utility.sh`;
//! the figures go to docs/PRIVACY.md and docs/PERFORMANCE.md.
//!
//! `cargo bench --bench privacy_utility -- [--runs N] [--budgets 1,2,4] [--households N]
//! [--weeks N]`

use civicmap::figures::simulation::{self, Noise, Run, Town};

struct Args {
    runs: usize,
    budgets: Vec<f64>,
    households: usize,
    weeks: usize,
}

fn args() -> Args {
    let mut args = Args {
        runs: 20,
        budgets: vec![1.0, 2.0, 4.0],
        households: 2000,
        weeks: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match a.as_str() {
            "--runs" => args.runs = value().parse().expect("--runs N"),
            "--households" => args.households = value().parse().expect("--households N"),
            "--weeks" => args.weeks = value().parse().expect("--weeks N"),
            "--budgets" => {
                args.budgets = value()
                    .split(',')
                    .map(|b| b.parse().expect("--budgets 1,2,4"))
                    .collect()
            }
            // cargo bench passes --bench.
            _ => {}
        }
    }
    args
}

/// One run's measures.
#[derive(Default, Clone)]
struct Measures {
    /// |estimate − truth| of every split cell of districts with ≥ 100 contributions, and the
    /// same divided by the district's count.
    split_abs: Vec<f64>,
    split_rel: Vec<f64>,
    /// |estimate − truth| of every resolution-8 hexagon of the map (not listed: 0).
    map_abs: Vec<f64>,
    map_rank: f64,
    /// |estimate − truth| of each week of the series.
    series_abs: Vec<f64>,
}

fn run_once(
    town: &Town,
    households: &[simulation::Household],
    questions: usize,
    budget: f64,
    weeks: usize,
) -> Measures {
    let campaign = simulation::campaign(questions, false, budget);
    let mut run = Run::new(campaign, town.clone());
    let mut series_truth = Vec::new();
    for week in 0..weeks {
        let arrivals: Vec<&simulation::Household> =
            households.iter().filter(|h| h.period == week).collect();
        series_truth.push(arrivals.len() as f64);
        run.release(&arrivals, Noise::On).expect("noise");
    }
    let mut m = Measures::default();
    // Splits by each public question, districts of at least 100.
    for split in run.plan.splits.clone() {
        let published = run.splits(&split.field);
        for (d, cells) in published.iter().enumerate().take(town.shapes.len()) {
            let n = run.live[d].count;
            if n < 100 {
                continue;
            }
            for (value, cell) in split.values.iter().zip(cells) {
                let truth = households
                    .iter()
                    .filter(|h| h.district == d)
                    .filter(|h| answer(h, &split.field) == *value)
                    .count() as f64;
                let estimate = cell.count.unwrap_or(0) as f64;
                m.split_abs.push((estimate - truth).abs());
                m.split_rel.push((estimate - truth).abs() / n as f64);
            }
        }
    }
    // The map at its resolution.
    let resolution = h3o::Resolution::Eight;
    let mut truth: std::collections::BTreeMap<h3o::CellIndex, f64> =
        run.domain.parts.iter().map(|(_, c)| (*c, 0.0)).collect();
    for h in households {
        let cell = h3o::LatLng::new(h.lat, h.lon).unwrap().to_cell(resolution);
        *truth.entry(cell).or_default() += 1.0;
    }
    let published: std::collections::BTreeMap<h3o::CellIndex, f64> = run
        .hexagons(resolution)
        .into_iter()
        .map(|h| (h.cell, h.count as f64))
        .collect();
    let (t, e): (Vec<f64>, Vec<f64>) = truth
        .iter()
        .map(|(c, t)| (*t, published.get(c).copied().unwrap_or(0.0)))
        .unzip();
    m.map_abs = t.iter().zip(&e).map(|(t, e)| (t - e).abs()).collect();
    m.map_rank = simulation::rank_correlation(&t, &e);
    for (p, truth) in run.released.series.iter().zip(&series_truth) {
        m.series_abs.push((p.noisy.max(0) as f64 - truth).abs());
    }
    m
}

fn answer(h: &simulation::Household, field: &str) -> String {
    match h.answers.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

fn quantile(x: &[f64], q: f64) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn median(x: &[f64]) -> f64 {
    quantile(x, 0.5)
}

fn main() {
    let args = args();
    let town = Town::nanterre();
    let sizes = simulation::sizes(&town, args.households);
    println!(
        "Synthetic Nanterre campaign: {} households over {} districts (smallest {}, largest {}), {} releases (one per period: a week, or a day over ten weeks with `--weeks 70`), {} runs per budget; medians over runs.\n",
        sizes.iter().sum::<usize>(),
        sizes.len(),
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        args.weeks,
        args.runs
    );
    println!(
        "| public questions | ε | ε of a question's splits | splits: mean \\|error\\| | splits: p95 \\|error\\| | splits: p95 \\|error\\| / district | splits within ±10 % | map r8: mean \\|error\\| | map r8: p95 \\|error\\| | map rank correlation | weekly series: mean \\|error\\| |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for questions in [1, 3] {
        for &budget in &args.budgets {
            let started = std::time::Instant::now();
            let mut runs = Vec::new();
            for r in 0..args.runs {
                // A new campaign each run (another seed), so that the figures are not one
                // town's accident.
                let households = simulation::households(&town, &sizes, args.weeks, 2026 + r as u64);
                runs.push(run_once(&town, &households, questions, budget, args.weeks));
            }
            let per =
                |f: &dyn Fn(&Measures) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let plan = civicmap::figures::budget::Plan::of(&simulation::campaign(
                questions, false, budget,
            ));
            println!(
                "| {questions} | {budget} | {:.2} | {:.1} | {:.1} | {:.1} % | {:.0} % | {:.1} | {:.1} | {:.2} | {:.1} |",
                plan.splits[0].measure.epsilon,
                per(&|m| mean(&m.split_abs)),
                per(&|m| quantile(&m.split_abs, 0.95)),
                100.0 * per(&|m| quantile(&m.split_rel, 0.95)),
                100.0
                    * per(
                        &|m| m.split_rel.iter().filter(|r| **r <= 0.10).count() as f64
                            / m.split_rel.len().max(1) as f64
                    ),
                per(&|m| mean(&m.map_abs)),
                per(&|m| quantile(&m.map_abs, 0.95)),
                per(&|m| m.map_rank),
                per(&|m| mean(&m.series_abs)),
            );
            eprintln!(
                "  ({questions} question(s), ε = {budget}: {:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
