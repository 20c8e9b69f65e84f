//! The pruning schedules and the budget rule — pure functions of numbers.

use std::collections::BTreeMap;

/// Step 2's target widths for a conv of width `n`: 16 log-spaced points from `n` down to 1,
/// rounded half-up and de-duplicated (n = 64 → 64, 49, 37, 28, 21, 16, 12, 9, 7, 5, 4, 3, 2, 1).
pub fn log_schedule(n: usize, points: usize) -> Vec<usize> {
    if n <= 1 || points < 2 {
        return vec![n.max(1)];
    }
    let ln = (n as f64).ln();
    let mut out: Vec<usize> = Vec::with_capacity(points);
    for i in 0..points {
        let v = (ln * (1.0 - i as f64 / (points - 1) as f64)).exp();
        let r = (v + 0.5).floor().max(1.0) as usize;
        if out.last() != Some(&r) {
            out.push(r);
        }
    }
    out
}

/// Pick the `count` lowest-scoring filters across all layers (step 1's global ranking), never
/// taking a layer below `min_keep` filters. Ties break by (layer, index) so the choice is
/// deterministic. Returns, per conv, the filter indices to remove.
pub fn lowest_global(scores: &[Vec<f64>], count: usize, min_keep: usize) -> BTreeMap<usize, Vec<usize>> {
    let mut all: Vec<(f64, usize, usize)> =
        scores.iter().enumerate().flat_map(|(l, s)| s.iter().enumerate().map(move |(k, &v)| (v, l, k))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut left: Vec<usize> = scores.iter().map(|s| s.len()).collect();
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut taken = 0;
    for (_, l, k) in all {
        if taken == count {
            break;
        }
        if left[l] > min_keep.max(1) {
            left[l] -= 1;
            out.entry(l).or_default().push(k);
            taken += 1;
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

/// The `count` lowest-scoring filters of one layer, sorted by index.
pub fn lowest_in_layer(scores: &[f64], count: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut out: Vec<usize> = idx.into_iter().take(count.min(scores.len().saturating_sub(1))).collect();
    out.sort_unstable();
    out
}

/// The budget rule: an accuracy is acceptable when it is at most `budget` below the reference.
pub fn within_budget(accuracy: f64, reference: f64, budget: f64) -> bool {
    accuracy >= reference - budget - 1e-12
}

/// Given the accuracies of successive iterations, the index of the model to keep and whether
/// the run must stop. The run stops at the first model that breaks the budget, and the model
/// kept is the one just before it (the authors' code kept the first model that violated the
/// budget; we keep the last one that did not). `None` = not even the first iteration is
/// acceptable: keep the reference itself.
pub fn keep_last_within(accuracies: &[f64], reference: f64, budget: f64) -> (Option<usize>, bool) {
    match accuracies.iter().position(|&a| !within_budget(a, reference, budget)) {
        Some(first_bad) => (first_bad.checked_sub(1), true),
        None => (accuracies.len().checked_sub(1), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_reproduces_the_paper_examples() {
        assert_eq!(log_schedule(64, 16), vec![64, 49, 37, 28, 21, 16, 12, 9, 7, 5, 4, 3, 2, 1]);
        assert_eq!(log_schedule(45, 16), vec![45, 35, 27, 21, 16, 13, 10, 8, 6, 5, 4, 3, 2, 1]);
        assert_eq!(log_schedule(1, 16), vec![1]);
        assert_eq!(log_schedule(2, 16), vec![2, 1]);
    }

    #[test]
    fn global_selection_takes_the_lowest_and_never_empties_a_layer() {
        let scores = vec![vec![0.1, 0.9], vec![0.05, 0.01, 0.5], vec![0.02]];
        let r = lowest_global(&scores, 3, 1);
        assert_eq!(r.get(&1), Some(&vec![0, 1]));
        assert_eq!(r.get(&0), Some(&vec![0]));
        assert_eq!(r.get(&2), None, "a layer of one filter is never emptied");
        let total: usize = r.values().map(Vec::len).sum();
        assert_eq!(total, 3);
        // Asking for more than can go removes all but one per layer.
        let r = lowest_global(&scores, 100, 1);
        assert_eq!(r.values().map(Vec::len).sum::<usize>(), 1 + 2);
    }

    #[test]
    fn layer_selection_keeps_at_least_one() {
        assert_eq!(lowest_in_layer(&[0.3, 0.1, 0.2], 2), vec![1, 2]);
        assert_eq!(lowest_in_layer(&[0.3, 0.1], 5), vec![1]);
    }

    /// Scripted accuracy sequence: reference 0.92, budget 0.018.
    #[test]
    fn budget_rule_keeps_the_last_model_within_budget() {
        let r = 0.92;
        assert_eq!(keep_last_within(&[0.921, 0.915, 0.905], r, 0.018), (Some(2), false));
        assert_eq!(
            keep_last_within(&[0.921, 0.915, 0.90, 0.91], r, 0.018),
            (Some(1), true),
            "0.90 broke it: no later model counts"
        );
        assert_eq!(keep_last_within(&[0.921, 0.915, 0.90], r, 0.018), (Some(1), true));
        assert_eq!(keep_last_within(&[0.80], r, 0.018), (None, true));
        assert_eq!(keep_last_within(&[], r, 0.018), (None, false));
        assert!(within_budget(0.902, 0.92, 0.018));
        assert!(!within_budget(0.9019, 0.92, 0.018));
    }
}
