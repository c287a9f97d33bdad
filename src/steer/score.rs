//! Generation-level steering scores (as Turner et al.'s ActAdd, Conmy & Nanda 2024 and Arad et al. 2025 judge
//! steering: by the text it writes). Greedy continuations of each prompt at each strength, all strengths of a
//! prompt decoded together as one batch, then two numbers per strength:
//! - concept: the share of the generated words that are concept words (lower-cased words, split at anything
//!   that is not a letter or digit), averaged over prompts; how far the text moves toward the concept.
//! - coherence: the mean, over every token generated at that strength, of log p(token | prompt and the tokens
//!   before it) under the unsteered model; how fluent the text still is to the model it came from.

#[cfg(feature = "engine")]
use super::propensity::{log_prob_read_bytes, text_log_probs};
use crate::error::{Error, Result};
use std::collections::HashSet;
#[cfg(feature = "engine")]
use {
    crate::model::Model,
    crate::model::batch::Batch,
    crate::model::generate::{GenerateOptions, generate_rows},
    crate::model::hooks::{HookPoint, Hooks, RowAdd, RowSteering},
    crate::model::layers::upload,
    crate::model::sampling::Sampling,
    crate::model::transformer::Input,
    crate::model::weights::HostTensor,
    burn::tensor::Tensor,
};

/// What a steer-score run generates and measures.
#[cfg(feature = "engine")]
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
#[cfg(feature = "engine")]
pub async fn steer_score(model: &Model, spec: &ScoreSpec<'_>) -> Result<Vec<StrengthScore>> {
    if spec.strengths.is_empty() {
        return Err(Error::invalid("strengths must be a non-empty list of finite numbers"));
    }
    let concept: HashSet<String> = spec.concept.iter().map(|w| w.to_lowercase()).collect();
    let rows: Vec<Option<(usize, f32)>> = spec.strengths.iter().map(|&s| Some((0, s))).collect();
    let generated =
        generate_scored(model, spec.hook, &[spec.direction.to_vec()], &rows, spec.prompts, spec.max_new_tokens).await?;
    Ok(generated
        .into_iter()
        .zip(spec.strengths)
        .map(|(g, &strength)| StrengthScore {
            strength,
            concept: mean_concept_share(&g.generations, &concept),
            coherence: g.coherence,
            generations: g.generations,
        })
        .collect())
}

/// The continuations of one row spec across the prompts, and their coherence.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// One per prompt, in order.
    pub generations: Vec<Generation>,
    /// Mean log-probability per generated token under the unsteered model.
    pub coherence: f32,
}

/// The mean over generations of the share of their words in `concept`.
#[cfg(feature = "engine")]
pub fn mean_concept_share(generations: &[Generation], concept: &HashSet<String>) -> f32 {
    let n = generations.len().max(1) as f32;
    generations.iter().map(|g| concept_share(&g.text, concept)).sum::<f32>() / n
}

/// Most continuations decoded together in one batch (each holds its own KV cache row).
#[cfg(feature = "engine")]
const MAX_GENERATION_ROWS: usize = 32;

/// Greedy continuations of every prompt for each of `rows`: `Some((i, s))` adds s × directions[i] at `hook` at
/// every position, `None` (or strength 0) leaves the model alone. A prompt's rows decode together (in batches of
/// at most `MAX_GENERATION_ROWS`); every continuation is then read once by the unsteered model for coherence.
#[cfg(feature = "engine")]
pub async fn generate_scored(
    model: &Model,
    hook: &str,
    directions: &[Vec<f32>],
    rows: &[Option<(usize, f32)>],
    prompts: &[String],
    max_new_tokens: usize,
) -> Result<Vec<Generated>> {
    if prompts.is_empty() {
        return Err(Error::invalid("no prompts to generate from"));
    }
    if rows.is_empty() || rows.iter().flatten().any(|(_, s)| !s.is_finite()) {
        return Err(Error::invalid("strengths must be a non-empty list of finite numbers"));
    }
    if max_new_tokens == 0 {
        return Err(Error::invalid("max_new_tokens must be at least 1"));
    }
    if rows.iter().flatten().any(|&(i, _)| i >= directions.len()) {
        return Err(Error::invalid("a generation row names a direction that is not there"));
    }
    let point = HookPoint::parse(hook, model.cfg().n_layers)?;
    let d = model.cfg().d_model;
    if let Some(v) = directions.iter().find(|v| v.len() != d) {
        return Err(Error::invalid(format!("steering vector has {} dims but the model's d_model is {d}", v.len())));
    }
    let options = GenerateOptions { max_new_tokens, sampling: Sampling::default(), stop_at_eos: true };
    // [directions, d_model]; one zero row when every row is unsteered.
    let vectors = match directions.len() {
        0 => Tensor::<2>::zeros([1, d], &model.net.device),
        n => upload(HostTensor::new(vec![n, d], directions.concat()), &model.net.device),
    };
    let mut per_row: Vec<Vec<Generation>> = vec![Vec::new(); rows.len()];
    for (i, prompt) in prompts.iter().enumerate() {
        model.report("generating, prompt by prompt", i, prompts.len());
        model.check_stop()?;
        let prompt_tokens = model.encode_prompt(prompt).map_err(|e| e.in_record("prompt", i))?;
        for start in (0..rows.len()).step_by(MAX_GENERATION_ROWS) {
            let part = &rows[start..(start + MAX_GENERATION_ROWS).min(rows.len())];
            let steering = RowSteering {
                hook: point,
                vectors: vectors.clone(),
                rows: part.iter().map(|r| r.map(|(vector, coef)| RowAdd { vector, coef, from_pos: 0 })).collect(),
            };
            let mut hooks = Hooks { rows: vec![steering], ..Default::default() };
            let out =
                generate_rows(model, &prompt_tokens, part.len(), &mut hooks, &options, |_| model.check_stop().is_ok())
                    .await?;
            model.check_stop()?;
            for (r, tokens) in out.into_iter().enumerate() {
                let text = model.tokenizer.decode(&tokens)?;
                per_row[start + r].push(Generation { prompt_tokens: prompt_tokens.clone(), tokens, text });
            }
        }
    }
    // Coherence: every generation read once by the unsteered model, batched. A last token generated when the
    // context was full has no room to be read at: it is left out.
    let n_ctx = model.cfg().n_ctx;
    let texts: Vec<(Vec<u32>, usize)> = per_row
        .iter()
        .flatten()
        .map(|g| {
            let mut text = [g.prompt_tokens.as_slice(), &g.tokens].concat();
            text.truncate(n_ctx);
            (text, g.prompt_tokens.len())
        })
        .collect();
    let sums = unsteered_log_probs(model, &texts).await?;
    let n = prompts.len();
    Ok(per_row
        .into_iter()
        .enumerate()
        .map(|(r, generations)| {
            let (sums, texts) = (&sums[r * n..(r + 1) * n], &texts[r * n..(r + 1) * n]);
            let count: usize = texts.iter().map(|(t, from)| t.len() - from).sum();
            let total: f64 = sums.iter().map(|&x| x as f64).sum();
            let coherence = if count == 0 { 0.0 } else { (total / count as f64) as f32 };
            Generated { generations, coherence }
        })
        .collect())
}

/// Σ log p(token | the tokens before it) over each text's tokens from `from` on, unsteered, in chunked passes.
#[cfg(feature = "engine")]
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
