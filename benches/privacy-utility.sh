#!/usr/bin/env bash
# What the privacy budget costs in accuracy: a synthetic campaign shaped like Nanterre's (2,000
# households over its 11 districts, 10 weekly releases) released through the real mechanism
# (src/figures: the plan, OpenDP's sampler, the post-processing) many times at several budgets,
# its public estimates after the last release compared with the truth: mean and 95th percentile
# of the absolute errors of the splits by answer (districts of 100 contributions or more) and of
# the resolution-8 map, the map's rank correlation with the truth, the weekly series' error.
# Once with one public question (connection), once with the demo's three.
#
#   benches/privacy-utility.sh                    the table of docs/PRIVACY.md (ε = 0.5, 1, 2, 4)
#   benches/privacy-utility.sh --weeks 70         daily releases over the same ten weeks
#   benches/privacy-utility.sh --runs 50 --budgets 2 --households 20000
#
# Prints a Markdown table; no database, no network. Figures: docs/PRIVACY.md, docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--runs 30 --budgets 0.5,1,2,4)
cargo bench --quiet --bench privacy_utility -- "${args[@]}"
