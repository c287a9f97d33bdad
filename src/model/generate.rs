//! Text generation with a KV cache, interventions active at every step.

use super::sampling::Sampling;
#[cfg(feature = "engine")]
use {super::Model, super::hooks::Hooks, super::kv_cache::KvCache, super::sampling::Sampler};
#[cfg(feature = "engine")]
use {
    crate::device::{read, read_ids},
    crate::error::Result,
};

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
#[cfg(feature = "engine")]
pub async fn generate(
    model: &Model,
    prompt: &[u32],
    hooks: &mut Hooks,
    opts: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>> {
    let mut rows =
        generate_rows(model, prompt, 1, hooks, opts, |out| on_token(*out[0].last().expect("a token"))).await?;
    Ok(rows.remove(0))
}

/// `rows` continuations of the same prompt decoded together, one batch row each with its own KV cache row and
/// sampler (seeded alike), each steered as `hooks` says per row (`Intervention::rows`): the unsteered and steered
/// texts of a side-by-side comparison cost one pass a token. `on_step` sees every row's tokens after each step
/// (a row that reached EOS stops growing) and returns false to stop. Stops after `max_new_tokens`, when every
/// row is at EOS (if asked) or when the model's context is full.
#[cfg(feature = "engine")]
pub async fn generate_rows(
    model: &Model,
    prompt: &[u32],
    rows: usize,
    hooks: &mut Hooks,
    opts: &GenerateOptions,
    mut on_step: impl FnMut(&[Vec<u32>]) -> bool,
) -> Result<Vec<Vec<u32>>> {
    let cfg = model.cfg();
    let vocab = model.net.unembed.rows;
    let mut cache = KvCache::new(cfg.n_layers);
    let mut samplers: Vec<Sampler> = (0..rows).map(|_| Sampler::new(opts.sampling)).collect();
    let mut out = vec![Vec::new(); rows];
    let mut done = vec![false; rows];
    let mut input = prompt.repeat(rows); // [rows, seq], then [rows, 1] a step
    for step in 0..opts.max_new_tokens {
        if step > 0 && cache.len() >= cfg.n_ctx {
            break; // context full
        }
        let logits = model.net.next_token_logits_rows(&input, rows, &mut cache, hooks)?; // [rows, vocab]
        // Greedy decoding picks each row's token on the device (the lowest id on ties, as on the host) and reads
        // back one id a row, not the logits (200 kB a row at GPT-2's vocabulary); sampling needs them on the host.
        let tokens = if opts.sampling.is_greedy() {
            read_ids(logits.argmax(1)).await? // [rows, 1]
        } else {
            let logits = read(logits).await?;
            let row = |r: usize| &logits.data[r * vocab..(r + 1) * vocab];
            samplers.iter_mut().enumerate().map(|(r, sampler)| sampler.next(row(r))).collect()
        };
        input.clear();
        for (r, &token) in tokens.iter().enumerate() {
            input.push(token);
            if !done[r] {
                out[r].push(token);
                done[r] = opts.stop_at_eos && cfg.eos_token_ids.contains(&token);
            }
        }
        if !on_step(&out) || done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(out)
}
