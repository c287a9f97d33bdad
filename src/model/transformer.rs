//! The decoder stack both architectures load into: embeddings, pre-LN blocks (sequential or parallel
//! residual), final layer norm and a chunked unembedding, with hooks at every residual point.

use super::chunked::ChunkedRows;
use super::config::ModelConfig;
use super::hooks::{HookPoint, Hooks};
use super::kv_cache::KvCache;
use super::layers::{LayerNorm, Linear, Rotary, activate, causal_attention, split_heads};
use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor};

/// One block. `qkv` maps d_model to [q | k | v], each head-major (NeoX's per-head grouping is
/// re-laid out at load time so both architectures share this code).
pub struct Block {
    pub ln_1: LayerNorm,
    pub qkv: Linear,
    pub attn_out: Linear,
    pub ln_2: LayerNorm,
    pub mlp_in: Linear,
    pub mlp_out: Linear,
}

/// Where a forward pass stops: logits of every position, of the last one only, or the activation at a hook.
#[derive(Clone, Copy, PartialEq)]
enum Until {
    Logits,
    LastLogits,
    Hook(HookPoint),
}

pub struct Transformer {
    pub cfg: ModelConfig,
    pub device: Device,
    pub embed: ChunkedRows,
    /// GPT-2's learned positions [n_ctx, d_model]; NeoX uses `rotary` instead.
    pub pos_embed: Option<Tensor<2>>,
    pub rotary: Option<Rotary>,
    pub blocks: Vec<Block>,
    pub ln_final: LayerNorm,
    /// [vocab, d_model]: GPT-2 ties it to `embed`.
    pub unembed: ChunkedRows,
}

impl Transformer {
    /// Runs `tokens` (at absolute positions `cache.len()..`) and returns logits [1, seq, vocab].
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks) -> Result<Tensor<3>> {
        self.run(tokens, cache, hooks, Until::Logits)
    }

    /// Like `forward`, but unembeds only the last position: the next token's logits [vocab].
    pub fn next_token_logits(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks) -> Result<Tensor<1>> {
        let logits = self.run(tokens, cache, hooks, Until::LastLogits)?; // [1, 1, vocab]
        Ok(logits.reshape([self.unembed.rows]))
    }

    /// Runs `tokens` from position 0 only as far as `point` and returns the activation there [1, seq, d_model]
    /// (after any intervention at it).
    pub fn activations(&self, tokens: &[u32], hooks: &mut Hooks, point: HookPoint) -> Result<Tensor<3>> {
        self.run(tokens, &mut KvCache::new(self.cfg.n_layers), hooks, Until::Hook(point))
    }

    /// The forward pass, as far as `until` says.
    fn run(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks, until: Until) -> Result<Tensor<3>> {
        let cfg = &self.cfg;
        let start = cache.len();
        let s = tokens.len();
        if s == 0 {
            return Err(Error::invalid("empty prompt: at least one token is needed"));
        }
        if start + s > cfg.n_ctx {
            return Err(Error::invalid(format!(
                "sequence too long: {} tokens, but the model's context is {} tokens",
                start + s,
                cfg.n_ctx
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(Error::invalid(format!("token id {bad} is outside the vocabulary of {}", cfg.vocab_size)));
        }
        hooks.check(cfg.d_model)?;

        let mut x = self.embed.embed(tokens, &self.device); // [1, s, d]
        if let Some(wpe) = &self.pos_embed {
            x = x + wpe.clone().slice([start..start + s, 0..cfg.d_model]).unsqueeze::<3>();
        }
        for (l, block) in self.blocks.iter().enumerate() {
            let pre = hooks.run(HookPoint::ResidPre(l), x, start);
            if until == Until::Hook(HookPoint::ResidPre(l)) {
                return Ok(pre);
            }
            let attn = self.attention(l, block, block.ln_1.forward(pre.clone()), cache, start);
            let mid = hooks.run(HookPoint::ResidMid(l), pre.clone() + attn, start);
            if until == Until::Hook(HookPoint::ResidMid(l)) {
                return Ok(mid);
            }
            let mlp_input = if cfg.parallel_residual { pre } else { mid.clone() };
            let mlp =
                block.mlp_out.forward(activate(block.mlp_in.forward(block.ln_2.forward(mlp_input)), cfg.activation));
            x = hooks.run(HookPoint::ResidPost(l), mid + mlp, start);
            if until == Until::Hook(HookPoint::ResidPost(l)) {
                return Ok(x);
            }
        }
        cache.advance(s);
        let normed = hooks.run(HookPoint::LnFinal, self.ln_final.forward(x), start); // [1, s, d]
        match until {
            Until::Hook(_) => Ok(normed), // only LnFinal is left
            Until::LastLogits => Ok(self.unembed.unembed(normed.slice([0..1, s - 1..s, 0..cfg.d_model]))),
            Until::Logits => Ok(self.unembed.unembed(normed)),
        }
    }

    /// The logit lens: rows of the residual stream through ln_final and the unembedding, [n, d_model] → [n, vocab].
    pub fn logit_lens(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = x.dims();
        self.unembed.unembed(self.ln_final.forward(x.unsqueeze::<3>())).reshape([n, self.unembed.rows])
    }

    /// One token's logit under the logit lens for each row: [n, d_model] → [n], without the full vocabulary.
    pub fn logit_lens_of(&self, x: Tensor<2>, token: u32) -> Tensor<1> {
        let [n, d] = x.dims();
        let row = self.unembed.embed(&[token], &self.device).reshape([d, 1]);
        self.ln_final.forward(x.unsqueeze::<3>()).reshape([n, d]).matmul(row).reshape([n])
    }

    /// [1, s, d] → attention output [1, s, d], appending this step's keys and values to the cache.
    fn attention(&self, layer: usize, block: &Block, x: Tensor<3>, cache: &mut KvCache, start: usize) -> Tensor<3> {
        let cfg = &self.cfg;
        let d = cfg.d_model;
        let [b, s, _] = x.dims();
        let qkv = block.qkv.forward(x); // [b, s, 3d]
        let part = |i: usize| split_heads(qkv.clone().slice([0..b, 0..s, i * d..(i + 1) * d]), cfg.n_heads);
        let (mut q, mut k, v) = (part(0), part(1), part(2)); // [b, h, s, d_head]
        if let Some(rot) = &self.rotary {
            q = rot.apply(q, start);
            k = rot.apply(k, start);
        }
        let (k, v) = cache.extend(layer, k, v);
        let mut scale = 1.0 / (cfg.d_head() as f64).sqrt();
        if cfg.scale_attn_by_inverse_layer_idx {
            scale /= (layer + 1) as f64;
        }
        block.attn_out.forward(causal_attention(q, k, v, start, scale))
    }
}
