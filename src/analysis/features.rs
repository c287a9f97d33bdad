//! Which SAE features steer (Arad, Mueller & Belinkov 2025, "SAEs Are Good for Steering – If You Select the
//! Right Features"). A feature's logit lens is its decoder row through ln_final and the unembedding; its top-k
//! tokens are what it should promote.
//! - Output score: amplify the feature at the last position of a neutral prompt (add max(feature acts there)
//!   × amplification × its decoder row, as decoding the amplified acts plus the SAE error does) and read the
//!   next-token distribution: (1 − best rank of a lens token / vocab) × the largest lens-token probability.
//! - Input score: the fraction of the feature's top-activating corpus passages whose most-activating token is
//!   one of its lens tokens.

#[cfg(feature = "engine")]
use {
    super::corpus::passage_tokens,
    super::side_effects::Tally,
    crate::device::read,
    crate::error::{Error, Result},
    crate::model::Model,
    crate::model::batch::{Batch, gather_positions},
    crate::model::hooks::{HookPoint, Hooks, RowAdd, RowSteering},
    crate::model::layers::{index_tensor, upload},
    crate::model::transformer::{Input, Transformer},
    crate::model::weights::HostTensor,
    crate::sae::Sae,
    burn::tensor::{Bool, Int, Tensor, TensorData, activation},
};

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

#[cfg(feature = "engine")]
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

/// Features whose whole logit-lens distribution is read back at once: 256 × GPT-2's vocabulary is 51 MB, so a
/// population of every feature never holds them all.
#[cfg(feature = "engine")]
const LENS_CHUNK: usize = 256;

/// The top-`k` logit-lens tokens of each feature.
#[cfg(feature = "engine")]
pub async fn logit_lens(model: &Model, sae: &Sae, features: &[usize], k: usize) -> Result<Vec<Vec<LensToken>>> {
    let mut out = Vec::with_capacity(features.len());
    for chunk in features.chunks(LENS_CHUNK) {
        out.extend(lens_probs(model, sae, chunk).await?.iter().map(|probs| lens_tokens(model, probs, k)));
    }
    Ok(out)
}

/// Each feature's logit lens as probabilities: softmax over the vocabulary, one row per feature.
#[cfg(feature = "engine")]
pub async fn lens_probs(model: &Model, sae: &Sae, features: &[usize]) -> Result<Vec<Vec<f32>>> {
    if features.is_empty() {
        return Ok(Vec::new());
    }
    let logits = read(model.net.logit_lens(sae.decoder_rows(features)?)).await?; // [n, vocab]
    Ok(logits.data.chunks(logits.shape[1]).map(softmax).collect())
}

/// The `k` most likely tokens of one feature's lens probabilities, most likely first.
#[cfg(feature = "engine")]
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
#[cfg(feature = "engine")]
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
#[cfg(feature = "engine")]
pub async fn feature_scores(
    model: &Model,
    sae: &Sae,
    features: &[usize],
    opts: &ScoreOptions<'_>,
) -> Result<Vec<FeatureScore>> {
    Ok(feature_scores_and_norms(model, sae, features, opts, None).await?.0)
}

/// As `feature_scores`, also giving the activation norm at the SAE's hook of every corpus token the input scores
/// read (each passage's but the first, in corpus order), and adding those tokens' SAE activations to `tally`, so
/// a caller that needs them (the side effects, a population's strengths) runs the corpus once.
#[cfg(feature = "engine")]
pub async fn feature_scores_and_norms(
    model: &Model,
    sae: &Sae,
    features: &[usize],
    opts: &ScoreOptions<'_>,
    tally: Option<&mut Tally>,
) -> Result<(Vec<FeatureScore>, Vec<f32>)> {
    let point = sae.check_fits(model.cfg())?;
    sae.check_features(features)?;
    if !opts.amplification.is_finite() || opts.lens_k == 0 {
        return Err(Error::invalid("the amplification must be finite and the lens keep at least one token"));
    }
    if features.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let lenses = logit_lens(model, sae, features, opts.lens_k).await?;
    let tokens = model.encode_prompt(opts.prompt)?;
    let s = tokens.len();
    let x = model.run_to(Input::tokens(&tokens), &mut Hooks::default(), point)?; // [1, s, d]
    let d = sae.cfg.d_in;
    let last = read(x.clone().slice([0..1, s - 1..s, 0..d]).reshape([1, d])).await?;
    let (acts, _) = sae.reconstruct(upload(last.clone(), &model.net.device));
    let max_act = read(acts.max()).await?.data[0];
    let scale = decoder_scale(sae, last, &model.net.device).await?;
    let (examples, norms) = top_examples(model, sae, point, features, opts, tally).await?;

    // One row per feature: the prompt with that feature amplified at its last position.
    let coef = max_act * opts.amplification * scale;
    let vectors = sae.decoder_rows(features)?; // [features, d]
    let vocab = model.cfg().vocab_size;
    let (mut best, mut rank) = (Vec::new(), Vec::new());
    for part in model.chunks(&vec![s; features.len()], |_| 2 * vocab * 4) {
        model.report("output scores (a row per feature)", part.start, features.len());
        let rows = part.len();
        let steering = RowSteering {
            hook: point,
            vectors: vectors.clone(),
            rows: part.clone().map(|j| Some(RowAdd { vector: j, coef, from_pos: s - 1 })).collect(),
        };
        let mut hooks = Hooks { rows: vec![steering], ..Default::default() };
        let ids: Vec<u32>;
        let input = if Transformer::resumable(point) {
            Input::Resume { at: point, x: x.clone().expand([rows, s, d]) } // [rows, s, d]
        } else {
            ids = tokens.repeat(rows);
            Input::Tokens { ids: &ids, rows }
        };
        let normed = model.run_to(input, &mut hooks, HookPoint::LnFinal)?;
        let probs = activation::softmax(model.net.vocab_logits(gather_positions(normed, &vec![s - 1; rows])), 1);
        let lens_ids: Vec<u32> = lenses[part].iter().flat_map(|l| l.iter().map(|t| t.id)).collect();
        let (b, r) = best_lens_token(probs, &lens_ids, opts.lens_k.min(vocab));
        best.extend(read(b).await?.data);
        rank.extend(read(r).await?.data);
    }

    let mut scores = Vec::with_capacity(features.len());
    for (j, ((&f, lens), examples)) in features.iter().zip(lenses).zip(examples).enumerate() {
        let output_rank = rank[j] as usize;
        let hits = examples.iter().filter(|&&t| lens.iter().any(|l| l.id == t)).count();
        scores.push(FeatureScore {
            feature: f,
            output_score: (1.0 - output_rank as f32 / vocab as f32) * best[j],
            output_rank,
            output_prob: best[j],
            input_score: (!examples.is_empty()).then(|| hits as f32 / examples.len() as f32),
            examples: examples.len(),
            lens,
        });
    }
    scores.sort_by(|a, b| b.output_score.total_cmp(&a.output_score));
    Ok((scores, norms))
}

/// Per row of next-token probabilities [rows, vocab], with `k` lens token ids per row ([rows * k]): the largest
/// lens-token probability and how many tokens are more likely than it (its rank), [rows] each.
#[cfg(feature = "engine")]
fn best_lens_token(probs: Tensor<2>, lens_ids: &[u32], k: usize) -> (Tensor<1>, Tensor<1>) {
    let [rows, vocab] = probs.dims();
    let ids: Vec<i64> = lens_ids.iter().map(|&t| t as i64).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows, k]), &probs.device());
    let best = probs.clone().gather(1, ids).max_dim(1); // [rows, 1]
    let above: Tensor<2, Bool> = probs.greater(best.clone().expand([rows, vocab]));
    (best.reshape([rows]), above.float().sum_dim(1).reshape([rows]))
}

/// How much one unit of feature activation moves the raw residual stream at `x` [1, d]: 1, or the scale the
/// SAE's input normalisation divides by (decoding undoes it).
#[cfg(feature = "engine")]
async fn decoder_scale(sae: &Sae, x: HostTensor, device: &burn::tensor::Device) -> Result<f32> {
    match sae.normalize(upload(x, device)).1 {
        Some((scale, _)) => Ok(read(scale).await?.data[0]),
        None => Ok(1.0),
    }
}

/// For each feature, the most-activating token of each of its top-activating passages (at most
/// `max_examples`, strongest first; passages where it does not fire are left out). Passages run batched and
/// their SAE activations stay on the device; only each passage's maximum per feature comes back, and each
/// token's activation norm (every passage's tokens but the first, in corpus order).
#[cfg(feature = "engine")]
async fn top_examples(
    model: &Model,
    sae: &Sae,
    point: HookPoint,
    features: &[usize],
    opts: &ScoreOptions<'_>,
    mut tally: Option<&mut Tally>,
) -> Result<(Vec<Vec<u32>>, Vec<f32>)> {
    let device = &model.net.device;
    let seqs = passage_tokens(model, opts.corpus)?;
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let (d, n) = (model.cfg().d_model, features.len());
    let ids = index_tensor(features, device);
    // Per feature: (max activation, token at it) for each passage.
    let mut best: Vec<Vec<(f32, u32)>> = vec![Vec::new(); n];
    let mut norms = Vec::new();
    for part in model.chunks(&lens, |seq| seq * sae.cfg.d_sae * 4) {
        model.report("input scores (background passages)", part.start, lens.len());
        let batch = Batch::new(&seqs[part.clone()])?;
        let (rows, t) = (batch.rows(), batch.seq);
        let x = model.run_to(Input::Tokens { ids: &batch.ids, rows }, &mut Hooks::default(), point)?; // [rows, t, d]
        let token_norms = read(x.clone().powi_scalar(2).sum_dim(2).sqrt()).await?.data; // [rows, t, 1]
        for (r, &len) in batch.lens.iter().enumerate() {
            norms.extend_from_slice(&token_norms[r * t + 1..r * t + len]);
        }
        let all = sae.encode(x.reshape([rows * t, d])); // [rows * t, d_sae]
        if let Some(tally) = tally.as_deref_mut() {
            // The same tokens as the norms: each passage's but the first.
            let kept: Vec<usize> =
                batch.lens.iter().enumerate().flat_map(|(r, &len)| (1..len).map(move |p| r * t + p)).collect();
            tally.add(all.clone().select(0, index_tensor(&kept, device)));
        }
        let acts = all.select(1, ids.clone()).reshape([rows, t, n]); // [rows, t, n]
        // Position 0 (outlier norms) and the padding never count.
        let skip: Vec<bool> = batch.lens.iter().flat_map(|&len| (0..t).map(move |p| p == 0 || p >= len)).collect();
        let skip = Tensor::<3, Bool>::from_data(TensorData::new(skip, [rows, t, 1]), device).expand([rows, t, n]);
        let (max, at) = acts.mask_fill(skip, f32::MIN).max_dim_with_indices(1); // [rows, 1, n] each
        let (max, at) = (read(max).await?.data, read(at.float()).await?.data);
        for (r, tokens) in seqs[part].iter().enumerate() {
            for (i, examples) in best.iter_mut().enumerate() {
                if max[r * n + i] > 0.0 {
                    examples.push((max[r * n + i], tokens[at[r * n + i] as usize]));
                }
            }
        }
        // Only the strongest `max_examples` of each feature can count: the rest are let go as the corpus streams
        // past, so a long corpus and many features stay within memory.
        for examples in best.iter_mut().filter(|e| e.len() > 2 * opts.max_examples.max(1)) {
            examples.sort_by(|a, b| b.0.total_cmp(&a.0));
            examples.truncate(opts.max_examples);
        }
    }
    let examples = best
        .into_iter()
        .map(|mut e| {
            e.sort_by(|a, b| b.0.total_cmp(&a.0));
            e.into_iter().take(opts.max_examples).map(|(_, t)| t).collect()
        })
        .collect();
    Ok((examples, norms))
}

/// Softmax of a row of logits, in f64 for the sum.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| (e / sum) as f32).collect()
}
