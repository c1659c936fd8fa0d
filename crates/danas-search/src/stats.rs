//! Rank correlations, for comparing how two evaluation methods order candidates,
//! and the small summaries (median, mean and standard deviation) the reports use.

/// Ranks (1-based) of `v`, ties sharing their average rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Spearman's ρ (Pearson correlation of the tie-averaged ranks). `None` for fewer
/// than 2 pairs, unequal lengths, or a constant input.
///
/// ```
/// use danas_search::stats::spearman_rho;
/// assert_eq!(spearman_rho(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
/// assert_eq!(spearman_rho(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
/// ```
pub fn spearman_rho(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    pearson(&ranks(a), &ranks(b))
}

/// Kendall's τ-b (accounts for ties in either input). `None` for fewer than 2
/// pairs, unequal lengths, or a constant input.
///
/// ```
/// use danas_search::stats::kendall_tau;
/// assert_eq!(kendall_tau(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]), Some(4.0 / 6.0));
/// ```
pub fn kendall_tau(a: &[f64], b: &[f64]) -> Option<f64> {
    kendall_tau_pairs(a, b, |_, _| true)
}

/// Kendall's τ-b over only the pairs of items in different groups: how well `a`
/// orders items *across* groups (e.g. candidates of different data
/// configurations) the way `b` does, whatever it does within a group. `None` as
/// for [`kendall_tau`], or when `group` has another length.
///
/// ```
/// use danas_search::stats::kendall_tau_between;
/// // within group 0 the order is wrong, across groups it is right
/// let a = [2.0, 1.0, 3.0, 4.0];
/// let b = [1.0, 2.0, 3.0, 4.0];
/// assert_eq!(kendall_tau_between(&a, &b, &[0, 0, 1, 1]), Some(1.0));
/// ```
pub fn kendall_tau_between(a: &[f64], b: &[f64], group: &[usize]) -> Option<f64> {
    if group.len() != a.len() {
        return None;
    }
    kendall_tau_pairs(a, b, |i, j| group[i] != group[j])
}

fn kendall_tau_pairs(a: &[f64], b: &[f64], counts: impl Fn(usize, usize) -> bool) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            if !counts(i, j) {
                continue;
            }
            let da = a[i].total_cmp(&a[j]);
            let db = b[i].total_cmp(&b[j]);
            match (da.is_eq(), db.is_eq()) {
                (true, true) => {}
                (true, false) => ties_a += 1,
                (false, true) => ties_b += 1,
                (false, false) if da == db => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let n_a = (concordant + discordant + ties_b) as f64;
    let n_b = (concordant + discordant + ties_a) as f64;
    (n_a > 0.0 && n_b > 0.0).then(|| (concordant - discordant) as f64 / (n_a * n_b).sqrt())
}

/// Median of the finite values of `v` (the mean of the middle two for an even
/// count); NaN and infinite values are left out. NaN when no finite value is left.
///
/// ```
/// use danas_search::stats::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[4.0, 1.0, f64::NAN, 2.0, 3.0]), 2.5);
/// assert!(median(&[]).is_nan());
/// ```
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Mean and sample standard deviation (divided by n − 1) of `v`; the deviation of
/// a single value is 0. `None` when `v` is empty.
///
/// ```
/// use danas_search::stats::mean_std;
/// assert_eq!(mean_std(&[1.0, 3.0]), Some((2.0, 2f64.sqrt())));
/// assert_eq!(mean_std(&[]), None);
/// ```
pub fn mean_std(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Some((m, var.sqrt()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn correlations_on_known_values() {
        // Kendall: 10 pairs, 8 concordant, 2 discordant -> 0.6.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 1.0, 3.0, 5.0, 4.0];
        assert!((kendall_tau(&a, &b).unwrap() - 0.6).abs() < 1e-12);
        // Spearman: d² = 1+1+0+1+1 = 4, ρ = 1 − 6·4/(5·24) = 0.8.
        assert!((spearman_rho(&a, &b).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(kendall_tau(&a, &[1.0; 5]), None);
        assert_eq!(spearman_rho(&a, &b[..3]), None);
        // τ-b with a tie in b: a = 1,2,3 ; b = 1,1,2 -> C = 2, D = 0, one pair tied in b
        // only: 2 / sqrt((2 + 0 + 1) · (2 + 0 + 0)).
        let t = kendall_tau(&[1.0, 2.0, 3.0], &[1.0, 1.0, 2.0]).unwrap();
        assert!((t - 2.0 / 6f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn median_skips_non_finite_values() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 2.0, 1.0, 3.0]), 2.5);
        assert_eq!(median(&[f64::INFINITY, 1.0, f64::NAN, 2.0]), 1.5);
        assert!(median(&[]).is_nan());
        assert!(median(&[f64::NAN]).is_nan());
    }

    #[test]
    fn mean_and_sample_deviation() {
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[0.25]), Some((0.25, 0.0)));
        // Mean 5; squared deviations 9 + 1 + 1 + 9 = 20 over n − 1 = 3.
        let (m, s) = mean_std(&[2.0, 4.0, 6.0, 8.0]).unwrap();
        assert!((m - 5.0).abs() < 1e-12);
        assert!((s - (20.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
