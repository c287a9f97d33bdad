//! Random weights of the right shapes, for benchmarks of full-size configurations without a download.

use super::weights::{HostTensor, Weights};
use crate::error::Result;
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// GPT-2 small's config.json (124M parameters).
pub const GPT2_SMALL_CONFIG: &str = r#"{"model_type":"gpt2","n_embd":768,"n_head":12,"n_layer":12,
"n_positions":1024,"vocab_size":50257,"activation_function":"gelu_new","layer_norm_epsilon":1e-5,
"bos_token_id":50256,"eos_token_id":50256}"#;

/// Gemma-2-2B's config.json (2.6B parameters), as google/gemma-2-2b ships it.
pub const GEMMA2_2B_CONFIG: &str = r#"{"model_type":"gemma2","hidden_size":2304,"intermediate_size":9216,
"num_hidden_layers":26,"num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,"vocab_size":256000,
"max_position_embeddings":8192,"hidden_activation":"gelu_pytorch_tanh","rms_norm_eps":1e-6,"rope_theta":10000.0,
"query_pre_attn_scalar":256,"attn_logit_softcapping":50.0,"final_logit_softcapping":30.0,"sliding_window":4096,
"bos_token_id":2,"eos_token_id":1}"#;

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

/// A random model's checkpoint: the config's model built from `RandomWeights`, with every tensor its loader
/// asked for written as `model.safetensors` bytes (f32, Hugging Face names), so benchmarks load real files.
pub fn random_checkpoint(config_json: &str, seed: u64) -> Result<Vec<u8>> {
    use crate::tensor_file::{NamedTensor, to_safetensors};
    let cfg = super::config::ModelConfig::from_json(config_json, "config.json")?;
    let recording = Recording { inner: RandomWeights { seed }, seen: Default::default() };
    drop(super::Model::build(cfg, &recording, &burn::tensor::Device::flex())?);
    let tensors: Vec<NamedTensor> =
        recording.seen.into_inner().into_iter().map(|(name, t)| NamedTensor::f32(name, t.shape, t.data)).collect();
    to_safetensors(&tensors, Default::default())
}

/// Weights that remember what was asked of them.
struct Recording {
    inner: RandomWeights,
    seen: std::cell::RefCell<Vec<(String, HostTensor)>>,
}

impl Weights for Recording {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.inner.get(name, shape)?;
        self.seen.borrow_mut().push((name.to_string(), t.clone()));
        Ok(t)
    }

    fn has(&self, name: &str) -> bool {
        self.inner.has(name)
    }
}
