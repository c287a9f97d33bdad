//! Side effects of steering with one SAE feature, predicted before steering and measured after it (after Duan
//! 2026, "Pre-Intervention Prediction of Sparse Autoencoder Steering Side Effects"), so a user sees how well the
//! predictors rank features.
//!
//! Predictors, from the SAE and a corpus only:
//! - decoder geometry: the largest |cosine| of the feature's decoder row with another's, and how many others
//!   lie within |cosine| ≥ `NEIGHBOUR_COSINE` (its cosine neighbourhood);
//! - activation statistics: firing rate over corpus tokens and mean activation where it fires;
//! - co-activation: the largest Jaccard index of its firing tokens with another feature's;
//! - direct-logit footprint: the effective number of tokens its logit lens spreads over, exp(entropy).
//!
//! Measured, steering with strength × decoder row at every position of each prompt:
//! - effect stability: per prompt, the change of log p(the feature's lens tokens) at the last position; its
//!   mean, standard deviation and coefficient of variation std / |mean| (lower is more stable);
//! - collateral spread: at the SAE's hook, the share of the total change of feature activations that lands on
//!   other features, Σ_{g≠f} |Δa_g| / Σ_g |Δa_g|, averaged over the prompts' tokens;
//! - downstream spread: at the model's output, the share of the change of the next-token distribution (at each
//!   prompt's last position) that lands outside the feature's own lens tokens, Σ_{t∉lens} |Δp_t| / Σ_t |Δp_t|,
//!   averaged over prompts. It is measured after every later layer, so unlike collateral spread it does not
//!   share the SAE's own geometry with the predictors.

#[cfg(feature = "engine")]
use {
    super::corpus::corpus_activations,
    super::features::{lens_probs, lens_tokens},
    super::norms::norm_histogram,
    crate::device::read,
    crate::error::{Error, Result},
    crate::model::Model,
    crate::model::batch::{Batch, gather_positions},
    crate::model::hooks::{HookPoint, Hooks, RowAdd, RowSteering},
    crate::model::layers::{index_tensor, row_tensor},
    crate::model::transformer::{Input, Transformer},
    crate::sae::Sae,
    crate::stats::{mean, spearman},
    burn::tensor::{Int, Tensor, TensorData, activation},
};

/// |cosine| from which another decoder row counts as a neighbour.
pub const NEIGHBOUR_COSINE: f32 = 0.5;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Predictors {
    pub max_decoder_cosine: f32,
    pub neighbours: usize,
    pub firing_rate: f32,
    pub mean_activation: f32,
    pub max_coactivation: f32,
    pub logit_footprint: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    pub effect_mean: f32,
    pub effect_std: f32,
    /// std / |mean| of the effect across prompts.
    pub effect_cv: f32,
    pub collateral_spread: f32,
    #[serde(default)]
    pub downstream_spread: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SideEffectRow {
    pub feature: usize,
    pub predictors: Predictors,
    pub measured: Measured,
}

/// How one predictor ranked the features: Spearman correlation with each measured side effect (None with
/// fewer than three features or a constant column).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PredictorCheck {
    pub predictor: String,
    pub vs_instability: Option<f32>,
    pub vs_collateral: Option<f32>,
    #[serde(default)]
    pub vs_downstream: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SideEffects {
    pub strength: f32,
    pub rows: Vec<SideEffectRow>,
    pub checks: Vec<PredictorCheck>,
}

/// Predicts and measures the side effects of steering with each of `features` at `strength` (default: half the
/// median norm of the corpus activations at the SAE's hook, strong enough to show, comparable across models). The
/// corpus has already run: `tally` holds its SAE activations and `norms` each token's norm, as
/// `feature_scores_and_norms` gives them while it runs the same corpus for the input scores.
#[cfg(feature = "engine")]
#[allow(clippy::too_many_arguments)]
pub async fn side_effects(
    model: &Model,
    sae: &Sae,
    features: &[usize],
    tally: Tally,
    norms: &[f32],
    prompts: &[String],
    strength: Option<f32>,
    lens_k: usize,
) -> Result<SideEffects> {
    let point = sae.check_fits(model.cfg())?;
    sae.check_features(features)?;
    if features.is_empty() || prompts.is_empty() {
        return Err(Error::invalid("side effects need at least one feature and one prompt"));
    }
    let device = &model.net.device;
    let geometry = decoder_geometry(sae, features).await?;
    if strength.is_some_and(|s| !s.is_finite()) {
        return Err(Error::invalid(format!("strength {} is not finite", strength.unwrap_or_default())));
    }
    let strength = strength.unwrap_or_else(|| 0.5 * norm_histogram(norms, &[], 1).median);
    let stats = tally.finish(features).await?;
    let lens_dist = lens_probs(model, sae, features).await?;
    let lenses: Vec<_> = lens_dist.iter().map(|probs| lens_tokens(model, probs, lens_k)).collect();

    // log p(lens tokens) at each prompt's last position, unsteered and steered by each feature (one row per
    // feature × prompt, resumed from the unsteered prompts' activations at the SAE's hook).
    let lens: Vec<Vec<u32>> = lenses.iter().map(|l| l.iter().map(|t| t.id).collect()).collect();
    let seqs = prompts
        .iter()
        .enumerate()
        .map(|(i, text)| model.encode_prompt(text).map_err(|e| e.in_record("prompt", i)))
        .collect::<Result<Vec<_>>>()?;
    let batch = Batch::new(&seqs)?;
    let n_prompts = seqs.len();
    let vectors = sae.decoder_rows(features)?; // [features, d]
    let mut clean: Vec<Vec<f32>> = vec![Vec::new(); features.len()]; // [feature][prompt]
    let mut steered: Vec<Vec<f32>> = vec![Vec::new(); features.len()];
    let mut downstream: Vec<Vec<f32>> = vec![Vec::new(); features.len()];
    let vocab = model.cfg().vocab_size;
    // Progress in rows: each prompt unsteered, then once per feature.
    let (total, mut done) = (n_prompts * (1 + features.len()), 0);
    const STAGE: &str = "side effects (feature × prompt rows)";
    for prompts_part in model.chunks(&batch.lens, |_| 2 * vocab * 4) {
        model.report(STAGE, done, total);
        done += prompts_part.len();
        let part = Batch::new(&seqs[prompts_part.clone()])?;
        let rows = part.rows();
        let mut hooks = Hooks::capturing([point]);
        let normed = model.run_to(Input::Tokens { ids: &part.ids, rows }, &mut hooks, HookPoint::LnFinal)?;
        let kept = hooks.take(point).filter(|_| Transformer::resumable(point)); // [rows, seq, d]
        let probs = next_token_probs(model, normed, &part.last_positions());
        for (f, lens) in lens.iter().enumerate() {
            let ids: Vec<u32> = (0..rows).flat_map(|_| lens.iter().copied()).collect();
            clean[f].extend(read(log_mass(probs.clone(), &ids, lens.len())).await?.data);
        }
        // Steered rows: (feature, prompt in this part).
        let jobs: Vec<(usize, usize)> = (0..features.len()).flat_map(|f| (0..rows).map(move |p| (f, p))).collect();
        for jobs_part in model.chunks(&vec![part.seq; jobs.len()], |_| 2 * vocab * 4) {
            model.report(STAGE, done, total);
            done += jobs_part.len();
            let jobs = &jobs[jobs_part];
            let which: Vec<usize> = jobs.iter().map(|&(_, p)| p).collect();
            let steering = RowSteering {
                hook: point,
                vectors: vectors.clone(),
                rows: jobs.iter().map(|&(f, _)| Some(RowAdd { vector: f, coef: strength, from_pos: 0 })).collect(),
            };
            let mut hooks = Hooks { rows: vec![steering], ..Default::default() };
            let mut ids = Vec::new();
            let input = part.rows_input(&which, kept.as_ref().map(|x| (point, x)), &mut ids);
            let normed = model.run_to(input, &mut hooks, HookPoint::LnFinal)?;
            let positions: Vec<usize> = which.iter().map(|&p| part.lens[p] - 1).collect();
            let steered_probs = next_token_probs(model, normed, &positions);
            let ids: Vec<u32> = jobs.iter().flat_map(|&(f, _)| lens[f].iter().copied()).collect();
            let k = lens.first().map_or(0, Vec::len);
            let masses = read(log_mass(steered_probs.clone(), &ids, k)).await?.data;
            let clean_rows = probs.clone().select(0, index_tensor(&which, device)); // [jobs, vocab]
            let spread = read(off_lens_share(steered_probs, clean_rows, &ids, k)).await?.data;
            for ((&(f, _), m), sp) in jobs.iter().zip(masses).zip(spread) {
                steered[f].push(m);
                downstream[f].push(sp);
            }
        }
    }
    let prompt_acts = corpus_activations(model, prompts, point).await?;
    let unsteered = Unsteered::new(sae, &prompt_acts.data, sae.cfg.d_in, device);

    let mut rows = Vec::with_capacity(features.len());
    for (i, &f) in features.iter().enumerate() {
        let row = read(sae.decoder_rows(&[f])?).await?.data;
        debug_assert_eq!(steered[i].len(), n_prompts);
        let effects: Vec<f32> = steered[i].iter().zip(&clean[i]).map(|(s, c)| s - c).collect();
        let effect_mean = mean(effects.iter().copied());
        let effect_std = mean(effects.iter().map(|e| (e - effect_mean).powi(2))).sqrt();
        let collateral_spread = collateral(sae, &unsteered, &row, strength, f).await?;
        rows.push(SideEffectRow {
            feature: f,
            predictors: Predictors {
                max_decoder_cosine: geometry[i].0,
                neighbours: geometry[i].1,
                firing_rate: stats[i].0,
                mean_activation: stats[i].1,
                max_coactivation: stats[i].2,
                logit_footprint: footprint(&lens_dist[i]),
            },
            measured: Measured {
                effect_mean,
                effect_std,
                effect_cv: effect_std / effect_mean.abs().max(1e-12),
                collateral_spread,
                downstream_spread: mean(downstream[i].iter().copied()),
            },
        });
    }
    let checks = predictor_checks(&rows);
    Ok(SideEffects { strength, rows, checks })
}

/// Next-token probabilities at each row's `positions` entry: ln_final's output [rows, seq, d] → [rows, vocab].
#[cfg(feature = "engine")]
fn next_token_probs(model: &Model, normed: Tensor<3>, positions: &[usize]) -> Tensor<2> {
    activation::softmax(model.net.vocab_logits(gather_positions(normed, positions)), 1)
}

/// Per row, the share of Σ_t |steered_t − clean_t| (both [rows, vocab]) outside the row's `k` tokens ([rows * k]
/// distinct ids per row): [rows].
#[cfg(feature = "engine")]
fn off_lens_share(steered: Tensor<2>, clean: Tensor<2>, ids: &[u32], k: usize) -> Tensor<1> {
    let rows = steered.dims()[0];
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&t| t as i64).collect(), [rows, k]),
        &steered.device(),
    );
    let change = (steered - clean).abs(); // [rows, vocab]
    let total = change.clone().sum_dim(1); // [rows, 1]
    let on_lens = change.gather(1, ids).sum_dim(1);
    ((total.clone() - on_lens) / total.clamp_min(1e-30)).reshape([rows])
}

/// ln Σ p(token) over each row's `k` tokens ([rows * k] ids): [rows, vocab] → [rows].
#[cfg(feature = "engine")]
fn log_mass(probs: Tensor<2>, ids: &[u32], k: usize) -> Tensor<1> {
    let rows = probs.dims()[0];
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&t| t as i64).collect(), [rows, k]),
        &probs.device(),
    );
    probs.gather(1, ids).sum_dim(1).clamp_min(1e-30).log().reshape([rows])
}

#[cfg(feature = "engine")]
type Column = (&'static str, fn(&Predictors) -> f32);

#[cfg(feature = "engine")]
const PREDICTORS: [Column; 6] = [
    ("max_decoder_cosine", |p| p.max_decoder_cosine),
    ("neighbours", |p| p.neighbours as f32),
    ("firing_rate", |p| p.firing_rate),
    ("mean_activation", |p| p.mean_activation),
    ("max_coactivation", |p| p.max_coactivation),
    ("logit_footprint", |p| p.logit_footprint),
];

#[cfg(feature = "engine")]
fn predictor_checks(rows: &[SideEffectRow]) -> Vec<PredictorCheck> {
    let cv: Vec<f32> = rows.iter().map(|r| r.measured.effect_cv).collect();
    let spread: Vec<f32> = rows.iter().map(|r| r.measured.collateral_spread).collect();
    let downstream: Vec<f32> = rows.iter().map(|r| r.measured.downstream_spread).collect();
    PREDICTORS
        .iter()
        .map(|(name, get)| {
            let xs: Vec<f32> = rows.iter().map(|r| get(&r.predictors)).collect();
            PredictorCheck {
                predictor: name.to_string(),
                vs_instability: spearman(&xs, &cv),
                vs_collateral: spearman(&xs, &spread),
                vs_downstream: spearman(&xs, &downstream),
            }
        })
        .collect()
}

/// Per feature: the largest |cosine| with another decoder row and the count of rows within NEIGHBOUR_COSINE.
#[cfg(feature = "engine")]
async fn decoder_geometry(sae: &Sae, features: &[usize]) -> Result<Vec<(f32, usize)>> {
    let cos = read(sae.decoder_cosines(features)).await?; // [n, d_sae]
    let d_sae = sae.cfg.d_sae;
    Ok(features
        .iter()
        .zip(cos.data.chunks(d_sae))
        .map(|(&f, row)| {
            let others = row.iter().enumerate().filter(|&(g, _)| g != f).map(|(_, c)| c.abs());
            let max = others.clone().fold(0.0f32, f32::max);
            (max, others.filter(|&c| c >= NEIGHBOUR_COSINE).count())
        })
        .collect())
}

/// Per feature, from corpus activations [n, d_sae]: (firing rate, mean activation where it fires, largest
/// Jaccard index of its firing tokens with another feature's).
#[cfg(test)]
async fn activation_stats(acts: Tensor<2>, features: &[usize]) -> Result<Vec<(f32, f32, f32)>> {
    let mut tally = Tally::new(features, &acts.device());
    tally.add(acts);
    tally.finish(features).await
}

/// What the activation predictors need, summed over chunks of corpus activations on the device: tokens, every
/// feature's firing count, how often the chosen features fire with each feature, and their activation sums.
#[cfg(feature = "engine")]
pub struct Tally {
    ids: Tensor<1, Int>,
    tokens: usize,
    sums: Option<(Tensor<2>, Tensor<2>, Tensor<2>)>,
}

#[cfg(feature = "engine")]
impl Tally {
    pub fn new(features: &[usize], device: &burn::tensor::Device) -> Self {
        Self { ids: index_tensor(features, device), tokens: 0, sums: None }
    }

    /// Adds one chunk's SAE activations [n, d_sae].
    pub fn add(&mut self, acts: Tensor<2>) {
        self.tokens += acts.dims()[0];
        let fired = acts.clone().greater_elem(0.0).float(); // [n, d_sae]
        let mine = fired.clone().select(1, self.ids.clone()); // [n, k]
        let co = mine.transpose().matmul(fired.clone()); // [k, d_sae]: tokens firing both
        let counts = fired.sum_dim(0); // [1, d_sae]
        let sums = acts.select(1, self.ids.clone()).sum_dim(0); // [1, k]
        self.sums = Some(match self.sums.take() {
            Some((a, b, c)) => (a + co, b + counts, c + sums),
            None => (co, counts, sums),
        });
    }

    /// Per feature: (firing rate, mean activation where it fires, largest Jaccard index of its firing tokens with
    /// another feature's).
    async fn finish(self, features: &[usize]) -> Result<Vec<(f32, f32, f32)>> {
        let Some((co, counts, sums)) = self.sums else {
            return Err(Error::invalid("the corpus has no token to count"));
        };
        let d_sae = counts.dims()[1];
        let n = self.tokens;
        let (co, counts, sums) = (read(co).await?.data, read(counts).await?.data, read(sums).await?.data);
        Ok(features
            .iter()
            .enumerate()
            .map(|(i, &f)| {
                let row = &co[i * d_sae..(i + 1) * d_sae];
                let jaccard = row
                    .iter()
                    .enumerate()
                    .filter(|&(g, _)| g != f)
                    .map(|(g, &both)| {
                        let union = counts[f] + counts[g] - both;
                        if union > 0.0 { both / union } else { 0.0 }
                    })
                    .fold(0.0f32, f32::max);
                let mean_act = if counts[f] > 0.0 { sums[i] / counts[f] } else { 0.0 };
                (counts[f] / n as f32, mean_act, jaccard)
            })
            .collect())
    }
}

/// exp(entropy) of a feature's logit-lens probabilities: how many tokens its direct effect spreads over.
#[cfg(feature = "engine")]
fn footprint(probs: &[f32]) -> f32 {
    let entropy: f64 = probs.iter().filter(|&&p| p > 0.0).map(|&p| -(p as f64) * (p as f64).ln()).sum();
    entropy.exp() as f32
}

/// Feature activations of rows [n, d] before any steering, encoded once for every feature's collateral spread.
#[cfg(feature = "engine")]
struct Unsteered {
    x: Tensor<2>,      // [n, d]
    before: Tensor<2>, // [n, d_sae]
}

#[cfg(feature = "engine")]
impl Unsteered {
    fn new(sae: &Sae, x: &[f32], d: usize, device: &burn::tensor::Device) -> Self {
        let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [x.len() / d, d]), device);
        let before = sae.encode(x.clone());
        Self { x, before }
    }
}

/// Mean over the rows of `u.x` of the share of |encode(x + strength·row) − encode(x)| off feature `f`.
#[cfg(feature = "engine")]
async fn collateral(sae: &Sae, u: &Unsteered, row: &[f32], strength: f32, f: usize) -> Result<f32> {
    let device = u.x.device();
    let shift = row_tensor(row, &device) * strength;
    let after = sae.encode(u.x.clone() + shift);
    let change = (after - u.before.clone()).abs(); // [n, d_sae]
    let total = read(change.clone().sum_dim(1)).await?.data;
    let own = read(change.select(1, index_tensor(&[f], &device))).await?.data;
    let shares: Vec<f32> =
        total.iter().zip(&own).filter(|(t, _)| **t > 0.0).map(|(t, o)| ((t - o) / t).max(0.0)).collect();
    Ok(if shares.is_empty() { 0.0 } else { mean(shares) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sae::tests::hand_built;

    /// Features 0 and 1 of the hand-built SAE are anti-aligned (|cos| = 1), feature 2 stands alone.
    #[test]
    fn geometry_coactivation_and_collateral_on_a_hand_built_sae() {
        let sae = hand_built("standard", "");
        let cpu = burn::tensor::Device::flex();
        let g = pollster::block_on(decoder_geometry(&sae, &[0, 1, 2])).unwrap();
        assert_eq!(g, vec![(1.0, 1), (1.0, 1), (0.0, 0)]);

        // Tokens: feature 0 fires on the first two, feature 1 on the third; feature 2 (bias 5) on all.
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0, 0.0, 3.0, 0.0, -2.0, 0.0], [3, 2]), &cpu);
        let (acts, _) = sae.reconstruct(x);
        let s = pollster::block_on(activation_stats(acts, &[0, 1, 2])).unwrap();
        assert_eq!(s[0], (2.0 / 3.0, 2.0, 2.0 / 3.0)); // co-fires with feature 2 on 2 of 3 tokens
        assert_eq!(s[1], (1.0 / 3.0, 2.0, 1.0 / 3.0));
        assert_eq!(s[2], (1.0, 5.0, 2.0 / 3.0));

        // Steering feature 2 moves only feature 2; steering feature 0 from x0 = −1 to +1 also switches its
        // anti-aligned partner off: half the change is collateral.
        let u = Unsteered::new(&sae, &[1.0, 0.0], 2, &cpu);
        let c = pollster::block_on(collateral(&sae, &u, &[0.0, 1.0], 2.0, 2)).unwrap();
        assert_eq!(c, 0.0);
        let u = Unsteered::new(&sae, &[-1.0, 0.0], 2, &cpu);
        let c = pollster::block_on(collateral(&sae, &u, &[1.0, 0.0], 2.0, 0)).unwrap();
        assert_eq!(c, 0.5);
    }
}
