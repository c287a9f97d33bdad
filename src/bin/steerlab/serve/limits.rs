//! How much one request may ask of the helper, by size as well as by count: its body, its prompts, the text it
//! runs through the model (datasets, corpus, prompts: a token is at least one byte, so bytes bound tokens), how
//! many tokens it generates, how large its sweeps are and how large each number in them is. Each refusal names the
//! flag that sets the limit. The model's context and the SAE's width bound requests further (the engine checks),
//! and the engine asks Stop between forward passes and pursuit steps, so no accepted request runs unbounded.

use clap::Args;
use serde::Serialize;
use steerlab::engine::{DatasetRef, Request, Steering};
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
    /// Largest sparsity level k for gradient pursuit (one step per unit of k).
    #[arg(long, default_value_t = 1024)]
    pub max_k: usize,
    /// Largest |multiplier|, |coefficient|, |strength| or |amplification|.
    #[arg(long, default_value_t = 1000.0)]
    pub max_multiplier: f32,
    /// Most bytes of typed text (datasets, corpus, prompts) in one request, together.
    #[arg(long, default_value_t = 2 << 20)]
    pub max_text_bytes: usize,
    /// Most items in a typed dataset, or passages in a typed corpus or prompt list.
    #[arg(long, default_value_t = 5000)]
    pub max_items: usize,
}

impl Limits {
    /// Why `req` asks too much, if it does.
    pub fn check(&self, req: &Request) -> Result<(), String> {
        let mut text_bytes = 0usize;
        let mut typed = |what: &str, text: &str| -> Result<(), String> {
            text_bytes = text_bytes.saturating_add(text.len());
            if text_bytes > self.max_text_bytes {
                return Err(format!(
                    "the request's typed text reaches {text_bytes} bytes at {what}; this helper takes at most {} \
                     (--max-text-bytes)",
                    self.max_text_bytes
                ));
            }
            // A JSON array's elements, else non-blank lines (JSONL items, corpus passages).
            let items = match text.trim_start().starts_with('[') {
                true => serde_json::from_str::<Vec<serde::de::IgnoredAny>>(text).map_or(0, |v| v.len()),
                false => text.lines().filter(|l| !l.trim().is_empty()).count(),
            };
            if items > self.max_items {
                return Err(format!(
                    "{what} has {items} lines; this helper takes at most {} (--max-items)",
                    self.max_items
                ));
            }
            Ok(())
        };
        let text = |what: &str, t: &str| {
            let n = t.chars().count();
            if n > self.max_prompt_chars {
                Err(format!(
                    "{what} is {n} characters long; this helper takes at most {} (--max-prompt-chars)",
                    self.max_prompt_chars
                ))
            } else {
                Ok(())
            }
        };
        let sweep = |what: &str, n: usize| {
            if n > self.max_sweep {
                Err(format!("{n} {what} in one request; this helper takes at most {} (--max-sweep)", self.max_sweep))
            } else {
                Ok(())
            }
        };
        let size = |what: &str, x: f32| {
            if x.is_finite() && x.abs() <= self.max_multiplier {
                Ok(())
            } else {
                Err(format!("{what} {x} is outside ±{} (--max-multiplier)", self.max_multiplier))
            }
        };
        let multipliers = |ms: &[f32]| {
            sweep("multipliers", ms.len())?;
            ms.iter().try_for_each(|&m| size("multiplier", m))
        };
        let steering = |s: &[Steering]| -> Result<(), String> {
            sweep("steering interventions", s.len())?;
            for s in s {
                match s {
                    Steering::Vector { coef, .. } => size("coefficient", *coef)?,
                    Steering::Features { features } => {
                        sweep("steering features", features.len())?;
                        features.iter().try_for_each(|(_, st)| size("feature strength", *st))?;
                    }
                }
            }
            Ok(())
        };
        let generation = |options: &GenerateOptions| {
            if options.max_new_tokens > self.max_new_tokens {
                Err(format!(
                    "max_new_tokens is {}; this helper generates at most {} tokens (--max-new-tokens)",
                    options.max_new_tokens, self.max_new_tokens
                ))
            } else {
                Ok(())
            }
        };
        let mut dataset = |what: &str, d: &DatasetRef| match d {
            DatasetRef::BuiltIn { .. } => Ok(()),
            DatasetRef::Inline { text, .. } => typed(what, text),
        };
        match req {
            Request::Status => Ok(()),
            Request::Generate { prompt, steering: s, options } => {
                text("the prompt", prompt)?;
                steering(s)?;
                generation(options)
            }
            Request::GenerateVariants { prompt, variants, options } => {
                text("the prompt", prompt)?;
                sweep("variants", variants.len())?;
                sweep("steering interventions", variants.iter().map(Vec::len).sum())?;
                variants.iter().try_for_each(|v| steering(v))?;
                generation(options)
            }
            Request::Caa { dataset: d, .. } => dataset("the dataset", d),
            Request::ActAdd { positive, negative, .. } => {
                text("the positive prompt", positive).and_then(|_| text("the negative prompt", negative))
            }
            Request::Steerability { eval, multipliers: ms, .. } => {
                dataset("the evaluation items", eval)?;
                multipliers(ms)
            }
            Request::LayerSweep { train, eval, layers, multipliers: ms } => {
                dataset("the training pairs", train)?;
                dataset("the evaluation items", eval)?;
                sweep("layers", layers.len())?;
                multipliers(ms)
            }
            Request::Decompose { eval, pairs, corpus, multipliers: ms, ks, top, edits, .. } => {
                if let Some(d) = eval {
                    dataset("the evaluation items", d)?;
                }
                if let Some(d) = pairs {
                    dataset("the contrastive pairs", d)?;
                }
                if let Some(c) = corpus {
                    typed("the corpus", c)?;
                }
                multipliers(ms)?;
                sweep("sparsity levels", ks.len())?;
                if let Some(k) = ks.iter().find(|&&k| k > self.max_k) {
                    return Err(format!("k = {k} is over this helper's limit of {} (--max-k)", self.max_k));
                }
                // Each edit is a table row (a steered sweep) and a k-feature projection, like a pursuit level.
                sweep("feature edits", edits.len())?;
                if let Some(e) = edits.iter().find(|e| e.features.len() > self.max_k) {
                    return Err(format!(
                        "an edit names {} features, over this helper's limit of {} (--max-k)",
                        e.features.len(),
                        self.max_k
                    ));
                }
                sweep("top features", *top)
            }
            Request::VectorsVsZero { datasets, top } => {
                sweep("datasets", datasets.len())?;
                datasets.iter().try_for_each(|d| dataset("a dataset", d))?;
                sweep("top features", *top)
            }
            Request::SteerScore { steering: s, prompts, concept, strengths, max_new_tokens } => {
                steering(std::slice::from_ref(s))?;
                typed("the prompts", prompts)?;
                prompts.lines().try_for_each(|p| text("a prompt", p))?;
                typed("the concept words", concept)?;
                sweep("strengths", strengths.len())?;
                strengths.iter().try_for_each(|st| size("strength", *st))?;
                generation(&GenerateOptions { max_new_tokens: *max_new_tokens, ..Default::default() })
            }
            // The values are bounded by the body; each row is one encoding, each edit feature one projection.
            Request::PositionFeatures { rows, top, .. } => {
                sweep("positions", *rows)?;
                sweep("top features", *top)
            }
            Request::EditVector { rows, edit, .. } => {
                sweep("positions", rows.unwrap_or(1))?;
                if edit.features.len() > self.max_k {
                    return Err(format!(
                        "the edit names {} features, over this helper's limit of {} (--max-k)",
                        edit.features.len(),
                        self.max_k
                    ));
                }
                Ok(())
            }
            Request::Population { top, strengths, prompts, corpus, amplification, lens_k, max_new_tokens, .. } => {
                // The sample is bounded by the SAE's width; the steering comparison decodes 3 × top × strengths
                // rows a prompt.
                if let Some(c) = corpus {
                    typed("the corpus", c)?;
                }
                if let Some(p) = prompts {
                    typed("the prompts", p)?;
                    p.lines().try_for_each(|p| text("a prompt", p))?;
                }
                sweep("strengths", strengths.len())?;
                strengths.iter().try_for_each(|st| size("strength", *st))?;
                sweep(
                    "steered rows (3 groups × top × strengths)",
                    top.saturating_mul(3).saturating_mul(strengths.len()),
                )?;
                sweep("logit-lens tokens", *lens_k)?;
                size("amplification", *amplification)?;
                generation(&GenerateOptions { max_new_tokens: *max_new_tokens, ..Default::default() })
            }
            Request::Features { features, count, lens_k, prompt, amplification, strength, corpus, prompts, .. } => {
                text("the prompt", prompt.as_deref().unwrap_or_default())?;
                if let Some(c) = corpus {
                    typed("the corpus", c)?;
                }
                if let Some(p) = prompts {
                    typed("the prompts", p)?;
                }
                sweep("features", features.len().max(*count))?;
                sweep("logit-lens tokens", *lens_k)?;
                size("amplification", *amplification)?;
                strength.map_or(Ok(()), |s| size("strength", s))
            }
            Request::Dashboards { features, corpus, passages, k } => {
                if let Some(c) = corpus {
                    typed("the corpus", c)?;
                }
                sweep("features", features.len())?;
                sweep("passages", *passages)?;
                sweep("logit-lens tokens and neighbours", *k)
            }
            Request::SearchFeatures { text: t, top } => {
                text("the text", t)?;
                sweep("top features", *top)
            }
        }
    }
}
