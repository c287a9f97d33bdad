//! The decoder stack every architecture loads into: embeddings, pre-norm blocks (sequential or parallel
//! residual, optionally normalising each sublayer's output as Gemma-2 does), a final norm and a chunked
//! unembedding, with hooks at every residual point.

use super::chunked::ChunkedRows;
use super::config::ModelConfig;
use super::hooks::{HookPoint, Hooks};
use super::kv_cache::KvCache;
use super::layers::{AttnOptions, Linear, Norm, Rotary, activate, causal_attention, softcap, split_heads};
use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor};

/// One block. `qkv` maps d_model to [q | k | v] (n_heads query heads, n_kv_heads key and value heads), each
/// head-major (NeoX's per-head grouping is re-laid out at load time so every architecture shares this code).
pub struct Block {
    pub ln_1: Norm,
    pub qkv: Linear,
    pub attn_out: Linear,
    /// Gemma-2 normalises the attention output before adding it to the residual stream.
    pub ln_attn_out: Option<Norm>,
    pub ln_2: Norm,
    pub mlp_in: Linear,
    /// GeGLU (Gemma): the MLP is `mlp_out(act(mlp_gate(x)) · mlp_in(x))`.
    pub mlp_gate: Option<Linear>,
    pub mlp_out: Linear,
    /// Gemma-2 normalises the MLP output too.
    pub ln_mlp_out: Option<Norm>,
}

impl Block {
    fn mlp(&self, x: Tensor<3>, act: super::config::Activation) -> Tensor<3> {
        let hidden = match &self.mlp_gate {
            Some(gate) => activate(gate.forward(x.clone()), act) * self.mlp_in.forward(x),
            None => activate(self.mlp_in.forward(x), act),
        };
        post_norm(&self.ln_mlp_out, self.mlp_out.forward(hidden))
    }
}

fn post_norm(norm: &Option<Norm>, x: Tensor<3>) -> Tensor<3> {
    match norm {
        Some(n) => n.forward(x),
        None => x,
    }
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
    /// Gemma multiplies embeddings by sqrt(d_model); 1 elsewhere.
    pub embed_scale: f64,
    /// GPT-2's learned positions [n_ctx, d_model]; NeoX uses `rotary` instead.
    pub pos_embed: Option<Tensor<2>>,
    pub rotary: Option<Rotary>,
    pub blocks: Vec<Block>,
    pub ln_final: Norm,
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
        if self.embed_scale != 1.0 {
            x = x * self.embed_scale;
        }
        if let Some(wpe) = &self.pos_embed {
            x = x + wpe.clone().slice([start..start + s, 0..cfg.d_model]).unsqueeze::<3>();
        }
        for (l, block) in self.blocks.iter().enumerate() {
            let pre = hooks.run(HookPoint::ResidPre(l), x, start);
            if until == Until::Hook(HookPoint::ResidPre(l)) {
                return Ok(pre);
            }
            let attn = self.attention(l, block, block.ln_1.forward(pre.clone()), cache, start);
            let mid = hooks.run(HookPoint::ResidMid(l), pre.clone() + post_norm(&block.ln_attn_out, attn), start);
            if until == Until::Hook(HookPoint::ResidMid(l)) {
                return Ok(mid);
            }
            let mlp_input = if cfg.parallel_residual { pre } else { mid.clone() };
            let mlp = block.mlp(block.ln_2.forward(mlp_input), cfg.activation);
            x = hooks.run(HookPoint::ResidPost(l), mid + mlp, start);
            if until == Until::Hook(HookPoint::ResidPost(l)) {
                return Ok(x);
            }
        }
        cache.advance(s);
        let normed = hooks.run(HookPoint::LnFinal, self.ln_final.forward(x), start); // [1, s, d]
        match until {
            Until::Hook(_) => Ok(normed), // only LnFinal is left
            Until::LastLogits => Ok(self.logits(normed.slice([0..1, s - 1..s, 0..cfg.d_model]))),
            Until::Logits => Ok(self.logits(normed)),
        }
    }

    /// Normalised residuals [b, s, d] → logits [b, s, vocab], soft-capped where the model says.
    fn logits(&self, normed: Tensor<3>) -> Tensor<3> {
        softcap(self.unembed.unembed(normed), self.cfg.final_softcap)
    }

    /// The logit lens: rows of the residual stream through ln_final and the unembedding, [n, d_model] → [n, vocab].
    pub fn logit_lens(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = x.dims();
        self.logits(self.ln_final.forward(x.unsqueeze::<3>())).reshape([n, self.unembed.rows])
    }

    /// One token's logit under the logit lens for each row: [n, d_model] → [n], without the full vocabulary.
    pub fn logit_lens_of(&self, x: Tensor<2>, token: u32) -> Tensor<1> {
        let [n, d] = x.dims();
        let row = self.unembed.embed(&[token], &self.device).reshape([d, 1]);
        let logit = self.ln_final.forward(x.unsqueeze::<3>()).reshape([n, d]).matmul(row).reshape([n]);
        softcap(logit, self.cfg.final_softcap)
    }

    /// [1, s, d] → attention output [1, s, d], appending this step's keys and values to the cache.
    fn attention(&self, layer: usize, block: &Block, x: Tensor<3>, cache: &mut KvCache, start: usize) -> Tensor<3> {
        let cfg = &self.cfg;
        let (dq, dkv) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
        let [b, s, _] = x.dims();
        let qkv = block.qkv.forward(x); // [b, s, dq + 2 dkv]
        let part = |from: usize, to: usize, heads: usize| split_heads(qkv.clone().slice([0..b, 0..s, from..to]), heads);
        let mut q = part(0, dq, cfg.n_heads); // [b, h, s, d_head]
        let mut k = part(dq, dq + dkv, cfg.n_kv_heads); // [b, h_kv, s, d_head]
        let v = part(dq + dkv, dq + 2 * dkv, cfg.n_kv_heads);
        if let Some(rot) = &self.rotary {
            q = rot.apply(q, start);
            k = rot.apply(k, start);
        }
        let (k, v) = cache.extend(layer, k, v);
        let mut scale = 1.0 / cfg.attn_scale.sqrt();
        if cfg.scale_attn_by_inverse_layer_idx {
            scale /= (layer + 1) as f64;
        }
        let opts = AttnOptions { scale, softcap: cfg.attn_softcap, window: cfg.window(layer) };
        block.attn_out.forward(causal_attention(q, k, v, start, opts))
    }
}
