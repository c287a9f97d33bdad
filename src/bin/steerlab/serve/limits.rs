//! How much one request may ask of the helper: its body size, its prompts' length, how many tokens it generates
//! and how large its sweeps are. The model's own context length bounds token counts further (the engine checks);
//! typed datasets and corpora are bounded by the body size.

use clap::Args;
use serde::Serialize;
use steerlab::engine::Request;
use steerlab::model::generate::GenerateOptions;

#[derive(Args, Clone, Serialize)]
pub struct Limits {
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// Longest prompt or typed text, in characters.
    #[arg(long, default_value_t = 8000)]
    pub max_prompt_chars: usize,
    /// Most tokens one generation may ask for.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// Most multipliers, layers, features or sparsity levels in one sweep.
    #[arg(long, default_value_t = 256)]
    pub max_sweep: usize,
}

impl Limits {
    /// Why `req` asks too much, if it does.
    pub fn check(&self, req: &Request) -> Result<(), String> {
        let text = |what: &str, t: &str| {
            let n = t.chars().count();
            if n > self.max_prompt_chars {
                Err(format!("{what} is {n} characters long; this helper takes at most {}", self.max_prompt_chars))
            } else {
                Ok(())
            }
        };
        let sweep = |what: &str, n: usize| {
            if n > self.max_sweep {
                Err(format!("{n} {what} in one request; this helper takes at most {}", self.max_sweep))
            } else {
                Ok(())
            }
        };
        let generation = |options: &GenerateOptions| {
            if options.max_new_tokens > self.max_new_tokens {
                Err(format!(
                    "max_new_tokens is {}; this helper generates at most {} tokens",
                    options.max_new_tokens, self.max_new_tokens
                ))
            } else {
                Ok(())
            }
        };
        match req {
            Request::Status => Ok(()),
            Request::Generate { prompt, steering, options } => {
                text("the prompt", prompt)?;
                sweep("steering interventions", steering.len())?;
                generation(options)
            }
            Request::GenerateVariants { prompt, variants, options } => {
                text("the prompt", prompt)?;
                sweep("variants", variants.len())?;
                sweep("steering interventions", variants.iter().map(Vec::len).sum())?;
                generation(options)
            }
            Request::Caa { .. } => Ok(()),
            Request::ActAdd { positive, negative, .. } => {
                text("the positive prompt", positive).and_then(|_| text("the negative prompt", negative))
            }
            Request::Steerability { multipliers, .. } => sweep("multipliers", multipliers.len()),
            Request::LayerSweep { layers, multipliers, .. } => {
                sweep("layers", layers.len())?;
                sweep("multipliers", multipliers.len())
            }
            Request::Decompose { multipliers, ks, top, .. } => {
                sweep("multipliers", multipliers.len())?;
                sweep("sparsity levels", ks.len())?;
                sweep("top features", *top)
            }
            Request::Features { features, count, lens_k, prompt, .. } => {
                text("the prompt", prompt.as_deref().unwrap_or_default())?;
                sweep("features", features.len().max(*count))?;
                sweep("logit-lens tokens", *lens_k)
            }
        }
    }
}
