//! Generation-level steering scores (as Turner et al.'s ActAdd, Conmy & Nanda 2024 and Arad et al. 2025 judge
//! steering: by the text it writes). Greedy continuations of each prompt at each strength, all strengths of a
//! prompt decoded together as one batch, then two numbers per strength:
//! - concept: the share of the generated words that are concept words (lower-cased words, split at anything
//!   that is not a letter or digit), averaged over prompts; how far the text moves toward the concept.
//! - coherence: the mean, over every token generated at that strength, of log p(token | prompt and the tokens
//!   before it) under the unsteered model; how fluent the text still is to the model it came from.

use super::propensity::{log_prob_read_bytes, text_log_probs};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::batch::Batch;
use crate::model::generate::{GenerateOptions, generate_rows};
use crate::model::hooks::{HookPoint, Hooks};
use crate::model::sampling::Sampling;
use crate::model::transformer::Input;
use crate::steer::apply::intervention;
use std::collections::HashSet;

/// What a steer-score run generates and measures.
pub struct ScoreSpec<'a> {
    /// The steering direction ([d_model]) and the hook it is added at, at every position, × each strength.
    pub hook: &'a str,
    pub direction: &'a [f32],
    pub strengths: &'a [f32],
    pub prompts: &'a [String],
    pub concept: &'a [String],
    pub max_new_tokens: usize,
}

/// One greedy continuation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Generation {
    pub prompt_tokens: Vec<u32>,
    pub tokens: Vec<u32>,
    pub text: String,
}

/// The scores of one strength.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StrengthScore {
    pub strength: f32,
    /// Mean over prompts of the share of generated words that are concept words.
    pub concept: f32,
    /// Mean log-probability per generated token under the unsteered model.
    pub coherence: f32,
    pub generations: Vec<Generation>,
}

/// The words of `text` as the concept score counts them: lower-cased runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Concept words, one a line (blank lines and `#` comments skipped); each line must be one word.
pub fn parse_concept(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match words(line).as_slice() {
            [w] => out.push(w.clone()),
            _ => return Err(Error::invalid(format!("concept word {}: \"{line}\" is not one word", i + 1))),
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("no concept words: give one word a line"));
    }
    Ok(out)
}

/// The share of `text`'s words that are in `concept` (0 for a text with no words).
pub fn concept_share(text: &str, concept: &HashSet<String>) -> f32 {
    let w = words(text);
    if w.is_empty() { 0.0 } else { w.iter().filter(|w| concept.contains(*w)).count() as f32 / w.len() as f32 }
}

/// Generates from every prompt at every strength and scores each strength.
pub async fn steer_score(model: &Model, spec: &ScoreSpec<'_>) -> Result<Vec<StrengthScore>> {
    if spec.prompts.is_empty() {
        return Err(Error::invalid("no prompts to generate from"));
    }
    if spec.strengths.is_empty() || spec.strengths.iter().any(|s| !s.is_finite()) {
        return Err(Error::invalid("strengths must be a non-empty list of finite numbers"));
    }
    if spec.max_new_tokens == 0 {
        return Err(Error::invalid("max_new_tokens must be at least 1"));
    }
    HookPoint::parse(spec.hook, model.cfg().n_layers)?;
    let concept: HashSet<String> = spec.concept.iter().map(|w| w.to_lowercase()).collect();
    let n = spec.strengths.len();
    let options =
        GenerateOptions { max_new_tokens: spec.max_new_tokens, sampling: Sampling::default(), stop_at_eos: true };
    // One intervention, scaled per batch row: row r is steered × strengths[r].
    let mut steer = intervention(model, spec.hook, spec.direction, 1.0, 0)?;
    steer.rows = Some(spec.strengths.to_vec());
    let mut per_strength: Vec<Vec<Generation>> = vec![Vec::new(); n];
    for (i, prompt) in spec.prompts.iter().enumerate() {
        model.report("generating, prompt by prompt", i, spec.prompts.len());
        model.check_stop()?;
        let prompt_tokens = model.encode_prompt(prompt).map_err(|e| e.in_record("prompt", i))?;
        let mut hooks = Hooks { interventions: vec![steer.clone()], ..Default::default() };
        let rows =
            generate_rows(model, &prompt_tokens, n, &mut hooks, &options, |_| model.check_stop().is_ok()).await?;
        model.check_stop()?;
        for (s, tokens) in rows.into_iter().enumerate() {
            let text = model.tokenizer.decode(&tokens)?;
            per_strength[s].push(Generation { prompt_tokens: prompt_tokens.clone(), tokens, text });
        }
    }
    // Coherence: every generation read once by the unsteered model, batched. A last token generated when the
    // context was full has no room to be read at: it is left out.
    let n_ctx = model.cfg().n_ctx;
    let texts: Vec<(Vec<u32>, usize)> = per_strength
        .iter()
        .flatten()
        .map(|g| {
            let mut text = [g.prompt_tokens.as_slice(), &g.tokens].concat();
            text.truncate(n_ctx);
            (text, g.prompt_tokens.len())
        })
        .collect();
    let sums = unsteered_log_probs(model, &texts).await?;
    let mut out = Vec::with_capacity(n);
    for (s, gens) in per_strength.into_iter().enumerate() {
        let (sums, texts) = (&sums[s * gens.len()..(s + 1) * gens.len()], &texts[s * gens.len()..(s + 1) * gens.len()]);
        let count: usize = texts.iter().map(|(t, from)| t.len() - from).sum();
        let total: f64 = sums.iter().map(|&x| x as f64).sum();
        let coherence = if count == 0 { 0.0 } else { (total / count as f64) as f32 };
        let concept_mean = gens.iter().map(|g| concept_share(&g.text, &concept)).sum::<f32>() / gens.len() as f32;
        out.push(StrengthScore { strength: spec.strengths[s], concept: concept_mean, coherence, generations: gens });
    }
    Ok(out)
}

/// Σ log p(token | the tokens before it) over each text's tokens from `from` on, unsteered, in chunked passes.
async fn unsteered_log_probs(model: &Model, texts: &[(Vec<u32>, usize)]) -> Result<Vec<f32>> {
    let lens: Vec<usize> = texts.iter().map(|(t, _)| t.len()).collect();
    let mut out = Vec::with_capacity(texts.len());
    for rows in model.chunks(&lens, |seq| log_prob_read_bytes(model, seq)) {
        model.report("reading the generations unsteered", rows.start, texts.len());
        let chunk = &texts[rows];
        let batch = Batch::new(&chunk.iter().map(|(t, _)| t.as_slice()).collect::<Vec<_>>())?;
        let input = Input::Tokens { ids: &batch.ids, rows: batch.rows() };
        let normed = model.run_to(input, &mut Hooks::default(), HookPoint::LnFinal)?;
        let scored: Vec<(&[u32], usize)> = chunk.iter().map(|(t, from)| (t.as_slice(), *from)).collect();
        out.extend(text_log_probs(&model.net, normed, &scored).await?);
    }
    Ok(out)
}
