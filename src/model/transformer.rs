//! The decoder stack every architecture loads into: embeddings, pre-norm blocks (sequential or parallel
//! residual, optionally normalising each sublayer's output as Gemma-2 does), a final norm and a chunked
//! unembedding, with hooks at every residual point.

use super::chunked::ChunkedRows;
use super::config::ModelConfig;
use super::hooks::{HookPoint, Hooks};
use super::kv_cache::KvCache;
use super::layers::{AttnOptions, Linear, Norm, Rotary, activate, causal_attention, softcap, split_heads};
use crate::device::{Precision, has_f16};
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
    /// Whether `unembed` is `embed` (GPT-2; Gemma without its own head).
    pub tied: bool,
}

/// Where a pass starts: token ids [rows, seq] (row-major; see `batch` for padding), or an activation at a
/// hook taken from an earlier pass of the same tokens, so passes that differ only from that hook on (one per
/// multiplier, say) share what comes before it. Only `blocks.{L}.hook_resid_pre` and `hook_resid_post` can be
/// resumed (`Transformer::resumable`), and a resumed pass starts at position 0 with no cache.
// An input lives for one call: boxing the tensor handle would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Input<'a> {
    Tokens { ids: &'a [u32], rows: usize },
    Resume { at: HookPoint, x: Tensor<3> },
}

impl<'a> Input<'a> {
    /// One sequence.
    pub fn tokens(ids: &'a [u32]) -> Self {
        Self::Tokens { ids, rows: 1 }
    }
}

impl Transformer {
    /// Holds the weight matrices in `precision`. Models load in f32; f16 needs a device with f16 arithmetic, and
    /// there is no way back to f32 short of loading again.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        match (self.precision(), precision) {
            (now, asked) if now == asked => Ok(()),
            (_, Precision::F32) => Err(Error::invalid("an f16 model cannot go back to f32: load it again")),
            (_, Precision::F16) if !has_f16(&self.device) => Err(Error::Device(
                "this device has no f16 arithmetic (WebGPU: the adapter lacks shader-f16): use f32".into(),
            )),
            (_, Precision::F16) => {
                self.half();
                Ok(())
            }
        }
    }

    /// How the weight matrices are held (all alike: `half` casts every one).
    pub fn precision(&self) -> Precision {
        match self.blocks.first().map(|b| b.qkv.weight.dtype()) {
            Some(burn::tensor::DType::F16) => Precision::F16,
            _ => Precision::F32,
        }
    }

    /// Every weight matrix in f16: the linear maps, the embedding and the unembedding (one copy where they are
    /// tied). Positions and norms stay f32.
    fn half(&mut self) {
        for b in &mut self.blocks {
            for linear in [&mut b.qkv, &mut b.attn_out, &mut b.mlp_in, &mut b.mlp_out] {
                linear.half();
            }
            if let Some(gate) = &mut b.mlp_gate {
                gate.half();
            }
        }
        self.embed.half();
        if self.tied {
            self.unembed = self.embed.clone();
        } else {
            self.unembed.half();
        }
    }

    /// Runs `tokens` (at absolute positions `cache.len()..`) and returns logits [1, seq, vocab].
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks) -> Result<Tensor<3>> {
        self.run(Input::tokens(tokens), cache, hooks, Until::Logits)
    }

    /// Like `forward`, but unembeds only the last position: the next token's logits [vocab].
    pub fn next_token_logits(&self, tokens: &[u32], cache: &mut KvCache, hooks: &mut Hooks) -> Result<Tensor<1>> {
        let logits = self.run(Input::tokens(tokens), cache, hooks, Until::LastLogits)?; // [1, 1, vocab]
        Ok(logits.reshape([self.unembed.rows]))
    }

    /// Each row's next-token logits for `rows` sequences of equal length fed together ([rows * seq] ids, at
    /// positions `cache.len()..`): [rows, vocab]. Generation of several continuations at once uses it.
    pub fn next_token_logits_rows(
        &self,
        ids: &[u32],
        rows: usize,
        cache: &mut KvCache,
        hooks: &mut Hooks,
    ) -> Result<Tensor<2>> {
        let logits = self.run(Input::Tokens { ids, rows }, cache, hooks, Until::LastLogits)?; // [rows, 1, vocab]
        Ok(logits.reshape([rows, self.unembed.rows]))
    }

    /// Runs `tokens` from position 0 only as far as `point` and returns the activation there [1, seq, d_model]
    /// (after any intervention at it).
    pub fn activations(&self, tokens: &[u32], hooks: &mut Hooks, point: HookPoint) -> Result<Tensor<3>> {
        self.run(Input::tokens(tokens), &mut KvCache::new(self.cfg.n_layers), hooks, Until::Hook(point))
    }

    /// Runs `input` from position 0 as far as `point` (`LnFinal`: the whole stack, before the unembedding) and
    /// returns the activation there, [rows, seq, d_model].
    pub fn run_to(&self, input: Input<'_>, hooks: &mut Hooks, point: HookPoint) -> Result<Tensor<3>> {
        self.run(input, &mut KvCache::new(self.cfg.n_layers), hooks, Until::Hook(point))
    }

    /// Whether a pass can start at `point` (`Input::Resume`).
    pub fn resumable(point: HookPoint) -> bool {
        matches!(point, HookPoint::ResidPre(_) | HookPoint::ResidPost(_))
    }

    /// The forward pass, as far as `until` says.
    fn run(&self, input: Input<'_>, cache: &mut KvCache, hooks: &mut Hooks, until: Until) -> Result<Tensor<3>> {
        let cfg = &self.cfg;
        let start = cache.len();
        let (mut x, first) = match input {
            Input::Tokens { ids, rows } => (self.embed(ids, rows, start, hooks)?, 0),
            Input::Resume { at, x } => {
                if start != 0 {
                    return Err(Error::invalid("a resumed pass starts at position 0, with no cache"));
                }
                let [b, _, d] = x.dims();
                if d != cfg.d_model {
                    return Err(Error::invalid(format!("resuming with width {d}, but d_model is {}", cfg.d_model)));
                }
                hooks.check(cfg.d_model, b)?;
                if let Until::Hook(p) = until
                    && p.depth() < at.depth()
                {
                    return Err(Error::invalid(format!("a pass resumed at {at} cannot stop at {p}, before it")));
                }
                match at {
                    HookPoint::ResidPre(l) if l < cfg.n_layers => (x, l),
                    HookPoint::ResidPost(l) if l < cfg.n_layers => {
                        let x = hooks.run(at, x, 0);
                        if until == Until::Hook(at) {
                            return Ok(x);
                        }
                        (x, l + 1)
                    }
                    _ => return Err(Error::invalid(format!("a pass cannot be resumed at {at}"))),
                }
            }
        };
        let s = x.dims()[1];
        for (l, block) in self.blocks.iter().enumerate().skip(first) {
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
        let normed = hooks.run(HookPoint::LnFinal, self.ln_final.forward(x), start); // [b, s, d]
        let b = normed.dims()[0];
        match until {
            Until::Hook(_) => Ok(normed), // only LnFinal is left
            Until::LastLogits => Ok(self.logits(normed.slice([0..b, s - 1..s, 0..cfg.d_model]))),
            Until::Logits => Ok(self.logits(normed)),
        }
    }

    /// Token ids [rows * seq] at positions `start..` → the embedded residual stream [rows, seq, d_model].
    fn embed(&self, ids: &[u32], rows: usize, start: usize, hooks: &Hooks) -> Result<Tensor<3>> {
        let cfg = &self.cfg;
        if ids.is_empty() || rows == 0 {
            return Err(Error::invalid("empty prompt: at least one token is needed"));
        }
        if !ids.len().is_multiple_of(rows) {
            return Err(Error::invalid(format!("{} token ids do not make {rows} rows of equal length", ids.len())));
        }
        let s = ids.len() / rows;
        if start + s > cfg.n_ctx {
            return Err(Error::invalid(format!(
                "sequence too long: {} tokens, but the model's context is {} tokens",
                start + s,
                cfg.n_ctx
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(Error::invalid(format!("token id {bad} is outside the vocabulary of {}", cfg.vocab_size)));
        }
        hooks.check(cfg.d_model, rows)?;
        let mut x = self.embed.embed(ids, &self.device).reshape([rows, s, cfg.d_model]); // [rows, s, d]
        if self.embed_scale != 1.0 {
            x = x * self.embed_scale;
        }
        if let Some(wpe) = &self.pos_embed {
            x = x + wpe.clone().slice([start..start + s, 0..cfg.d_model]).unsqueeze::<3>();
        }
        Ok(x)
    }

    /// The logits of chosen tokens only, `m` per row: normalised residuals [n, d_model] (ln_final's output at
    /// the positions read) and ids [n * m] → [n, m], soft-capped where the model says. Two logits of an A/B
    /// item cost two rows of the unembedding, not the whole vocabulary.
    pub fn token_logits(&self, normed: Tensor<2>, ids: &[u32], m: usize) -> Tensor<2> {
        let [n, d] = normed.dims();
        let rows = self.unembed.embed(ids, &self.device).reshape([n, m, d]); // [n, m, d]
        let logits = (rows * normed.reshape([n, 1, d])).sum_dim(2).reshape([n, m]);
        softcap(logits, self.cfg.final_softcap)
    }

    /// Every token's logit for normalised residuals [n, d_model] → [n, vocab].
    pub fn vocab_logits(&self, normed: Tensor<2>) -> Tensor<2> {
        let [n, d] = normed.dims();
        self.logits(normed.reshape([1, n, d])).reshape([n, self.unembed.rows])
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
