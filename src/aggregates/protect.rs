//! k-suppression across figures that are linked by sums.
//!
//! Published figures are linked: a district's count is the sum of its breakdown by answer, an
//! H3 cell of resolution 8 is the sum of its children, the campaign's total is the sum of its
//! districts. Withholding each small figure on its own is not enough: anyone can subtract the
//! published parts of a sum from its published total and recover what was withheld.
//!
//! Every family of figures civicmap publishes is built so that each figure takes part in at
//! most two sums: as a part of one and as the total of another (a table with its margins, a
//! tree of areas). Such a family is a graph: each sum is a node (its total minus its parts is
//! zero), each figure an edge between the two sums it takes part in (or to the [`FREE`] node
//! when it is in only one). A withheld figure can then be recovered exactly when it is a
//! *bridge* of the graph of withheld figures: when no cycle of withheld figures runs through
//! it. [`Network::protect`] withholds, for each withheld figure that is a bridge, the cheapest
//! path of published figures that closes a cycle through it, until none is left. That is the
//! exact condition, not a rule of thumb: the tests check it against Gaussian elimination.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Tally;

/// The node of figures that take part in a single sum.
pub const FREE: usize = 0;

/// A family of linked figures.
#[derive(Debug, Clone)]
pub struct Network {
    nodes: usize,
    /// The two sums each figure takes part in.
    ends: Vec<(usize, usize)>,
    values: Vec<i64>,
    /// Published elsewhere under their own protection: never withheld here.
    fixed: Vec<bool>,
    withheld: Vec<bool>,
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// A family with no figures; node [`FREE`] exists already.
    pub fn new() -> Self {
        Self {
            nodes: 1,
            ends: Vec::new(),
            values: Vec::new(),
            fixed: Vec::new(),
            withheld: Vec::new(),
        }
    }

    /// A new sum; returns its node.
    pub fn sum(&mut self) -> usize {
        self.nodes += 1;
        self.nodes - 1
    }

    /// Adds a figure of `tally`, the total of sum `total_of` and a part of sum `part_of`
    /// ([`FREE`] for either when there is none), withheld when it has fewer than `k` distinct
    /// contributors. Returns its index.
    pub fn figure(&mut self, tally: Tally, total_of: usize, part_of: usize, k: i64) -> usize {
        self.ends.push((total_of, part_of));
        self.values.push(tally.count);
        self.fixed.push(false);
        self.withheld.push(!tally.reaches(k));
        self.values.len() - 1
    }

    /// Withholds figure `i` whatever its value (a sum dominated by one contribution): like a
    /// small figure, it is then protected by withholding others if needed.
    pub fn withhold(&mut self, i: usize) {
        self.withheld[i] = true;
    }

    /// Marks figure `i` as published elsewhere, shown or withheld there.
    pub fn fix(&mut self, i: usize, withheld: bool) {
        self.fixed[i] = true;
        self.withheld[i] = withheld;
    }

    /// Withholds more figures until no withheld, non-zero figure can be recovered from the
    /// published ones; returns, per figure, whether it is withheld.
    pub fn protect(mut self) -> Vec<bool> {
        loop {
            let exposed = self
                .bridges()
                .into_iter()
                .filter(|&e| self.values[e] != 0 && !self.fixed[e])
                .min_by_key(|&e| (self.values[e], e));
            let Some(edge) = exposed else {
                return self.withheld;
            };
            match self.cheapest_cycle_through(edge) {
                Some(path) => {
                    for e in path {
                        self.withheld[e] = true;
                    }
                }
                // Only figures published elsewhere could close a cycle: this one cannot be
                // protected by withholding more here, so it is withheld and left as it is
                // (the families are built so that this does not happen; tests check it).
                None => {
                    self.fixed[edge] = true;
                }
            }
        }
    }

    /// Withheld figures that are bridges of the graph of withheld figures.
    fn bridges(&self) -> Vec<usize> {
        let mut adjacent: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.nodes];
        for (e, &(a, b)) in self.ends.iter().enumerate() {
            if self.withheld[e] {
                adjacent[a].push((b, e));
                adjacent[b].push((a, e));
            }
        }
        // Iterative Tarjan: discovery times and low links; an edge to a child whose low link
        // is after the parent's discovery is a bridge. Parallel edges are told apart by id.
        let mut order = vec![usize::MAX; self.nodes];
        let mut low = vec![0; self.nodes];
        let mut bridges = Vec::new();
        let mut time = 0;
        for start in 0..self.nodes {
            if order[start] != usize::MAX {
                continue;
            }
            order[start] = time;
            low[start] = time;
            time += 1;
            // (node, edge it was reached by, next neighbour to look at)
            let mut stack = vec![(start, usize::MAX, 0usize)];
            while let Some(&mut (node, via, ref mut next)) = stack.last_mut() {
                if let Some(&(to, e)) = adjacent[node].get(*next) {
                    *next += 1;
                    if e == via {
                        continue;
                    }
                    if order[to] == usize::MAX {
                        order[to] = time;
                        low[to] = time;
                        time += 1;
                        stack.push((to, e, 0));
                    } else {
                        low[node] = low[node].min(order[to]);
                    }
                } else {
                    stack.pop();
                    if let Some(&(parent, _, _)) = stack.last() {
                        low[parent] = low[parent].min(low[node]);
                        if low[node] > order[parent] {
                            bridges.push(via);
                        }
                    }
                }
            }
        }
        bridges
    }

    /// The published, not fixed figures to withhold so that a cycle of withheld figures runs
    /// through `edge`, at the least total value (Dijkstra; withheld figures cost nothing).
    fn cheapest_cycle_through(&self, edge: usize) -> Option<Vec<usize>> {
        let (from, to) = self.ends[edge];
        let mut adjacent: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.nodes];
        for (e, &(a, b)) in self.ends.iter().enumerate() {
            if e != edge && (self.withheld[e] || !self.fixed[e]) {
                adjacent[a].push((b, e));
                adjacent[b].push((a, e));
            }
        }
        let cost = |e: usize| {
            if self.withheld[e] {
                0
            } else {
                // Every published figure costs at least 1 so that paths stay short.
                self.values[e].max(0) + 1
            }
        };
        let mut best = vec![i64::MAX; self.nodes];
        let mut came_by = vec![usize::MAX; self.nodes];
        let mut heap = BinaryHeap::new();
        best[from] = 0;
        heap.push(Reverse((0, from)));
        while let Some(Reverse((d, node))) = heap.pop() {
            if d > best[node] {
                continue;
            }
            if node == to {
                break;
            }
            for &(next, e) in &adjacent[node] {
                let nd = d + cost(e);
                if nd < best[next] {
                    best[next] = nd;
                    came_by[next] = e;
                    heap.push(Reverse((nd, next)));
                }
            }
        }
        if best[to] == i64::MAX {
            return None;
        }
        let mut path = Vec::new();
        let mut node = to;
        while node != from {
            let e = came_by[node];
            if !self.withheld[e] {
                path.push(e);
            }
            let (a, b) = self.ends[e];
            node = if a == node { b } else { a };
        }
        Some(path)
    }
}

/// Protection of a tree of figures (each the sum of its children, the root the total),
/// in one pass from the root down.
///
/// A tree is a family whose graph (see [`Network`]) has no cycle but through the free node:
/// a withheld figure lies on a cycle of withheld figures, hence cannot be recovered, exactly
/// when no sum holds a single withheld non-zero figure (counting the sum's own figure with
/// its children's; empty figures are never listed, so they count as known). Going down from
/// the root, each sum that holds exactly one withholds its smallest published non-zero child.
/// `parents[i]` is the figure whose sum `i` is part of (`None` for the root, whose status is
/// `root_withheld`). Figures with fewer than `k` distinct contributors are withheld; the
/// result says which are.
pub fn protect_tree(
    tallies: &[Tally],
    parents: &[Option<usize>],
    root_withheld: bool,
    k: i64,
) -> Vec<bool> {
    let n = tallies.len();
    let values: Vec<i64> = tallies.iter().map(|t| t.count).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        match parent {
            Some(p) => children[*p].push(i),
            None => roots.push(i),
        }
    }
    let mut withheld: Vec<bool> = tallies.iter().map(|t| !t.reaches(k)).collect();
    let mut queue = std::collections::VecDeque::new();
    for &root in &roots {
        withheld[root] = root_withheld;
        queue.push_back(root);
    }
    while let Some(node) = queue.pop_front() {
        let kids = &children[node];
        if !kids.is_empty() {
            // Empty figures are never listed: they count as known, not as withheld.
            let hidden = usize::from(withheld[node] && values[node] > 0)
                + kids
                    .iter()
                    .filter(|&&c| withheld[c] && values[c] > 0)
                    .count();
            if hidden == 1 {
                let next = kids
                    .iter()
                    .copied()
                    .filter(|&c| !withheld[c] && values[c] > 0)
                    .min_by_key(|&c| (values[c], c));
                if let Some(c) = next {
                    withheld[c] = true;
                }
            }
        }
        queue.extend(kids.iter().copied());
    }
    withheld
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Whether figure `target` is determined by the published figures and the sums: Gaussian
    /// elimination over the rationals (f64 on small integers), independent of the graph view.
    fn determined(net: &Network, withheld: &[bool], target: usize) -> bool {
        let n = net.values.len();
        let mut rows: Vec<Vec<f64>> = Vec::new();
        for node in 1..net.nodes {
            let mut row = vec![0.0; n];
            for (e, &(total_of, part_of)) in net.ends.iter().enumerate() {
                if total_of == node {
                    row[e] += 1.0;
                }
                if part_of == node {
                    row[e] -= 1.0;
                }
            }
            rows.push(row);
        }
        for i in (0..n).filter(|&i| !withheld[i]) {
            let mut row = vec![0.0; n];
            row[i] = 1.0;
            rows.push(row);
        }
        let rank = |rows: &[Vec<f64>]| -> usize {
            let mut m = rows.to_vec();
            let mut rank = 0;
            for col in 0..n {
                let Some(p) = (rank..m.len()).find(|&r| m[r][col].abs() > 1e-9) else {
                    continue;
                };
                m.swap(rank, p);
                for r in 0..m.len() {
                    if r != rank && m[r][col].abs() > 1e-9 {
                        let f = m[r][col] / m[rank][col];
                        let pivot = m[rank].clone();
                        for (x, p) in m[r].iter_mut().zip(&pivot) {
                            *x -= f * p;
                        }
                    }
                }
                rank += 1;
            }
            rank
        };
        let mut with_target = rows.clone();
        let mut unit = vec![0.0; n];
        unit[target] = 1.0;
        with_target.push(unit);
        rank(&rows) == rank(&with_target)
    }

    fn check(net: &Network) -> Vec<bool> {
        let withheld = net.clone().protect();
        for i in 0..net.values.len() {
            assert!(withheld[i] || net.values[i] >= 3 || net.fixed[i]);
            if withheld[i] && net.values[i] > 0 {
                assert!(
                    !determined(net, &withheld, i),
                    "figure {i} ({}) can be recovered: {:?} / {withheld:?}",
                    net.values[i],
                    net.values
                );
            }
        }
        withheld
    }

    #[test]
    fn a_total_and_its_parts() {
        // total 19 = 2 + 10 + 7: the 2 is withheld, so the cheapest other part goes with it.
        let mut net = Network::new();
        let sum = net.sum();
        net.figure(Tally::distinct(19), sum, FREE, 3);
        for v in [2, 10, 7] {
            net.figure(Tally::distinct(v), FREE, sum, 3);
        }
        assert_eq!(check(&net), [false, true, false, true]);
    }

    #[test]
    fn figures_published_elsewhere_stay_as_they_are() {
        let mut net = Network::new();
        let sum = net.sum();
        net.figure(Tally::distinct(19), sum, FREE, 3);
        for v in [2, 10, 7] {
            net.figure(Tally::distinct(v), FREE, sum, 3);
        }
        net.fix(3, false);
        assert_eq!(check(&net), [false, true, true, false]);
    }

    /// A random table with margins: rows (with their totals) crossed with columns.
    fn table(rng: &mut impl Rng, rows: usize, cols: usize) -> Network {
        let mut net = Network::new();
        let row_sums: Vec<usize> = (0..rows).map(|_| net.sum()).collect();
        let col_sums: Vec<usize> = (0..cols).map(|_| net.sum()).collect();
        let (margin_rows, margin_cols) = (net.sum(), net.sum());
        let cells: Vec<Vec<i64>> = (0..rows)
            .map(|_| {
                (0..cols)
                    .map(|_| {
                        if rng.random_bool(0.6) {
                            rng.random_range(1..8)
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect();
        for r in 0..rows {
            for c in 0..cols {
                net.figure(Tally::distinct(cells[r][c]), col_sums[c], row_sums[r], 3);
            }
            net.figure(
                Tally::distinct(cells[r].iter().sum()),
                row_sums[r],
                margin_rows,
                3,
            );
        }
        for c in 0..cols {
            net.figure(
                Tally::distinct(cells.iter().map(|r| r[c]).sum()),
                margin_cols,
                col_sums[c],
                3,
            );
        }
        let total = cells.iter().flatten().sum();
        net.figure(Tally::distinct(total), margin_rows, margin_cols, 3);
        net
    }

    #[test]
    fn random_tables_with_margins_never_give_a_withheld_figure_away() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let (rows, cols) = (rng.random_range(1..6), rng.random_range(1..5));
            check(&table(&mut rng, rows, cols));
        }
    }

    #[test]
    fn random_trees_never_give_a_withheld_figure_away() {
        fn subtree(net: &mut Network, rng: &mut impl Rng, depth: u32, part_of: usize) -> i64 {
            if depth == 0 {
                let v = if rng.random_bool(0.6) {
                    rng.random_range(1..6)
                } else {
                    0
                };
                net.figure(Tally::distinct(v), FREE, part_of, 3);
                return v;
            }
            let sum = net.sum();
            let me = net.figure(Tally::distinct(0), sum, part_of, 3);
            let total = (0..rng.random_range(1..5))
                .map(|_| subtree(net, rng, depth - 1, sum))
                .sum();
            net.values[me] = total;
            net.withheld[me] = total < 3;
            total
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..200 {
            let mut net = Network::new();
            let depth = rng.random_range(1..5);
            subtree(&mut net, &mut rng, depth, FREE);
            check(&net);
        }
    }

    #[test]
    fn random_trees_protected_in_one_pass_never_give_a_withheld_figure_away() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        for _ in 0..200 {
            // The same tree as a parent list and as a network.
            let mut values = vec![0i64];
            let mut parents: Vec<Option<usize>> = vec![None];
            let mut frontier = vec![0usize];
            for _ in 0..rng.random_range(1..4) {
                let mut next = Vec::new();
                for &p in &frontier {
                    for _ in 0..rng.random_range(1..4) {
                        values.push(0);
                        parents.push(Some(p));
                        next.push(values.len() - 1);
                    }
                }
                frontier = next;
            }
            for &leaf in &frontier {
                values[leaf] = if rng.random_bool(0.7) {
                    rng.random_range(1..6)
                } else {
                    0
                };
            }
            for i in (0..values.len()).rev() {
                if let Some(p) = parents[i] {
                    values[p] += values[i];
                }
            }
            // Drop empty figures, as tiles and aggregates never list them.
            let keep: Vec<usize> = (0..values.len())
                .filter(|&i| values[i] > 0 || i == 0)
                .collect();
            let withheld = protect_tree(
                &values
                    .iter()
                    .map(|&v| Tally::distinct(v))
                    .collect::<Vec<_>>(),
                &parents,
                values[0] < 3,
                3,
            );
            let mut net = Network::new();
            let mut sums = vec![FREE; values.len()];
            for &i in &keep {
                let is_leaf = !keep.iter().any(|&j| parents[j] == Some(i));
                sums[i] = if is_leaf { FREE } else { net.sum() };
            }
            for &i in &keep {
                let part_of = parents[i].map_or(FREE, |p| sums[p]);
                net.figure(Tally::distinct(values[i]), sums[i], part_of, 3);
            }
            let decided: Vec<bool> = keep.iter().map(|&i| withheld[i]).collect();
            for (n, &i) in keep.iter().enumerate() {
                assert!(withheld[i] || values[i] >= 3 || parents[i].is_none());
                if withheld[i] && values[i] > 0 {
                    assert!(
                        !determined(&net, &decided, n),
                        "{values:?} {parents:?} {withheld:?}"
                    );
                }
            }
        }
    }
}
