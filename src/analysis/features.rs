//! Which SAE features steer (Arad, Mueller & Belinkov 2025, "SAEs Are Good for Steering – If You Select the
//! Right Features"). A feature's logit lens is its decoder row through ln_final and the unembedding; its top-k
//! tokens are what it should promote.
//! - Output score: amplify the feature at the last position of a neutral prompt (add max(feature acts there)
//!   × amplification × its decoder row, as decoding the amplified acts plus the SAE error does) and read the
//!   next-token distribution: (1 − best rank of a lens token / vocab) × the largest lens-token probability.
//! - Input score: the fraction of the feature's top-activating corpus passages whose most-activating token is
//!   one of its lens tokens.

use super::corpus::passage_activations;
use crate::device::read;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::hooks::{HookPoint, Hooks};
use crate::model::layers::{index_tensor, upload};
use crate::model::weights::HostTensor;
use crate::sae::Sae;
use crate::steer::apply::intervention;
use burn::tensor::Tensor;

/// The neutral prompt Arad et al. amplify features on.
pub const NEUTRAL_PROMPT: &str = "From my experience,";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LensToken {
    pub id: u32,
    pub text: String,
    /// Softmax of the feature's logit-lens logits.
    pub prob: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureScore {
    pub feature: usize,
    /// The top logit-lens tokens, most promoted first.
    pub lens: Vec<LensToken>,
    /// (1 − output_rank / vocab) × output_prob.
    pub output_score: f32,
    /// The best rank (0 = most likely) of a lens token in the amplified next-token distribution.
    pub output_rank: usize,
    /// The largest probability of a lens token there.
    pub output_prob: f32,
    /// Fraction of the top-activating passages whose most-activating token is a lens token; None when the
    /// feature fires on no passage.
    pub input_score: Option<f32>,
    /// How many passages the input score counts (the feature's top-activating ones, at most `max_examples`).
    pub examples: usize,
}

pub struct ScoreOptions<'a> {
    /// The prompt the output score amplifies features on (Arad et al.: "From my experience,").
    pub prompt: &'a str,
    /// Multiple of the largest feature activation at the last position (Arad et al.: 10).
    pub amplification: f32,
    /// Logit-lens tokens per feature (Arad et al.: 20).
    pub lens_k: usize,
    /// Passages for the input score.
    pub corpus: &'a [String],
    /// Top-activating passages the input score looks at (Arad et al.: 100).
    pub max_examples: usize,
}

/// The top-`k` logit-lens tokens of each feature.
pub async fn logit_lens(model: &Model, sae: &Sae, features: &[usize], k: usize) -> Result<Vec<Vec<LensToken>>> {
    Ok(lens_probs(model, sae, features).await?.iter().map(|probs| lens_tokens(model, probs, k)).collect())
}

/// Each feature's logit lens as probabilities: softmax over the vocabulary, one row per feature.
pub async fn lens_probs(model: &Model, sae: &Sae, features: &[usize]) -> Result<Vec<Vec<f32>>> {
    if features.is_empty() {
        return Ok(Vec::new());
    }
    let logits = read(model.net.logit_lens(sae.decoder_rows(features)?)).await?; // [n, vocab]
    Ok(logits.data.chunks(logits.shape[1]).map(softmax).collect())
}

/// The `k` most likely tokens of one feature's lens probabilities, most likely first.
pub fn lens_tokens(model: &Model, probs: &[f32], k: usize) -> Vec<LensToken> {
    let token = |id: usize| LensToken {
        id: id as u32,
        text: model.tokenizer.decode(&[id as u32]).unwrap_or_default(),
        prob: probs[id],
    };
    super::top_indices(probs, k.min(probs.len()), |p| p).into_iter().map(token).collect()
}

/// The `n` features whose logit lens gives `token_text` (one token) the largest logit: candidates for steering
/// towards it.
pub async fn features_promoting(model: &Model, sae: &Sae, token_text: &str, n: usize) -> Result<Vec<usize>> {
    let token = match model.tokenizer.encode(token_text)?[..] {
        [id] => id,
        ref ids => {
            return Err(Error::invalid(format!(
                "\"{token_text}\" is {} tokens; name one token (GPT-2 and Pythia words often start with a space)",
                ids.len()
            )));
        }
    };
    let logits = read(model.net.logit_lens_of(sae.w_dec.clone(), token)).await?.data; // [d_sae]
    Ok(super::top_indices(&logits, n, |v| v))
}

/// Output and input scores of `features`, best output score first.
pub async fn feature_scores(
    model: &Model,
    sae: &Sae,
    features: &[usize],
    opts: &ScoreOptions<'_>,
) -> Result<Vec<FeatureScore>> {
    let point = sae.check_fits(model.cfg())?;
    sae.check_features(features)?;
    if !opts.amplification.is_finite() || opts.lens_k == 0 {
        return Err(Error::invalid("the amplification must be finite and the lens keep at least one token"));
    }
    let lenses = logit_lens(model, sae, features, opts.lens_k).await?;
    let tokens = model.encode(opts.prompt, false)?;
    let x = model.activations(&tokens, point).await?; // [s, d]
    let d = sae.cfg.d_in;
    let last = HostTensor::new(vec![1, d], x.data[x.data.len() - d..].to_vec());
    let (acts, _) = sae.reconstruct(upload(last.clone(), &model.net.device));
    let max_act = read(acts.max()).await?.data[0];
    let scale = decoder_scale(sae, last, &model.net.device).await?;
    let examples = top_examples(model, sae, point, features, opts).await?;

    let mut scores = Vec::with_capacity(features.len());
    for ((&f, lens), examples) in features.iter().zip(lenses).zip(examples) {
        let row = read(sae.decoder_rows(&[f])?).await?.data;
        let coef = max_act * opts.amplification * scale;
        let iv = intervention(model, &sae.cfg.hook_name, &row, coef, tokens.len() - 1)?;
        let probs = softmax(&read(model.next_token_logits(&tokens, &mut Hooks::steering(vec![iv]))?).await?.data);
        let v = probs.len();
        let best = lens.iter().map(|t| probs[t.id as usize]).fold(0.0f32, f32::max);
        let output_rank = probs.iter().filter(|&&p| p > best).count();
        let hits = examples.iter().filter(|&&t| lens.iter().any(|l| l.id == t)).count();
        scores.push(FeatureScore {
            feature: f,
            output_score: (1.0 - output_rank as f32 / v as f32) * best,
            output_rank,
            output_prob: best,
            input_score: (!examples.is_empty()).then(|| hits as f32 / examples.len() as f32),
            examples: examples.len(),
            lens,
        });
    }
    scores.sort_by(|a, b| b.output_score.total_cmp(&a.output_score));
    Ok(scores)
}

/// How much one unit of feature activation moves the raw residual stream at `x` [1, d]: 1, or the scale the
/// SAE's input normalisation divides by (decoding undoes it).
async fn decoder_scale(sae: &Sae, x: HostTensor, device: &burn::tensor::Device) -> Result<f32> {
    match sae.normalize(upload(x, device)).1 {
        Some((scale, _)) => Ok(read(scale).await?.data[0]),
        None => Ok(1.0),
    }
}

/// For each feature, the most-activating token of each of its top-activating passages (at most
/// `max_examples`, strongest first; passages where it does not fire are left out).
async fn top_examples(
    model: &Model,
    sae: &Sae,
    point: HookPoint,
    features: &[usize],
    opts: &ScoreOptions<'_>,
) -> Result<Vec<Vec<u32>>> {
    let passages = passage_activations(model, opts.corpus, point).await?;
    let ids = index_tensor(features, &model.net.device);
    // Per feature: (max activation, token at it) for each passage.
    let mut best: Vec<Vec<(f32, u32)>> = vec![Vec::new(); features.len()];
    for p in &passages {
        let (acts, _) = sae.reconstruct(upload::<2>(p.acts.clone(), &model.net.device));
        let acts: Tensor<2> = acts.select(1, ids.clone()); // [n, features]
        let (max, at) = acts.max_dim_with_indices(0); // [1, features] each
        let (max, at) = (read(max).await?.data, read(at.float()).await?.data);
        for (i, examples) in best.iter_mut().enumerate() {
            if max[i] > 0.0 {
                examples.push((max[i], p.tokens[at[i] as usize]));
            }
        }
    }
    Ok(best
        .into_iter()
        .map(|mut e| {
            e.sort_by(|a, b| b.0.total_cmp(&a.0));
            e.into_iter().take(opts.max_examples).map(|(_, t)| t).collect()
        })
        .collect())
}

/// Softmax of a row of logits, in f64 for the sum.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| (e / sum) as f32).collect()
}
