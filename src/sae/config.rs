//! Reads an SAELens `cfg.json` (current and older key names).

use crate::error::{Error, Result};
use serde_json::Value;

/// The activation that turns pre-activations into feature activations.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaeArch {
    /// ReLU.
    Standard,
    /// ReLU gated by a learned per-feature `threshold`.
    JumpRelu,
    /// Keep the k largest pre-activations (ReLU'd), zero the rest.
    TopK { k: usize },
}

/// How the SAE normalises its input before encoding (SAELens `normalize_activations`); `decode`
/// works in the normalised space and `Sae::reconstruct` undoes it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    None,
    /// Training-time scaling that SAELens folds into the weights before saving: identity at inference,
    /// as `SAE.load_from_disk` treats it.
    ExpectedAverageOnlyIn,
    /// x · sqrt(d_in) / ‖x‖, undone on the reconstruction.
    ConstantNormRescale,
    /// (x − mean) / (std + 1e-5) with the unbiased std, undone as · std + mean (as SAELens does).
    LayerNorm,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SaeConfig {
    pub arch: SaeArch,
    pub d_in: usize,
    pub d_sae: usize,
    /// TransformerLens hook the SAE reads, e.g. `blocks.8.hook_resid_pre`.
    pub hook_name: String,
    /// Subtract `b_dec` from the input before encoding.
    pub apply_b_dec_to_input: bool,
    pub normalize: Normalize,
    /// TopK SAEs that scale pre-activations by ‖W_dec row‖ (folded into the weights at load).
    pub rescale_acts_by_decoder_norm: bool,
    /// Trained on TransformerLens activations with `center_writing_weights` (GPT-2 small's res-jb SAEs): that
    /// residual stream is the Hugging Face one minus its mean over d_model, so inputs are centred first.
    #[serde(default)]
    pub center_input: bool,
}

impl SaeConfig {
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::file(file, format!("not valid JSON: {e}")))?;
        // Newer SAELens nests some keys under `metadata`; older configs use `hook_point`.
        let get = |k: &str| v.get(k).or_else(|| v.get("metadata").and_then(|m| m.get(k)));
        let usize_of = |k: &str| -> Result<usize> {
            get(k)
                .and_then(Value::as_u64)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .filter(|&n| n > 0)
                .ok_or_else(|| Error::file(file, format!("missing or invalid `{k}` (a positive integer)")))
        };
        let hook_name = get("hook_name")
            .or_else(|| get("hook_point"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::file(file, "missing `hook_name` (or older `hook_point`)"))?
            .to_string();
        let arch = match get("architecture").and_then(Value::as_str).unwrap_or("standard") {
            "standard" => SaeArch::Standard,
            "jumprelu" => SaeArch::JumpRelu,
            "topk" => {
                let k = get("activation_fn_kwargs")
                    .and_then(|a| a.get("k"))
                    .or_else(|| get("k"))
                    .and_then(Value::as_u64)
                    .filter(|&k| k > 0)
                    .ok_or_else(|| Error::file(file, "topk SAE without a positive `activation_fn_kwargs.k`"))?;
                SaeArch::TopK { k: usize::try_from(k).unwrap_or(usize::MAX) }
            }
            other => {
                return Err(Error::file(
                    file,
                    format!("unsupported architecture \"{other}\" (expected standard, jumprelu or topk)"),
                ));
            }
        };
        let normalize = match get("normalize_activations").and_then(Value::as_str).unwrap_or("none") {
            "none" => Normalize::None,
            "expected_average_only_in" => Normalize::ExpectedAverageOnlyIn,
            "constant_norm_rescale" => Normalize::ConstantNormRescale,
            "layer_norm" => Normalize::LayerNorm,
            other => {
                return Err(Error::file(
                    file,
                    format!(
                        "normalize_activations \"{other}\" is not supported (expected none, \
                         expected_average_only_in, constant_norm_rescale or layer_norm)"
                    ),
                ));
            }
        };
        let cfg = Self {
            arch,
            d_in: usize_of("d_in")?,
            d_sae: usize_of("d_sae")?,
            hook_name,
            apply_b_dec_to_input: get("apply_b_dec_to_input").and_then(Value::as_bool).unwrap_or(false),
            normalize,
            rescale_acts_by_decoder_norm: get("rescale_acts_by_decoder_norm").and_then(Value::as_bool) == Some(true),
            center_input: get("model_from_pretrained_kwargs")
                .and_then(|k| k.get("center_writing_weights"))
                .and_then(Value::as_bool)
                == Some(true),
        };
        if let SaeArch::TopK { k } = cfg.arch
            && k > cfg.d_sae
        {
            return Err(Error::file(file, format!("topk k = {k} exceeds d_sae = {}", cfg.d_sae)));
        }
        cfg.check_sizes(file)?;
        Ok(cfg)
    }
}

/// `cfg.json` with a release's overrides (a JSON object) merged in at the top level, as SAELens's
/// `config_overrides` are.
pub fn with_overrides(cfg: &str, overrides: Option<&str>) -> std::result::Result<String, String> {
    let Some(o) = overrides else { return Ok(cfg.to_string()) };
    let mut v: Value = serde_json::from_str(cfg).map_err(|e| format!("cfg.json is not valid JSON: {e}"))?;
    let o: Value = serde_json::from_str(o).map_err(|e| format!("bad config overrides: {e}"))?;
    match (v.as_object_mut(), o.as_object()) {
        (Some(v), Some(o)) => v.extend(o.clone()),
        _ => return Err("cfg.json and the config overrides must both be JSON objects".into()),
    }
    Ok(v.to_string())
}

/// Sanity bounds on an SAE's sizes, checked before anything is sized from them: inputs as wide as the widest
/// model steerlab reads, and up to 16M features (OpenAI's largest published SAE).
pub const MAX_D_IN: usize = crate::model::config::MAX_WIDTH;
pub const MAX_D_SAE: usize = 1 << 24;

impl SaeConfig {
    /// The sizes are within bounds and each matrix, d_in × d_sae, is addressable here (wasm32's usize is 32 bits).
    pub fn check_sizes(&self, file: &str) -> Result<()> {
        for (what, n, max) in [("d_in", self.d_in, MAX_D_IN), ("d_sae", self.d_sae, MAX_D_SAE)] {
            if n > max {
                return Err(Error::file(file, format!("{what} = {n} is over the limit of {max} (a corrupt config?)")));
            }
        }
        if self.d_in.checked_mul(self.d_sae).and_then(|n| n.checked_mul(4)).is_none() {
            return Err(Error::file(
                file,
                format!("a {} x {} matrix is too large to address on this machine", self.d_in, self.d_sae),
            ));
        }
        Ok(())
    }
}

/// The config of an EleutherAI sparsify SAE (`cfg.json` beside `sae.safetensors`), whose directory is named by
/// its hookpoint: `layers.L`, `gpt_neox.layers.L`, `h.L` or `transformer.h.L`, the output of block L.
pub fn sparsify_config(text: &str, file: &str, hookpoint: &str) -> Result<SaeConfig> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::file(file, format!("not valid JSON: {e}")))?;
    let num = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let flag = |k: &str| v.get(k).and_then(Value::as_bool) == Some(true);
    if flag("skip_connection") || flag("transcode") {
        return Err(Error::file(file, "sparsify transcoders and skip connections are not supported (SAEs only)"));
    }
    let d_in = num("d_in").filter(|&d| d > 0).ok_or_else(|| Error::file(file, "missing or invalid `d_in`"))?;
    let d_sae = match num("num_latents") {
        Some(n) if n > 0 => n,
        _ => {
            let e = num("expansion_factor")
                .filter(|&e| e > 0)
                .ok_or_else(|| Error::file(file, "needs a positive `num_latents` or `expansion_factor`"))?;
            d_in.checked_mul(e)
                .ok_or_else(|| Error::file(file, format!("d_in {d_in} x expansion_factor {e} overflows")))?
        }
    };
    let k = num("k")
        .filter(|&k| k > 0 && k <= d_sae)
        .ok_or_else(|| Error::file(file, format!("missing or invalid `k` (1 to num_latents = {d_sae})")))?;
    let layer = hookpoint
        .rsplit_once('.')
        .filter(|(head, _)| matches!(*head, "layers" | "gpt_neox.layers" | "h" | "transformer.h"))
        .and_then(|(_, l)| l.parse::<usize>().ok())
        .ok_or_else(|| {
            Error::file(
                file,
                format!(
                    "hookpoint \"{hookpoint}\" (the directory name) is not a residual stream output such as layers.6"
                ),
            )
        })?;
    let cfg = SaeConfig {
        arch: SaeArch::TopK { k },
        d_in,
        d_sae,
        hook_name: format!("blocks.{layer}.hook_resid_post"),
        apply_b_dec_to_input: true,
        normalize: Normalize::None,
        rescale_acts_by_decoder_norm: false,
        center_input: false,
    };
    cfg.check_sizes(file)?;
    Ok(cfg)
}

/// The config of a Gemma Scope SAE (`params.npz`, JumpReLU, encoder reading x without subtracting b_dec), its hook
/// read from its path as sae-lens reads it: `.../gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71/params.npz`
/// reads `blocks.20.hook_resid_post`. Only residual-stream SAEs are taken: steerlab hooks the residual stream.
pub fn gemma_scope_config(path: &str, d_in: usize, d_sae: usize) -> Result<SaeConfig> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    if let Some(p) = parts.iter().find(|p| p.contains("-mlp") || p.contains("-att") || p.contains("embedding")) {
        return Err(Error::file(
            path,
            format!(
                "\"{p}\": Gemma Scope MLP, attention and embedding SAEs read hooks steerlab does not have (use a -res SAE)"
            ),
        ));
    }
    let layer = parts.iter().rev().find_map(|p| p.strip_prefix("layer_").and_then(|l| l.parse::<usize>().ok()));
    let layer = layer.ok_or_else(|| {
        Error::file(path, "no layer_N directory in the path, so the hook is unknown (keep Gemma Scope's layout)")
    })?;
    let cfg = SaeConfig {
        arch: SaeArch::JumpRelu,
        d_in,
        d_sae,
        hook_name: format!("blocks.{layer}.hook_resid_post"),
        apply_b_dec_to_input: false,
        normalize: Normalize::None,
        rescale_acts_by_decoder_norm: false,
        center_input: false,
    };
    cfg.check_sizes(path)?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_current_and_older_keys() {
        let new = r#"{"architecture":"topk","d_in":4,"d_sae":8,"hook_name":"blocks.1.hook_resid_pre",
            "activation_fn_kwargs":{"k":3},"apply_b_dec_to_input":true,"normalize_activations":"none"}"#;
        let cfg = SaeConfig::from_json(new, "cfg.json").unwrap();
        assert_eq!(cfg.arch, SaeArch::TopK { k: 3 });
        assert!(cfg.apply_b_dec_to_input);
        let old = r#"{"d_in":4,"d_sae":8,"hook_point":"blocks.0.hook_resid_pre"}"#;
        let cfg = SaeConfig::from_json(old, "cfg.json").unwrap();
        assert_eq!((cfg.arch, cfg.hook_name.as_str()), (SaeArch::Standard, "blocks.0.hook_resid_pre"));
    }

    #[test]
    fn sparsify_configs() {
        let cfg = r#"{"expansion_factor":3,"num_latents":0,"k":4,"d_in":8}"#;
        let c = sparsify_config(cfg, "c.json", "gpt_neox.layers.2").unwrap();
        assert_eq!((c.arch, c.d_sae, c.hook_name.as_str()), (SaeArch::TopK { k: 4 }, 24, "blocks.2.hook_resid_post"));
        let e = sparsify_config(cfg, "c.json", "embed_in").unwrap_err().to_string();
        assert!(e.contains("hookpoint \"embed_in\""), "{e}");
        let e = sparsify_config(r#"{"d_in":8,"k":4,"transcode":true,"num_latents":8}"#, "c.json", "layers.1");
        assert!(e.unwrap_err().to_string().contains("transcoders"));
    }

    #[test]
    fn gemma_scope_hooks() {
        let c = gemma_scope_config("gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71/params.npz", 8, 16).unwrap();
        assert_eq!(
            (c.arch, c.hook_name.as_str(), c.apply_b_dec_to_input),
            (SaeArch::JumpRelu, "blocks.20.hook_resid_post", false)
        );
        let e = gemma_scope_config("gemma-scope-2b-pt-mlp/layer_3/width_16k/params.npz", 8, 16).unwrap_err();
        assert!(e.to_string().contains("use a -res SAE"), "{e}");
        assert!(gemma_scope_config("downloads/params.npz", 8, 16).unwrap_err().to_string().contains("no layer_N"));
    }

    #[test]
    fn bad_configs_are_named() {
        let e = SaeConfig::from_json(r#"{"d_in":4,"d_sae":8}"#, "c.json").unwrap_err().to_string();
        assert_eq!(e, "c.json: missing `hook_name` (or older `hook_point`)");
        let e = SaeConfig::from_json(r#"{"d_in":4,"d_sae":8,"hook_name":"h","architecture":"gated"}"#, "c.json");
        assert!(e.unwrap_err().to_string().contains("unsupported architecture \"gated\""));
        let e = SaeConfig::from_json(
            r#"{"d_in":4,"d_sae":2,"hook_name":"h","architecture":"topk","activation_fn_kwargs":{"k":3}}"#,
            "c.json",
        );
        assert!(e.unwrap_err().to_string().contains("exceeds d_sae"));
        let e = SaeConfig::from_json(
            r#"{"d_in":4,"d_sae":8,"hook_name":"h","normalize_activations":"covariance_whitening"}"#,
            "c.json",
        );
        assert!(e.unwrap_err().to_string().contains("normalize_activations \"covariance_whitening\" is not supported"));
    }

    #[test]
    fn absurd_sizes_are_refused() {
        let e = SaeConfig::from_json(r#"{"d_in":4,"d_sae":1000000000000,"hook_name":"h"}"#, "c.json");
        assert!(e.unwrap_err().to_string().contains("d_sae = 1000000000000 is over the limit"));
        let cfg = r#"{"expansion_factor":4611686018427387904,"k":4,"d_in":8}"#;
        let e = sparsify_config(cfg, "c.json", "layers.1").unwrap_err().to_string();
        assert!(e.contains("overflows"), "{e}");
        let cfg = r#"{"expansion_factor":4194304,"k":4,"d_in":8}"#;
        let e = sparsify_config(cfg, "c.json", "layers.1").unwrap_err().to_string();
        assert!(e.contains("d_sae = 33554432 is over the limit"), "{e}");
        assert!(gemma_scope_config("gemma-scope/layer_1/params.npz", 1 << 17, 8).is_err());
    }
}
