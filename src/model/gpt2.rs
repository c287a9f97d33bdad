//! GPT-2 (`openai-community/gpt2` layout): learned positions, Conv1D weights already [in, out],
//! unembedding tied to the token embedding.

use super::chunked::{ChunkedRows, MAX_CHUNK_BYTES};
use super::config::ModelConfig;
use super::layers::{Linear, Norm, upload};
use super::transformer::{Block, Transformer};
use super::weights::Weights;
use crate::error::Result;
use burn::tensor::Device;

/// Keys may carry this prefix (as `GPT2LMHeadModel.save_pretrained` writes them).
pub const PREFIXES: &[&str] = &["transformer."];

pub fn load(cfg: ModelConfig, w: &dyn Weights, device: &Device) -> Result<Transformer> {
    let (d, eps) = (cfg.d_model, cfg.ln_eps);
    let linear = |name: &str, d_in: usize, d_out: usize| -> Result<Linear> {
        Ok(Linear::new(
            w.get(&format!("{name}.weight"), &[d_in, d_out])?,
            Some(w.get(&format!("{name}.bias"), &[d_out])?),
            device,
        ))
    };
    let blocks = (0..cfg.n_layers)
        .map(|i| {
            Ok(Block {
                ln_1: Norm::layer(w, &format!("h.{i}.ln_1"), d, eps, device)?,
                qkv: linear(&format!("h.{i}.attn.c_attn"), d, 3 * d)?,
                attn_out: linear(&format!("h.{i}.attn.c_proj"), d, d)?,
                ln_2: Norm::layer(w, &format!("h.{i}.ln_2"), d, eps, device)?,
                mlp_in: linear(&format!("h.{i}.mlp.c_fc"), d, cfg.d_mlp)?,
                mlp_gate: None,
                ln_attn_out: None,
                ln_mlp_out: None,
                mlp_out: linear(&format!("h.{i}.mlp.c_proj"), cfg.d_mlp, d)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let embed = ChunkedRows::upload(w.get("wte.weight", &[cfg.vocab_size, d])?, device, MAX_CHUNK_BYTES);
    Ok(Transformer {
        pos_embed: Some(upload(w.get("wpe.weight", &[cfg.n_ctx, d])?, device)),
        rotary: None,
        embed_scale: 1.0,
        blocks,
        ln_final: Norm::layer(w, "ln_f", d, eps, device)?,
        unembed: embed.clone(),
        tied: true,
        embed,
        device: device.clone(),
        cfg,
    })
}
