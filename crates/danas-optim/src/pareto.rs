//! Pareto utilities: dominance, non-dominated filter, ranks, crowding distance,
//! exact hypervolume in 2 and 3 dimensions, attainment summaries over seeds.
//!
//! Every point is a vector of values to **minimise** (negate maximised objectives,
//! see [`crate::Objective::loss`]).

use crate::OptimError;

/// Whether `a` Pareto-dominates `b` (no worse everywhere, better somewhere).
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

/// Constraint domination (Deb 2000): a feasible point dominates an infeasible one,
/// of two infeasible points the smaller violation dominates, two feasible points
/// compare by Pareto dominance.
pub fn constrained_dominates(a: &[f64], va: f64, b: &[f64], vb: f64) -> bool {
    match (va <= 0.0, vb <= 0.0) {
        (true, false) => true,
        (false, true) => false,
        (false, false) => va < vb,
        (true, true) => dominates(a, b),
    }
}

/// Indices of the non-dominated points (duplicates are all kept), in input order.
pub fn non_dominated(points: &[Vec<f64>]) -> Vec<usize> {
    (0..points.len()).filter(|&i| !points.iter().any(|q| dominates(q, &points[i]))).collect()
}

/// Non-dominated sorting rank of each point (0 = first front), with optional
/// violations for constraint domination (`None`: all feasible).
pub fn ranks(points: &[Vec<f64>], violations: Option<&[f64]>) -> Vec<usize> {
    let n = points.len();
    let v = |i: usize| violations.and_then(|v| v.get(i).copied()).unwrap_or(0.0);
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if i != j && constrained_dominates(&points[i], v(i), &points[j], v(j)) {
                dominates_list[i].push(j);
                dominated_by[j] += 1;
            }
        }
    }
    let mut rank = vec![usize::MAX; n];
    let mut front: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut r = 0;
    while !front.is_empty() {
        let mut next = Vec::new();
        for &i in &front {
            rank[i] = r;
            for &j in &dominates_list[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        front = next;
        r += 1;
    }
    rank
}

/// Crowding distance of each point of one front (∞ at the extremes of each objective).
/// Points shorter than the first one count as ∞ on the objectives they lack.
pub fn crowding_distance(points: &[Vec<f64>]) -> Vec<f64> {
    let n = points.len();
    let mut d = vec![0.0; n];
    let Some(first) = points.first() else {
        return d;
    };
    let value = |i: usize, k: usize| points[i].get(k).copied().unwrap_or(f64::INFINITY);
    for k in 0..first.len() {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| value(a, k).total_cmp(&value(b, k)).then(a.cmp(&b)));
        let lo = value(idx[0], k);
        let hi = value(idx[n - 1], k);
        d[idx[0]] = f64::INFINITY;
        d[idx[n - 1]] = f64::INFINITY;
        if hi > lo && hi.is_finite() && lo.is_finite() {
            for w in 1..n.saturating_sub(1) {
                d[idx[w]] += (value(idx[w + 1], k) - value(idx[w - 1], k)) / (hi - lo);
            }
        }
    }
    d
}

fn check_points(points: &[Vec<f64>], reference: &[f64], dims: usize) -> Result<(), OptimError> {
    if reference.len() != dims || reference.iter().any(|x| !x.is_finite()) {
        return Err(OptimError::Pareto(format!("reference point {reference:?} must have {dims} finite values")));
    }
    for (i, p) in points.iter().enumerate() {
        if p.len() != dims || p.iter().any(|x| x.is_nan()) {
            return Err(OptimError::Pareto(format!("point {i} = {p:?} must have {dims} non-NaN values")));
        }
    }
    Ok(())
}

/// Area dominated by `pts` (pairs) and bounded by `r`, all points assumed strictly better than `r`.
fn hv2_unchecked(mut pts: Vec<[f64; 2]>, r: [f64; 2]) -> f64 {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let mut area = 0.0;
    let mut best_y = r[1];
    for p in pts {
        if p[1] < best_y {
            area += (r[0] - p[0]) * (best_y - p[1]);
            best_y = p[1];
        }
    }
    area
}

/// Exact hypervolume (area) dominated by 2-D points and bounded by `reference`.
/// Points not strictly better than the reference in every objective add nothing.
///
/// # Errors
/// [`OptimError::Pareto`] when a point or the reference has the wrong length or NaN.
pub fn hypervolume_2d(points: &[Vec<f64>], reference: &[f64]) -> Result<f64, OptimError> {
    check_points(points, reference, 2)?;
    let r = [reference[0], reference[1]];
    let pts: Vec<[f64; 2]> = points.iter().filter(|p| p[0] < r[0] && p[1] < r[1]).map(|p| [p[0], p[1]]).collect();
    Ok(hv2_unchecked(pts, r))
}

/// Exact hypervolume dominated by 3-D points and bounded by `reference` (slicing
/// along the third objective; O(n² log n)).
///
/// # Errors
/// [`OptimError::Pareto`] when a point or the reference has the wrong length or NaN.
pub fn hypervolume_3d(points: &[Vec<f64>], reference: &[f64]) -> Result<f64, OptimError> {
    check_points(points, reference, 3)?;
    let mut pts: Vec<[f64; 3]> = points
        .iter()
        .filter(|p| p[0] < reference[0] && p[1] < reference[1] && p[2] < reference[2])
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    pts.sort_by(|a, b| a[2].total_cmp(&b[2]));
    let mut vol = 0.0;
    for i in 0..pts.len() {
        let z_next = if i + 1 < pts.len() { pts[i + 1][2] } else { reference[2] };
        let dz = z_next - pts[i][2];
        if dz > 0.0 {
            let slice: Vec<[f64; 2]> = pts[..=i].iter().map(|p| [p[0], p[1]]).collect();
            vol += hv2_unchecked(slice, [reference[0], reference[1]]) * dz;
        }
    }
    Ok(vol)
}

/// Exact hypervolume for 1, 2 or 3 objectives.
///
/// # Errors
/// [`OptimError::Pareto`] for other dimensions or malformed input.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> Result<f64, OptimError> {
    match reference.len() {
        1 => {
            check_points(points, reference, 1)?;
            Ok(points.iter().map(|p| (reference[0] - p[0]).max(0.0)).fold(0.0, f64::max))
        }
        2 => hypervolume_2d(points, reference),
        3 => hypervolume_3d(points, reference),
        d => Err(OptimError::Pareto(format!("exact hypervolume is implemented for 1-3 objectives, not {d}"))),
    }
}

/// Fraction of runs (fronts) whose points weakly dominate `target`.
pub fn attainment_fraction(fronts: &[Vec<Vec<f64>>], target: &[f64]) -> f64 {
    if fronts.is_empty() {
        return 0.0;
    }
    let hit = fronts.iter().filter(|f| f.iter().any(|p| p.iter().zip(target).all(|(a, b)| a <= b))).count();
    hit as f64 / fronts.len() as f64
}

/// The `k`-th empirical attainment surface of 2-D fronts from several runs (seeds):
/// the non-dominated points attained by at least `k` of the runs (k = 1: best
/// case, k = runs: worst case, k = runs/2: median surface). Sorted by the first objective.
///
/// # Errors
/// [`OptimError::Pareto`] when `k` is 0 or exceeds the number of runs, or a point is not 2-D.
pub fn attainment_surface_2d(fronts: &[Vec<Vec<f64>>], k: usize) -> Result<Vec<[f64; 2]>, OptimError> {
    if k == 0 || k > fronts.len() {
        return Err(OptimError::Pareto(format!("k = {k} must be between 1 and the number of runs ({})", fronts.len())));
    }
    for f in fronts {
        for p in f {
            if p.len() != 2 || p.iter().any(|x| x.is_nan()) {
                return Err(OptimError::Pareto(format!("point {p:?} is not a 2-D point")));
            }
        }
    }
    let mut xs: Vec<f64> = fronts.iter().flatten().map(|p| p[0]).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut out: Vec<[f64; 2]> = Vec::new();
    for &x in &xs {
        // for each run, the best second objective among its points with first ≤ x
        let mut ys: Vec<f64> =
            fronts.iter().map(|f| f.iter().filter(|p| p[0] <= x).map(|p| p[1]).fold(f64::INFINITY, f64::min)).collect();
        ys.sort_by(f64::total_cmp);
        let y = ys[k - 1];
        if y.is_finite() && out.last().is_none_or(|l| y < l[1]) {
            out.push([x, y]);
        }
    }
    Ok(out)
}

/// Summary statistics of a sample (e.g. hypervolumes over seeds).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Smallest value.
    pub min: f64,
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Largest value.
    pub max: f64,
}

/// Quantile summary (linear interpolation) of finite values; `None` when there are none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    Some(Summary { min: v[0], q1: q(0.25), median: q(0.5), q3: q(0.75), max: v[v.len() - 1] })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn pts(v: &[&[f64]]) -> Vec<Vec<f64>> {
        v.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn filter_and_ranks() {
        let p = pts(&[&[1.0, 4.0], &[2.0, 2.0], &[3.0, 3.0], &[4.0, 1.0], &[5.0, 5.0]]);
        assert_eq!(non_dominated(&p), vec![0, 1, 3]);
        assert_eq!(ranks(&p, None), vec![0, 0, 1, 0, 2]);
        // constraint domination: the infeasible point drops behind every feasible one,
        // and (3, 3) moves to the first front
        assert_eq!(ranks(&p, Some(&[0.0, 0.5, 0.0, 0.0, 0.0])), vec![0, 2, 0, 0, 1]);
    }

    #[test]
    fn hypervolume_2d_known_values() {
        let p = pts(&[&[1.0, 3.0], &[2.0, 2.0], &[3.0, 1.0]]);
        // staircase under reference (4, 4): 3*1 + 2*1 + 1*1 = 6
        assert!((hypervolume_2d(&p, &[4.0, 4.0]).unwrap() - 6.0).abs() < 1e-12);
        // a point outside the reference box adds nothing
        let mut q = p.clone();
        q.push(vec![5.0, 0.0]);
        assert!((hypervolume(&q, &[4.0, 4.0]).unwrap() - 6.0).abs() < 1e-12);
        assert!(hypervolume(&p, &[4.0]).is_err());
        assert!(hypervolume(&pts(&[&[1.0, 1.0, 1.0, 1.0]]), &[2.0; 4]).is_err());
    }

    #[test]
    fn hypervolume_3d_known_values() {
        // a single box 1x2x3
        assert!((hypervolume_3d(&pts(&[&[0.0, 0.0, 0.0]]), &[1.0, 2.0, 3.0]).unwrap() - 6.0).abs() < 1e-12);
        // two unit-offset points in the unit-ish cube: union of boxes
        let p = pts(&[&[0.0, 0.5, 0.5], &[0.5, 0.0, 0.0]]);
        // box a: 1*0.5*0.5 = 0.25, box b: 0.5*1*1 = 0.5, overlap: 0.5*0.5*0.5 = 0.125
        assert!((hypervolume_3d(&p, &[1.0, 1.0, 1.0]).unwrap() - 0.625).abs() < 1e-12);
    }

    /// Monte-Carlo-free check: a grid count of dominated cells equals the exact volume.
    fn grid_volume(points: &[Vec<f64>], r: &[f64], n: usize) -> f64 {
        let mut count = 0usize;
        let step: Vec<f64> = r.iter().map(|x| x / n as f64).collect();
        let dims = r.len();
        let total = n.pow(dims as u32);
        for cell in 0..total {
            let mut c = cell;
            let mut centre = vec![0.0; dims];
            for d in 0..dims {
                centre[d] = ((c % n) as f64 + 0.5) * step[d];
                c /= n;
            }
            if points.iter().any(|p| p.iter().zip(&centre).all(|(a, b)| a <= b)) {
                count += 1;
            }
        }
        count as f64 * step.iter().product::<f64>()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn hv3_matches_grid_on_grid_points(raw in proptest::collection::vec((0u8..8, 0u8..8, 0u8..8), 1..8)) {
            // points on a grid of 8, cells of 16 per axis: the grid count is exact
            let p: Vec<Vec<f64>> = raw.iter().map(|&(a, b, c)| vec![f64::from(a), f64::from(b), f64::from(c)]).collect();
            let exact = hypervolume_3d(&p, &[8.0, 8.0, 8.0]).unwrap();
            let grid = grid_volume(&p, &[8.0, 8.0, 8.0], 16);
            prop_assert!((exact - grid).abs() < 1e-9, "exact {} grid {}", exact, grid);
            // adding a dominated point changes nothing
            let mut q = p.clone();
            q.push(vec![7.5, 7.5, 7.5]);
            let with = hypervolume_3d(&q, &[8.0, 8.0, 8.0]).unwrap();
            prop_assert!(with >= exact);
        }

        #[test]
        fn hv2_matches_grid(raw in proptest::collection::vec((0u8..8, 0u8..8), 1..10)) {
            let p: Vec<Vec<f64>> = raw.iter().map(|&(a, b)| vec![f64::from(a), f64::from(b)]).collect();
            let exact = hypervolume_2d(&p, &[8.0, 8.0]).unwrap();
            prop_assert!((exact - grid_volume(&p, &[8.0, 8.0], 16)).abs() < 1e-9);
            // non-dominated subset has the same volume
            let nd: Vec<Vec<f64>> = non_dominated(&p).into_iter().map(|i| p[i].clone()).collect();
            prop_assert!((hypervolume_2d(&nd, &[8.0, 8.0]).unwrap() - exact).abs() < 1e-9);
        }
    }

    #[test]
    fn attainment_surfaces() {
        let fronts = vec![pts(&[&[1.0, 3.0], &[3.0, 1.0]]), pts(&[&[2.0, 2.0]]), pts(&[&[4.0, 4.0]])];
        let best = attainment_surface_2d(&fronts, 1).unwrap();
        assert_eq!(best, vec![[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]);
        let worst = attainment_surface_2d(&fronts, 3).unwrap();
        assert_eq!(worst, vec![[4.0, 4.0]]);
        let median = attainment_surface_2d(&fronts, 2).unwrap();
        assert_eq!(median, vec![[2.0, 3.0], [3.0, 2.0]]);
        assert!((attainment_fraction(&fronts, &[2.5, 2.5]) - 1.0 / 3.0).abs() < 1e-12);
        assert!((attainment_fraction(&fronts, &[3.0, 3.0]) - 2.0 / 3.0).abs() < 1e-12);
        assert!(attainment_surface_2d(&fronts, 0).is_err());
        assert!(attainment_surface_2d(&fronts, 4).is_err());
    }

    #[test]
    fn crowding_and_summary() {
        let p = pts(&[&[0.0, 2.0], &[1.0, 1.0], &[2.0, 0.0]]);
        let d = crowding_distance(&p);
        assert!(d[0].is_infinite() && d[2].is_infinite());
        assert!((d[1] - 2.0).abs() < 1e-12);
        let s = summarize(&[3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert!(summarize(&[]).is_none());
    }
}
