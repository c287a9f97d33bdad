//! Reads a Hugging Face `config.json` into the one config the forward passes use.

use crate::error::{Error, Result};
use serde_json::Value;

/// Architecture family of a model, from `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Gpt2,
    GptNeox,
}

/// The MLP non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact erf GELU (`gelu`).
    Gelu,
    /// Tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    Relu,
}

/// Everything the forward pass needs to know about a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_mlp: usize,
    /// Rows of the embedding and unembedding (Pythia pads this past the tokenizer's vocabulary).
    pub vocab_size: usize,
    /// Longest sequence the model takes (GPT-2's learned positions; NeoX's `max_position_embeddings`).
    pub n_ctx: usize,
    pub ln_eps: f64,
    pub activation: Activation,
    /// NeoX: number of leading dims of each head that are rotated.
    pub rotary_dims: usize,
    pub rotary_base: f64,
    /// NeoX: attention and MLP both read the block input.
    pub parallel_residual: bool,
    /// GPT-2's `scale_attn_by_inverse_layer_idx`.
    pub scale_attn_by_inverse_layer_idx: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl ModelConfig {
    pub fn d_head(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Parses `config.json` text; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::file(file, format!("not valid JSON: {e}")))?;
        let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
        let cfg = match model_type {
            "gpt2" => Self::gpt2(&v, file)?,
            "gpt_neox" => Self::neox(&v, file)?,
            "" => return Err(Error::file(file, "no `model_type`: expected \"gpt2\" or \"gpt_neox\"")),
            other => {
                return Err(Error::file(
                    file,
                    format!("unsupported model_type \"{other}\": steerlab runs \"gpt2\" and \"gpt_neox\" (Pythia)"),
                ));
            }
        };
        cfg.validate(file)?;
        Ok(cfg)
    }

    fn gpt2(v: &Value, file: &str) -> Result<Self> {
        let d_model = req_usize(v, "n_embd", file)?;
        Ok(Self {
            arch: Arch::Gpt2,
            d_model,
            n_layers: req_usize(v, "n_layer", file)?,
            n_heads: req_usize(v, "n_head", file)?,
            d_mlp: opt_usize(v, "n_inner", file)?.unwrap_or(4 * d_model),
            vocab_size: req_usize(v, "vocab_size", file)?,
            n_ctx: opt_usize(v, "n_positions", file)?.unwrap_or(1024),
            ln_eps: v.get("layer_norm_epsilon").and_then(Value::as_f64).unwrap_or(1e-5),
            activation: activation(v.get("activation_function").and_then(Value::as_str).unwrap_or("gelu_new"), file)?,
            rotary_dims: 0,
            rotary_base: 0.0,
            parallel_residual: false,
            scale_attn_by_inverse_layer_idx: v
                .get("scale_attn_by_inverse_layer_idx")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            bos_token_id: opt_usize(v, "bos_token_id", file)?.map(|x| x as u32),
            eos_token_id: opt_usize(v, "eos_token_id", file)?.map(|x| x as u32),
        })
    }

    fn neox(v: &Value, file: &str) -> Result<Self> {
        let d_model = req_usize(v, "hidden_size", file)?;
        let n_heads = req_usize(v, "num_attention_heads", file)?;
        // Newer transformers writes `rope_parameters`; older configs `rotary_pct` / `rotary_emb_base`.
        let rope = v.get("rope_parameters");
        let pick = |new: &str, old: &str| {
            rope.and_then(|r| r.get(new)).or_else(|| v.get(new)).or_else(|| v.get(old)).and_then(Value::as_f64)
        };
        let rotary_pct = pick("partial_rotary_factor", "rotary_pct").unwrap_or(1.0);
        let rotary_base = pick("rope_theta", "rotary_emb_base").unwrap_or(10000.0);
        if let Some(kind) = rope.and_then(|r| r.get("rope_type")).and_then(Value::as_str)
            && kind != "default"
        {
            return Err(Error::file(file, format!("rope_type \"{kind}\" is not supported (only \"default\")")));
        }
        if !(0.0..=1.0).contains(&rotary_pct) {
            return Err(Error::file(file, format!("rotary fraction {rotary_pct} is not in [0, 1]")));
        }
        if v.get("attention_bias").and_then(Value::as_bool) == Some(false) {
            return Err(Error::file(file, "attention_bias = false is not supported"));
        }
        let d_head = d_model.checked_div(n_heads).unwrap_or(0);
        Ok(Self {
            arch: Arch::GptNeox,
            d_model,
            n_layers: req_usize(v, "num_hidden_layers", file)?,
            n_heads,
            d_mlp: req_usize(v, "intermediate_size", file)?,
            vocab_size: req_usize(v, "vocab_size", file)?,
            n_ctx: opt_usize(v, "max_position_embeddings", file)?.unwrap_or(2048),
            ln_eps: v.get("layer_norm_eps").and_then(Value::as_f64).unwrap_or(1e-5),
            activation: activation(v.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu"), file)?,
            // As transformers does: int(head_dim * partial_rotary_factor).
            rotary_dims: (d_head as f64 * rotary_pct) as usize,
            rotary_base,
            parallel_residual: v.get("use_parallel_residual").and_then(Value::as_bool).unwrap_or(true),
            scale_attn_by_inverse_layer_idx: false,
            bos_token_id: opt_usize(v, "bos_token_id", file)?.map(|x| x as u32),
            eos_token_id: opt_usize(v, "eos_token_id", file)?.map(|x| x as u32),
        })
    }

    fn validate(&self, file: &str) -> Result<()> {
        let zero = [
            ("hidden size", self.d_model),
            ("layers", self.n_layers),
            ("heads", self.n_heads),
            ("MLP width", self.d_mlp),
            ("vocabulary", self.vocab_size),
            ("context length", self.n_ctx),
        ];
        if let Some((what, _)) = zero.iter().find(|(_, n)| *n == 0) {
            return Err(Error::file(file, format!("{what} must be positive")));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(Error::file(
                file,
                format!("hidden size {} is not divisible by {} heads", self.d_model, self.n_heads),
            ));
        }
        if !self.rotary_dims.is_multiple_of(2) {
            return Err(Error::file(file, format!("rotary dims {} must be even", self.rotary_dims)));
        }
        Ok(())
    }
}

fn activation(name: &str, file: &str) -> Result<Activation> {
    match name {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
        "relu" => Ok(Activation::Relu),
        other => Err(Error::file(file, format!("unsupported activation \"{other}\""))),
    }
}

fn opt_usize(v: &Value, key: &str, file: &str) -> Result<Option<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| Error::file(file, format!("`{key}` must be a non-negative integer, got {x}"))),
    }
}

fn req_usize(v: &Value, key: &str, file: &str) -> Result<usize> {
    opt_usize(v, key, file)?.ok_or_else(|| Error::file(file, format!("missing `{key}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_type_is_named() {
        let e = ModelConfig::from_json(r#"{"model_type":"llama"}"#, "config.json").unwrap_err();
        assert!(e.to_string().contains("unsupported model_type \"llama\""), "{e}");
    }

    #[test]
    fn missing_key_is_named() {
        let e = ModelConfig::from_json(r#"{"model_type":"gpt2","n_embd":8}"#, "c.json").unwrap_err();
        assert_eq!(e.to_string(), "c.json: missing `n_layer`");
    }

    #[test]
    fn neox_old_and_new_rope_keys_agree() {
        let old = r#"{"model_type":"gpt_neox","hidden_size":64,"num_attention_heads":2,"num_hidden_layers":1,
            "intermediate_size":8,"vocab_size":10,"rotary_pct":0.25,"rotary_emb_base":500}"#;
        let new = r#"{"model_type":"gpt_neox","hidden_size":64,"num_attention_heads":2,"num_hidden_layers":1,
            "intermediate_size":8,"vocab_size":10,"rope_parameters":{"rope_type":"default","partial_rotary_factor":0.25,"rope_theta":500}}"#;
        let a = ModelConfig::from_json(old, "a").unwrap();
        let b = ModelConfig::from_json(new, "b").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rotary_dims, 8);
        assert_eq!(a.rotary_base, 500.0);
    }
}
