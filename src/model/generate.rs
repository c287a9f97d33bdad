//! Text generation with a KV cache, interventions active at every step.

use super::Model;
use super::hooks::Hooks;
use super::kv_cache::KvCache;
use super::sampling::{Sampler, Sampling};
use crate::device::read;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Stop after any of the model's `eos_token_id`s.
    pub stop_at_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self { max_new_tokens: 32, sampling: Sampling::default(), stop_at_eos: true }
    }
}

/// Continues `prompt`, calling `on_token` with each new token as it is chosen. Stops after
/// `max_new_tokens`, at EOS (if asked), when the model's context is full or when `on_token` returns false.
pub async fn generate(
    model: &Model,
    prompt: &[u32],
    hooks: &mut Hooks,
    opts: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>> {
    let cfg = model.cfg();
    let mut cache = KvCache::new(cfg.n_layers);
    let mut sampler = Sampler::new(opts.sampling);
    let mut out = Vec::new();
    let mut input = prompt.to_vec();
    while out.len() < opts.max_new_tokens {
        if !out.is_empty() && cache.len() >= cfg.n_ctx {
            break; // context full
        }
        let last = read(model.net.next_token_logits(&input, &mut cache, hooks)?).await?; // [vocab]
        let token = sampler.next(&last.data);
        out.push(token);
        if !on_token(token) {
            break;
        }
        if opts.stop_at_eos && cfg.eos_token_ids.contains(&token) {
            break;
        }
        input = vec![token];
    }
    Ok(out)
}
