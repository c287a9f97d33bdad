//! Gemma-2 (`google/gemma-2-*` layout): RMS norms with `1 + weight` gains before and after each sublayer,
//! grouped-query attention with full rotate-half rotary positions, GeGLU MLP, embeddings × sqrt(d_model),
//! unembedding tied to the embedding; no biases anywhere.

use super::chunked::{ChunkedRows, MAX_CHUNK_BYTES};
use super::config::ModelConfig;
use super::layers::{Linear, Norm, Rotary, transpose};
use super::transformer::{Block, Transformer};
use super::weights::{HostTensor, Weights};
use crate::error::Result;
use burn::tensor::Device;

pub const PREFIXES: &[&str] = &["model."];

pub fn load(cfg: ModelConfig, w: &dyn Weights, device: &Device) -> Result<Transformer> {
    let (d, eps) = (cfg.d_model, cfg.ln_eps);
    let (dq, dkv) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
    // nn.Linear stores [out, in]; Block reads [in, out].
    let weight = |name: &str, d_in: usize, d_out: usize| -> Result<HostTensor> {
        Ok(transpose(w.get(&format!("{name}.weight"), &[d_out, d_in])?))
    };
    let linear = |name: &str, d_in: usize, d_out: usize| -> Result<Linear> {
        Ok(Linear::new(weight(name, d_in, d_out)?, None, device))
    };
    let norm = |name: &str| Norm::rms_plus_one(w, name, d, eps, device);
    let blocks = (0..cfg.n_layers)
        .map(|i| {
            let p = format!("layers.{i}");
            let qkv = [("q", dq), ("k", dkv), ("v", dkv)]
                .iter()
                .map(|(part, out)| weight(&format!("{p}.self_attn.{part}_proj"), d, *out))
                .collect::<Result<Vec<_>>>()?;
            Ok(Block {
                ln_1: norm(&format!("{p}.input_layernorm"))?,
                qkv: Linear::new(concat_cols(&qkv), None, device),
                attn_out: linear(&format!("{p}.self_attn.o_proj"), dq, d)?,
                ln_attn_out: Some(norm(&format!("{p}.post_attention_layernorm"))?),
                ln_2: norm(&format!("{p}.pre_feedforward_layernorm"))?,
                mlp_in: linear(&format!("{p}.mlp.up_proj"), d, cfg.d_mlp)?,
                mlp_gate: Some(linear(&format!("{p}.mlp.gate_proj"), d, cfg.d_mlp)?),
                mlp_out: linear(&format!("{p}.mlp.down_proj"), cfg.d_mlp, d)?,
                ln_mlp_out: Some(norm(&format!("{p}.post_feedforward_layernorm"))?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let embed = ChunkedRows::upload(w.get("embed_tokens.weight", &[cfg.vocab_size, d])?, device, MAX_CHUNK_BYTES);
    // Tied unless the checkpoint carries its own head.
    let tied = !w.has("lm_head.weight");
    let unembed = if !tied {
        ChunkedRows::upload(w.get("lm_head.weight", &[cfg.vocab_size, d])?, device, MAX_CHUNK_BYTES)
    } else {
        embed.clone()
    };
    Ok(Transformer {
        pos_embed: None,
        rotary: Some(Rotary { dims: cfg.rotary_dims, base: cfg.rotary_base }),
        embed_scale: (d as f64).sqrt(),
        blocks,
        ln_final: norm("norm")?,
        embed,
        unembed,
        tied,
        device: device.clone(),
        cfg,
    })
}

/// Side by side: [d_in, a], [d_in, b], … → [d_in, a + b + …].
fn concat_cols(parts: &[HostTensor]) -> HostTensor {
    let rows = parts[0].shape[0];
    let cols: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut data = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for p in parts {
            let c = p.shape[1];
            data.extend_from_slice(&p.data[r * c..(r + 1) * c]);
        }
    }
    HostTensor::new(vec![rows, cols], data)
}
