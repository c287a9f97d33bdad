//! Small statistics on host vectors, accumulated in f64.

/// The mean of `values` (0 for none).
pub fn mean(values: impl IntoIterator<Item = f32>) -> f32 {
    let (sum, n) = values.into_iter().fold((0.0f64, 0usize), |(s, n), v| (s + v as f64, n + 1));
    (sum / n.max(1) as f64) as f32
}

/// The Euclidean norm.
pub fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt() as f32
}

/// The cosine of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
    let (na, nb) = (norm(a) as f64, norm(b) as f64);
    if na == 0.0 || nb == 0.0 { 0.0 } else { (dot / (na * nb)) as f32 }
}

/// Spearman's rank correlation (average ranks for ties); None for fewer than three points or a constant side.
pub fn spearman(xs: &[f32], ys: &[f32]) -> Option<f32> {
    if xs.len() < 3 || xs.len() != ys.len() {
        return None;
    }
    let (rx, ry) = (ranks(xs), ranks(ys));
    let (mx, my) = (mean(rx.iter().copied()), mean(ry.iter().copied()));
    let (mut sxy, mut sxx, mut syy) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in rx.iter().zip(&ry) {
        let (dx, dy) = ((x - mx) as f64, (y - my) as f64);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()) as f32)
}

fn ranks(v: &[f32]) -> Vec<f32> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            out[k] = (i + j) as f32 / 2.0;
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_ranks_with_ties() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 45.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[3.0, 2.0, 1.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 2.0]), vec![2.5, 0.0, 2.5, 1.0]);
    }
}
