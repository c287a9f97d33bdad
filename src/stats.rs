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
