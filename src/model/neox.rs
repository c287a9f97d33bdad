//! GPT-NeoX / Pythia (`EleutherAI/pythia-*` layout): partial rotate-half rotary positions, fused
//! per-head QKV, nn.Linear weights [out, in], untied `embed_out`.

use super::chunked::{ChunkedRows, MAX_CHUNK_BYTES};
use super::config::ModelConfig;
use super::layers::{Linear, Norm, Rotary, transpose};
use super::transformer::{Block, Transformer};
use super::weights::{HostTensor, Weights};
use crate::error::Result;
use burn::tensor::Device;

pub const PREFIXES: &[&str] = &["gpt_neox."];

pub fn load(cfg: ModelConfig, w: &dyn Weights, device: &Device) -> Result<Transformer> {
    let (d, eps) = (cfg.d_model, cfg.ln_eps);
    let linear = |name: &str, d_in: usize, d_out: usize| -> Result<Linear> {
        let weight = transpose(w.get(&format!("{name}.weight"), &[d_out, d_in])?);
        Ok(Linear::new(weight, Some(w.get(&format!("{name}.bias"), &[d_out])?), device))
    };
    let blocks = (0..cfg.n_layers)
        .map(|i| {
            let p = format!("layers.{i}");
            let qkv_w = w.get(&format!("{p}.attention.query_key_value.weight"), &[3 * d, d])?;
            let qkv_b = w.get(&format!("{p}.attention.query_key_value.bias"), &[3 * d])?;
            let (qkv_w, qkv_b) = regroup_qkv(qkv_w, qkv_b, cfg.n_heads);
            Ok(Block {
                ln_1: Norm::layer(w, &format!("{p}.input_layernorm"), d, eps, device)?,
                qkv: Linear::new(transpose(qkv_w), Some(qkv_b), device),
                attn_out: linear(&format!("{p}.attention.dense"), d, d)?,
                ln_2: Norm::layer(w, &format!("{p}.post_attention_layernorm"), d, eps, device)?,
                mlp_in: linear(&format!("{p}.mlp.dense_h_to_4h"), d, cfg.d_mlp)?,
                mlp_gate: None,
                ln_attn_out: None,
                ln_mlp_out: None,
                mlp_out: linear(&format!("{p}.mlp.dense_4h_to_h"), cfg.d_mlp, d)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let shape = [cfg.vocab_size, d];
    let embed = ChunkedRows::upload(w.get("embed_in.weight", &shape)?, device, MAX_CHUNK_BYTES);
    // Pythia checkpoints name the unembedding `embed_out`; transformers 5 saves it as `lm_head`.
    let unembed_name = if w.has("embed_out.weight") { "embed_out.weight" } else { "lm_head.weight" };
    let unembed = ChunkedRows::upload(w.get(unembed_name, &shape)?, device, MAX_CHUNK_BYTES);
    Ok(Transformer {
        pos_embed: None,
        rotary: Some(Rotary { dims: cfg.rotary_dims, base: cfg.rotary_base }),
        embed_scale: 1.0,
        blocks,
        ln_final: Norm::layer(w, "final_layer_norm", d, eps, device)?,
        embed,
        unembed,
        tied: false,
        device: device.clone(),
        cfg,
    })
}

/// NeoX fuses QKV per head: output row `head * 3 * d_head + part * d_head + j`. Re-lays the rows as
/// `part * d_model + head * d_head + j` ([q | k | v], head-major), the layout `Block` reads.
fn regroup_qkv(w: HostTensor, b: HostTensor, n_heads: usize) -> (HostTensor, HostTensor) {
    let (rows, d_in) = (w.shape[0], w.shape[1]);
    let d = rows / 3;
    let d_head = d / n_heads;
    let mut nw = vec![0.0; rows * d_in];
    let mut nb = vec![0.0; rows];
    for head in 0..n_heads {
        for part in 0..3 {
            for j in 0..d_head {
                let from = head * 3 * d_head + part * d_head + j;
                let to = part * d + head * d_head + j;
                nw[to * d_in..(to + 1) * d_in].copy_from_slice(&w.data[from * d_in..(from + 1) * d_in]);
                nb[to] = b.data[from];
            }
        }
    }
    (HostTensor::new(vec![rows, d_in], nw), HostTensor::new(vec![rows], nb))
}
