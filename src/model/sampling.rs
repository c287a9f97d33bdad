//! Picks the next token from logits on the host: greedy, or temperature with optional top-k.

use rand::{RngExt, SeedableRng, rngs::StdRng};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens before sampling.
    pub top_k: Option<usize>,
    pub seed: u64,
}

impl Sampling {
    /// Whether the next token is simply the most likely one, which the device can pick without sending the logits
    /// back.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == Some(1)
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_k: None, seed: 0 }
    }
}

pub struct Sampler {
    cfg: Sampling,
    rng: StdRng,
}

impl Sampler {
    pub fn new(cfg: Sampling) -> Self {
        Self { cfg, rng: StdRng::seed_from_u64(cfg.seed) }
    }

    pub fn next(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.is_greedy() {
            return argmax(logits);
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        if let Some(k) = self.cfg.top_k.filter(|&k| k > 0 && k < logits.len()) {
            order.select_nth_unstable_by(k - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
            order.truncate(k);
        }
        let max = order.iter().map(|&i| logits[i]).fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> =
            order.iter().map(|&i| (((logits[i] - max) / self.cfg.temperature) as f64).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut u = self.rng.random::<f64>() * total;
        for (w, &i) in weights.iter().zip(&order) {
            if u < *w {
                return i as u32;
            }
            u -= w;
        }
        *order.last().expect("logits are not empty") as u32
    }
}

/// Index of the largest logit; the first on ties, as torch.argmax.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_seeded_sampling() {
        let logits = [0.1, 3.0, 2.9, -1.0];
        assert_eq!(Sampler::new(Sampling::default()).next(&logits), 1);
        let cfg = Sampling { temperature: 1.0, top_k: Some(2), seed: 7 };
        let a: Vec<u32> = (0..50).scan(Sampler::new(cfg), |s, _| Some(s.next(&logits))).collect();
        let b: Vec<u32> = (0..50).scan(Sampler::new(cfg), |s, _| Some(s.next(&logits))).collect();
        assert_eq!(a, b, "same seed, same tokens");
        assert!(a.iter().all(|&t| t == 1 || t == 2), "top-k keeps the two best");
        assert!(a.contains(&1) && a.contains(&2));
    }
}
