//! Rank correlations, for comparing how two evaluation methods order candidates.

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
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..a.len() {
        for j in i + 1..a.len() {
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
}
