//! Reads a Hugging Face `config.json` into the one config the forward passes use.

use crate::error::{Error, Result};
use serde_json::Value;

/// Architecture family of a model, from `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Gpt2,
    GptNeox,
    /// Gemma-2: RMSNorm around both sublayers, grouped-query attention, soft-capped logits, GeGLU.
    Gemma2,
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
    /// Key/value heads: fewer than `n_heads` under grouped-query attention (Gemma-2).
    #[serde(default)]
    pub n_kv_heads: usize,
    /// Width of each head: `d_model / n_heads` except where `head_dim` says otherwise (Gemma-2).
    #[serde(default)]
    pub d_head: usize,
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
    /// Attention scores are multiplied by `attn_scale^-1/2`: `d_head`, or Gemma-2's `query_pre_attn_scalar`.
    #[serde(default)]
    pub attn_scale: f64,
    /// Gemma-2: scores become `cap · tanh(scores / cap)` before the mask.
    #[serde(default)]
    pub attn_softcap: Option<f64>,
    /// Gemma-2: logits become `cap · tanh(logits / cap)`.
    #[serde(default)]
    pub final_softcap: Option<f64>,
    /// Gemma-2: a layer marked here sees only the last `sliding_window` keys.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub sliding_layers: Vec<bool>,
    pub bos_token_id: Option<u32>,
    /// Generation stops at any of these (instruction-tuned Gemma lists `<eos>` and `<end_of_turn>`).
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// How many keys layer `layer` attends back over, when it is a sliding-window layer.
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.sliding_window.filter(|_| self.sliding_layers.get(layer).copied().unwrap_or(false))
    }

    /// Whether prompts must start with the BOS token: Gemma's activations are meaningless without it (its
    /// tokenizer always adds it), while GPT-2 and Pythia run on bare text as the CAA and SAE papers did.
    pub fn always_bos(&self) -> bool {
        self.arch == Arch::Gemma2
    }

    /// Parses `config.json` text; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::file(file, format!("not valid JSON: {e}")))?;
        let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
        let cfg = match model_type {
            "gpt2" => Self::gpt2(&v, file)?,
            "gpt_neox" => Self::neox(&v, file)?,
            "gemma2" => Self::gemma2(&v, file)?,
            "" => return Err(Error::file(file, "no `model_type`: expected \"gpt2\", \"gpt_neox\" or \"gemma2\"")),
            other => {
                return Err(Error::file(
                    file,
                    format!(
                        "unsupported model_type \"{other}\": steerlab runs \"gpt2\", \"gpt_neox\" (Pythia) and \"gemma2\""
                    ),
                ));
            }
        };
        cfg.validate(file)?;
        Ok(cfg)
    }

    fn gpt2(v: &Value, file: &str) -> Result<Self> {
        let d_model = req_usize(v, "n_embd", file)?;
        let n_heads = req_usize(v, "n_head", file)?;
        Ok(Self {
            arch: Arch::Gpt2,
            d_model,
            n_layers: req_usize(v, "n_layer", file)?,
            n_heads,
            n_kv_heads: n_heads,
            d_head: d_model.checked_div(n_heads).unwrap_or(0),
            d_mlp: opt_usize(v, "n_inner", file)?.unwrap_or(d_model.saturating_mul(4)),
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
            attn_scale: d_model.checked_div(n_heads).unwrap_or(0) as f64,
            attn_softcap: None,
            final_softcap: None,
            sliding_window: None,
            sliding_layers: Vec::new(),
            bos_token_id: token_id(v, "bos_token_id", file)?,
            eos_token_ids: token_ids(v, "eos_token_id", file)?,
        })
    }

    fn neox(v: &Value, file: &str) -> Result<Self> {
        let d_model = req_usize(v, "hidden_size", file)?;
        let n_heads = req_usize(v, "num_attention_heads", file)?;
        // Newer transformers writes `rope_parameters`; older configs `rotary_pct` / `rotary_emb_base`.
        let rotary_pct = rope_param(v, "partial_rotary_factor", "rotary_pct", file)?.unwrap_or(1.0);
        let rotary_base = rope_param(v, "rope_theta", "rotary_emb_base", file)?.unwrap_or(10000.0);
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
            n_kv_heads: n_heads,
            d_head,
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
            attn_scale: d_head as f64,
            attn_softcap: None,
            final_softcap: None,
            sliding_window: None,
            sliding_layers: Vec::new(),
            bos_token_id: token_id(v, "bos_token_id", file)?,
            eos_token_ids: token_ids(v, "eos_token_id", file)?,
        })
    }

    /// `google/gemma-2-*`: defaults are transformers' Gemma2Config's (the hub configs omit `layer_types`).
    fn gemma2(v: &Value, file: &str) -> Result<Self> {
        let d_model = req_usize(v, "hidden_size", file)?;
        let n_heads = req_usize(v, "num_attention_heads", file)?;
        let n_layers = req_usize(v, "num_hidden_layers", file)?;
        // `layer_types` below is one entry per layer: bounded before it is built.
        within(file, "layers", n_layers, MAX_LAYERS)?;
        let d_head = opt_usize(v, "head_dim", file)?.unwrap_or(d_model.checked_div(n_heads).unwrap_or(0));
        if v.get("attention_bias").and_then(Value::as_bool) == Some(true) {
            return Err(Error::file(file, "attention_bias = true is not supported for gemma2"));
        }
        let act = ["hidden_activation", "hidden_act"].iter().find_map(|k| v.get(*k).and_then(Value::as_str));
        let sliding_layers = match v.get("layer_types") {
            None | Some(Value::Null) => (0..n_layers).map(|i| i % 2 == 0).collect(),
            Some(Value::Array(types)) if types.len() == n_layers => types
                .iter()
                .map(|t| match t.as_str() {
                    Some("sliding_attention") => Ok(true),
                    Some("full_attention") => Ok(false),
                    _ => Err(Error::file(file, format!("unknown layer type {t} in `layer_types`"))),
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(Error::file(file, format!("`layer_types` must list {n_layers} layer types, got {other}")));
            }
        };
        Ok(Self {
            arch: Arch::Gemma2,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: opt_usize(v, "num_key_value_heads", file)?.unwrap_or(n_heads),
            d_head,
            d_mlp: req_usize(v, "intermediate_size", file)?,
            vocab_size: req_usize(v, "vocab_size", file)?,
            n_ctx: opt_usize(v, "max_position_embeddings", file)?.unwrap_or(8192),
            ln_eps: v.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6),
            activation: activation(act.unwrap_or("gelu_pytorch_tanh"), file)?,
            rotary_dims: d_head,
            rotary_base: rope_param(v, "rope_theta", "rope_theta", file)?.unwrap_or(10000.0),
            parallel_residual: false,
            scale_attn_by_inverse_layer_idx: false,
            attn_scale: opt_f64(v, "query_pre_attn_scalar", file)?.unwrap_or(256.0),
            attn_softcap: softcap(v, "attn_logit_softcapping", 50.0, file)?,
            final_softcap: softcap(v, "final_logit_softcapping", 30.0, file)?,
            sliding_window: match v.get("sliding_window") {
                Some(Value::Null) => None,
                _ => Some(opt_usize(v, "sliding_window", file)?.unwrap_or(4096)),
            },
            sliding_layers,
            bos_token_id: token_id(v, "bos_token_id", file)?.or(Some(2)),
            eos_token_ids: match token_ids(v, "eos_token_id", file)? {
                ids if ids.is_empty() && v.get("eos_token_id").is_none() => vec![1],
                ids => ids,
            },
        })
    }

    fn validate(&self, file: &str) -> Result<()> {
        let bounds = [
            ("layers", self.n_layers, MAX_LAYERS),
            ("hidden size", self.d_model, MAX_WIDTH),
            ("heads", self.n_heads, MAX_HEADS),
            ("key/value heads", self.n_kv_heads, MAX_HEADS),
            ("head dim", self.d_head, MAX_WIDTH),
            ("MLP width", self.d_mlp, MAX_MLP),
            ("vocabulary", self.vocab_size, MAX_VOCAB),
            ("context length", self.n_ctx, MAX_CTX),
            ("sliding window", self.sliding_window.unwrap_or(1), MAX_CTX),
        ];
        for (what, n, max) in bounds {
            within(file, what, n, max)?;
        }
        // Every weight matrix must be addressable here (wasm32's usize is 32 bits) and the model at most
        // MAX_PARAMS: a config that passes cannot make the loader or the random-weight benchmarks overflow.
        let q_width = self.n_heads.checked_mul(self.d_head);
        let matrices = [
            ("the embedding", self.vocab_size.checked_mul(self.d_model)),
            ("the positions", self.n_ctx.checked_mul(self.d_model)),
            ("a query projection", q_width.and_then(|q| q.checked_mul(self.d_model)).and_then(|n| n.checked_mul(3))),
            ("an MLP matrix", self.d_mlp.checked_mul(self.d_model)),
        ];
        let mut params: u64 = 0;
        for (what, n) in matrices {
            let n = n.ok_or_else(|| Error::file(file, format!("{what} is too large to address on this machine")))?;
            params = params.saturating_add(n as u64);
        }
        let per_layer = (self.d_mlp as u64 * 3 + self.n_heads as u64 * self.d_head as u64 * 4) * self.d_model as u64;
        params = params.saturating_add(per_layer.saturating_mul(self.n_layers as u64));
        if params > MAX_PARAMS {
            return Err(Error::file(file, format!("{params} parameters is over the {MAX_PARAMS} this reader accepts")));
        }
        let zero = [
            ("hidden size", self.d_model),
            ("layers", self.n_layers),
            ("heads", self.n_heads),
            ("key/value heads", self.n_kv_heads),
            ("head dim", self.d_head),
            ("MLP width", self.d_mlp),
            ("vocabulary", self.vocab_size),
            ("context length", self.n_ctx),
        ];
        if let Some((what, _)) = zero.iter().find(|(_, n)| *n == 0) {
            return Err(Error::file(file, format!("{what} must be positive")));
        }
        if self.arch != Arch::Gemma2 && !self.d_model.is_multiple_of(self.n_heads) {
            return Err(Error::file(
                file,
                format!("hidden size {} is not divisible by {} heads", self.d_model, self.n_heads),
            ));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::file(
                file,
                format!("{} heads cannot share {} key/value heads evenly", self.n_heads, self.n_kv_heads),
            ));
        }
        if self.sliding_window == Some(0) {
            return Err(Error::file(file, "sliding_window must be positive"));
        }
        let positive = |x: f64| x > 0.0; // NaN is not
        if !positive(self.attn_scale)
            || [self.attn_softcap, self.final_softcap].into_iter().flatten().any(|c| !positive(c))
        {
            return Err(Error::file(file, "query_pre_attn_scalar and the soft-caps must be positive"));
        }
        if !self.rotary_dims.is_multiple_of(2) {
            return Err(Error::file(file, format!("rotary dims {} must be even", self.rotary_dims)));
        }
        Ok(())
    }
}

/// Sanity bounds, far above every model steerlab runs (Gemma-2-27B: 46 layers, 4,608 wide, 36,864 MLP, 256,000
/// tokens), checked before anything is sized from a config.
pub const MAX_LAYERS: usize = 512;
pub const MAX_WIDTH: usize = 65_536;
pub const MAX_HEADS: usize = 1024;
pub const MAX_MLP: usize = 1 << 20;
pub const MAX_VOCAB: usize = 1 << 22;
pub const MAX_CTX: usize = 1 << 20;
pub const MAX_PARAMS: u64 = 200_000_000_000;

fn within(file: &str, what: &str, n: usize, max: usize) -> Result<()> {
    if n > max {
        return Err(Error::file(file, format!("{what}: {n} is over the limit of {max} (a corrupt config?)")));
    }
    Ok(())
}

fn activation(name: &str, file: &str) -> Result<Activation> {
    match name {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
        "relu" => Ok(Activation::Relu),
        other => Err(Error::file(file, format!("unsupported activation \"{other}\""))),
    }
}

/// A rotary setting from `rope_parameters` (newer transformers) or the top level under either name.
fn rope_param(v: &Value, new: &str, old: &str, file: &str) -> Result<Option<f64>> {
    let rope = v.get("rope_parameters").filter(|r| !r.is_null());
    if let Some(kind) = rope.and_then(|r| r.get("rope_type")).and_then(Value::as_str)
        && kind != "default"
    {
        return Err(Error::file(file, format!("rope_type \"{kind}\" is not supported (only \"default\")")));
    }
    match rope.and_then(|r| r.get(new)).or_else(|| v.get(new)).or_else(|| v.get(old)) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_f64().map(Some).ok_or_else(|| Error::file(file, format!("`{new}` must be a number, got {x}"))),
    }
}

/// A soft-cap: absent means transformers' default, `null` means none.
fn softcap(v: &Value, key: &str, default: f64, file: &str) -> Result<Option<f64>> {
    match v.get(key) {
        Some(Value::Null) => Ok(None),
        _ => Ok(Some(opt_f64(v, key, file)?.unwrap_or(default))),
    }
}

fn opt_f64(v: &Value, key: &str, file: &str) -> Result<Option<f64>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_f64().map(Some).ok_or_else(|| Error::file(file, format!("`{key}` must be a number, got {x}"))),
    }
}

/// A special token id (`null` or absent: none).
fn token_id(v: &Value, key: &str, file: &str) -> Result<Option<u32>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => {
            as_token(x).map(Some).ok_or_else(|| Error::file(file, format!("`{key}` must be a token id, got {x}")))
        }
    }
}

/// One token id or a list of them.
fn token_ids(v: &Value, key: &str, file: &str) -> Result<Vec<u32>> {
    let bad = |x: &Value| Error::file(file, format!("`{key}` must be a token id or a list of them, got {x}"));
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(ids)) => ids.iter().map(|x| as_token(x).ok_or_else(|| bad(x))).collect(),
        Some(x) => Ok(vec![as_token(x).ok_or_else(|| bad(x))?]),
    }
}

fn as_token(x: &Value) -> Option<u32> {
    x.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn opt_usize(v: &Value, key: &str, file: &str) -> Result<Option<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
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
        assert_eq!(e.to_string(), "c.json: missing `n_head`");
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

    /// google/gemma-2-2b's config.json as the hub has it (no `layer_types`): transformers' defaults fill in.
    #[test]
    fn gemma2_hub_config() {
        let text = r#"{"architectures":["Gemma2ForCausalLM"],"attention_bias":false,"attn_logit_softcapping":50.0,
            "bos_token_id":2,"cache_implementation":"hybrid","eos_token_id":[1,107],"final_logit_softcapping":30.0,
            "head_dim":256,"hidden_act":"gelu_pytorch_tanh","hidden_activation":"gelu_pytorch_tanh",
            "hidden_size":2304,"intermediate_size":9216,"max_position_embeddings":8192,"model_type":"gemma2",
            "num_attention_heads":8,"num_hidden_layers":26,"num_key_value_heads":4,"pad_token_id":0,
            "query_pre_attn_scalar":256,"rms_norm_eps":1e-06,"rope_theta":10000.0,"sliding_window":4096,
            "torch_dtype":"float32","vocab_size":256000}"#;
        let c = ModelConfig::from_json(text, "config.json").unwrap();
        assert_eq!(
            (c.arch, c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.rotary_dims),
            (Arch::Gemma2, 2304, 8, 4, 256, 256)
        );
        assert_eq!((c.attn_scale, c.attn_softcap, c.final_softcap), (256.0, Some(50.0), Some(30.0)));
        assert_eq!((c.window(0), c.window(1), c.window(24), c.window(25)), (Some(4096), None, Some(4096), None));
        assert_eq!((c.bos_token_id, c.eos_token_ids.clone(), c.always_bos()), (Some(2), vec![1, 107], true));
    }

    #[test]
    fn gemma2_bad_settings_are_named() {
        let base = r#""model_type":"gemma2","hidden_size":8,"num_attention_heads":4,"num_hidden_layers":2,
            "intermediate_size":8,"vocab_size":10"#;
        let err = |extra: &str| ModelConfig::from_json(&format!("{{{base},{extra}}}"), "c").unwrap_err().to_string();
        assert!(err(r#""num_key_value_heads":3"#).contains("4 heads cannot share 3 key/value heads"));
        assert!(err(r#""layer_types":["full_attention"]"#).contains("must list 2 layer types"));
        assert!(err(r#""layer_types":["full_attention","local"]"#).contains("unknown layer type \"local\""));
        assert!(err(r#""attn_logit_softcapping":0"#).contains("soft-caps must be positive"));
        assert!(err(r#""sliding_window":0"#).contains("sliding_window must be positive"));
        assert!(err(r#""eos_token_id":[1,-1]"#).contains("`eos_token_id` must be a token id or a list"));
        let c = ModelConfig::from_json(
            &format!("{{{base},\"sliding_window\":null,\"final_logit_softcapping\":null}}"),
            "c",
        )
        .unwrap();
        assert_eq!((c.window(0), c.final_softcap, c.d_head), (None, None, 2));
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_allocated() {
        let gemma = |layers: &str| {
            format!(
                r#"{{"model_type":"gemma2","hidden_size":8,"num_attention_heads":4,"num_hidden_layers":{layers},
                "intermediate_size":8,"vocab_size":10}}"#
            )
        };
        let err = |text: &str| ModelConfig::from_json(text, "c").unwrap_err().to_string();
        assert!(err(&gemma("1000000000000")).contains("layers: 1000000000000 is over the limit of 512"));
        assert!(err(&gemma("18446744073709551615")).contains("is over the limit of 512"));
        let gpt2 = |embd: &str, head: &str| {
            format!(r#"{{"model_type":"gpt2","n_embd":{embd},"n_head":{head},"n_layer":2,"vocab_size":10}}"#)
        };
        assert!(err(&gpt2("4611686018427387904", "2")).contains("hidden size"));
        let wide = r#"{"model_type":"gpt_neox","hidden_size":65536,"num_attention_heads":1024,"num_hidden_layers":512,
            "intermediate_size":1048576,"vocab_size":4194304}"#;
        assert!(err(wide).contains("parameters is over"), "{}", err(wide));
    }
}
