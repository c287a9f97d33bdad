//! Random weights of the right shapes, for benchmarks of full-size configurations without a download.

use super::weights::{HostTensor, Weights};
use crate::error::Result;
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// GPT-2 small's config.json (124M parameters).
pub const GPT2_SMALL_CONFIG: &str = r#"{"model_type":"gpt2","n_embd":768,"n_head":12,"n_layer":12,
"n_positions":1024,"vocab_size":50257,"activation_function":"gelu_new","layer_norm_epsilon":1e-5,
"bos_token_id":50256,"eos_token_id":50256}"#;

/// Uniform weights with GPT-2's init scale (std 0.02); layer-norm gains are ones.
pub struct RandomWeights {
    pub seed: u64,
}

impl Weights for RandomWeights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let n: usize = shape.iter().product();
        let is_norm = name.contains("ln") || name.contains("norm");
        let data = if is_norm && name.ends_with(".weight") {
            vec![1.0; n]
        } else {
            // A seed per tensor name keeps every tensor the same whatever the load order.
            let h = name
                .bytes()
                .fold(self.seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
            let mut rng = StdRng::seed_from_u64(h);
            let a = 0.02 * 3f32.sqrt(); // uniform(-a, a) has std 0.02
            (0..n).map(|_| rng.random_range(-a..a)).collect()
        };
        Ok(HostTensor::new(shape.to_vec(), data))
    }

    fn has(&self, _name: &str) -> bool {
        true
    }
}
