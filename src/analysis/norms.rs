//! Diagnostic 1: the steering vector's norm against the norms of real activations at the same hook. SAEs are
//! trained on activations; a vector far shorter than any of them is out of distribution for the encoder.

use crate::stats::{mean, norm};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NormHistogram {
    /// Bin edges, `counts.len() + 1` of them, from 0.
    pub edges: Vec<f32>,
    pub counts: Vec<usize>,
    /// Activations counted (every corpus token but each passage's first).
    pub tokens: usize,
    pub median: f32,
    pub mean: f32,
    pub vector_norm: f32,
    /// median activation norm ÷ the vector's norm.
    pub median_over_vector: f32,
}

/// The histogram of activation `norms` (one per token) with the vector's norm marked.
pub fn norm_histogram(norms: &[f32], vector: &[f32], bins: usize) -> NormHistogram {
    let mut norms = norms.to_vec();
    norms.sort_by(f32::total_cmp);
    let vector_norm = norm(vector);
    let median = norms.get(norms.len() / 2).copied().unwrap_or(0.0);
    let mean = mean(norms.iter().copied());
    let top = norms.last().copied().unwrap_or(0.0).max(vector_norm).max(1e-12) * 1.05;
    let bins = bins.max(1);
    let edges: Vec<f32> = (0..=bins).map(|i| top * i as f32 / bins as f32).collect();
    let mut counts = vec![0; bins];
    for n in &norms {
        counts[((n / top * bins as f32) as usize).min(bins - 1)] += 1;
    }
    NormHistogram {
        edges,
        counts,
        tokens: norms.len(),
        median,
        mean,
        vector_norm,
        median_over_vector: median / vector_norm.max(1e-12),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_activation() {
        let h = norm_histogram(&[5.0, 1.0, 10.0], &[0.5, 0.0], 4);
        assert_eq!((h.tokens, h.median, h.counts.iter().sum::<usize>()), (3, 5.0, 3));
        assert_eq!(h.median_over_vector, 10.0);
        assert_eq!(h.counts, vec![1, 1, 0, 1]);
    }
}
