//! How strongly a model shows a behaviour on held-out data, and how that moves with a steering multiplier.
//! Two measures, one per kind of dataset:
//! - A/B items: the logit difference logit(matching letter) − logit(other letter) at the answer position, and
//!   p(matching) / (p(A) + p(B)), the sigmoid of that difference.
//! - Contrastive pairs: the log-probability difference log p(positive text) − log p(negative text), each text
//!   after the model's BOS token, summed over the tokens from the first one where the two texts differ (the
//!   shared prefix cancels); its sigmoid is p(positive) / (p(positive) + p(negative)). A love/hate vector is
//!   measured on held-out love/hate pairs, not on A/B questions of another behaviour.
//!
//! Steerability (Tan et al. 2024): the least-squares slope of the mean difference against the multiplier.
//!
//! Every item × vector × multiplier of a sweep runs batched (`grid_scores`), and only a few numbers per row come
//! back. Steering at `blocks.L.hook_resid_pre` changes nothing before block L, so the rows run once unsteered,
//! their activations there are kept, and each steered row starts from them at block L.

#[cfg(feature = "engine")]
use {
    super::caa::caa_vectors,
    super::dataset::{AbItem, ContrastivePair, Dataset},
    crate::device::read,
    crate::error::{Error, Result},
    crate::model::Model,
    crate::model::batch::{Batch, gather_positions},
    crate::model::hooks::{HookPoint, Hooks, RowAdd, RowSteering},
    crate::model::layers::{index_tensor, upload},
    crate::model::transformer::{Input, Transformer},
    crate::model::weights::HostTensor,
    crate::stats::{mean, norm},
    burn::tensor::{Int, Tensor, TensorData, activation},
};

/// An A/B item tokenised: the prompt up to the answer letter and the two letters' token ids.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, PartialEq)]
pub struct AbPrompt {
    pub tokens: Vec<u32>,
    pub matching: u32,
    pub not_matching: u32,
}

/// Tokenises items, checking each answer letter is one token after the prompt.
#[cfg(feature = "engine")]
pub fn prepare(model: &Model, items: &[AbItem]) -> Result<Vec<AbPrompt>> {
    if items.is_empty() {
        return Err(Error::invalid("no A/B items to evaluate"));
    }
    items.iter().enumerate().map(|(i, item)| prepare_one(model, item).map_err(|e| e.in_record("A/B item", i))).collect()
}

#[cfg(feature = "engine")]
fn prepare_one(model: &Model, item: &AbItem) -> Result<AbPrompt> {
    let prompt = item.prompt();
    let tokens = model.encode(&prompt, false)?;
    let (m, n) = item.letters()?;
    if tokens.len() >= model.cfg().n_ctx {
        return Err(Error::invalid(format!(
            "the prompt is {} tokens, too long for the model's context of {} tokens",
            tokens.len(),
            model.cfg().n_ctx
        )));
    }
    let letter_id = |letter: &str| -> Result<u32> {
        let with = model.encode(&format!("{prompt}{letter}"), false)?;
        match with.split_last() {
            Some((&id, rest)) if rest == tokens.as_slice() => Ok(id),
            _ => Err(Error::invalid(format!("answer letter \"{letter}\" is not one token after \"... Answer: (\""))),
        }
    };
    Ok(AbPrompt { matching: letter_id(&m)?, not_matching: letter_id(&n)?, tokens })
}

/// A contrastive pair tokenised for the log-probability measure: both texts (after BOS when the model has one)
/// and the first position where they differ, from which each text's tokens are scored.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, PartialEq)]
pub struct PairProbe {
    pub positive: Vec<u32>,
    pub negative: Vec<u32>,
    pub from: usize,
}

#[cfg(feature = "engine")]
fn prepare_pair(model: &Model, pair: &ContrastivePair) -> Result<PairProbe> {
    let bos = model.cfg().bos_token_id.is_some();
    let (positive, negative) = (model.encode(&pair.positive, bos)?, model.encode(&pair.negative, bos)?);
    let longest = positive.len().max(negative.len());
    if longest > model.cfg().n_ctx {
        return Err(Error::invalid(format!(
            "a text is {longest} tokens, too long for the model's context of {} tokens",
            model.cfg().n_ctx
        )));
    }
    if positive == negative {
        return Err(Error::invalid("the positive and negative texts are the same tokens: nothing to compare"));
    }
    let shared = positive.iter().zip(&negative).take_while(|(a, b)| a == b).count();
    // The first token has nothing before it to predict it from (a model without BOS).
    Ok(PairProbe { from: shared.max(1), positive, negative })
}

/// The held-out data a steerability is measured on, tokenised.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, PartialEq)]
pub enum Probes {
    Ab(Vec<AbPrompt>),
    Pairs(Vec<PairProbe>),
}

/// Which difference a steerability curve averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// logit(matching letter) − logit(other letter) on A/B items.
    #[default]
    AbLogitDiff,
    /// log p(positive text) − log p(negative text) on contrastive pairs.
    PairLogProbDiff,
}

#[cfg(feature = "engine")]
impl Probes {
    /// Tokenises held-out data of either kind.
    pub fn prepare(model: &Model, data: &Dataset) -> Result<Self> {
        match data {
            Dataset::Ab(items) => Ok(Self::Ab(prepare(model, items)?)),
            Dataset::Pairs(pairs) if pairs.is_empty() => Err(Error::invalid("no contrastive pairs to evaluate")),
            Dataset::Pairs(pairs) => Ok(Self::Pairs(
                pairs
                    .iter()
                    .enumerate()
                    .map(|(i, p)| prepare_pair(model, p).map_err(|e| e.in_record("pair", i)))
                    .collect::<Result<_>>()?,
            )),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Ab(p) => p.len(),
            Self::Pairs(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn measure(&self) -> Measure {
        match self {
            Self::Ab(_) => Measure::AbLogitDiff,
            Self::Pairs(_) => Measure::PairLogProbDiff,
        }
    }

    /// The token rows a pass runs: one per A/B item; a pair's positive then negative text.
    fn rows(&self) -> Vec<&[u32]> {
        match self {
            Self::Ab(p) => p.iter().map(|p| p.tokens.as_slice()).collect(),
            Self::Pairs(p) => p.iter().flat_map(|p| [p.positive.as_slice(), p.negative.as_slice()]).collect(),
        }
    }

    /// Bytes one row of `seq` tokens needs in one buffer when read: a pair's text reads the whole vocabulary's
    /// logits (and their log-softmax) at each scored position.
    fn read_bytes(&self, model: &Model, seq: usize) -> usize {
        match self {
            Self::Ab(_) => 0,
            Self::Pairs(_) => log_prob_read_bytes(model, seq),
        }
    }

    /// Each item's difference from its rows' scores.
    fn items(&self, rows: &[f32]) -> Vec<f32> {
        match self {
            Self::Ab(_) => rows.to_vec(),
            Self::Pairs(_) => rows.chunks(2).map(|r| r[0] - r[1]).collect(),
        }
    }

    /// Reads rows `which` (indices into `rows()`) of a pass: ln_final's output [which, seq, d] → one score each,
    /// the logit difference of an A/B item or the summed log-probability of a pair's text.
    async fn read_rows(&self, net: &Transformer, normed: Tensor<3>, which: &[usize]) -> Result<Vec<f32>> {
        match self {
            Self::Ab(prompts) => {
                let positions: Vec<usize> = which.iter().map(|&r| prompts[r].tokens.len() - 1).collect();
                let items: Vec<AbPrompt> = which.iter().map(|&r| prompts[r].clone()).collect();
                Ok(read(logit_diffs(net, normed, &positions, &items)).await?.data)
            }
            Self::Pairs(pairs) => {
                let texts: Vec<(&[u32], usize)> = which
                    .iter()
                    .map(|&r| {
                        let p = &pairs[r / 2];
                        (if r % 2 == 0 { p.positive.as_slice() } else { p.negative.as_slice() }, p.from)
                    })
                    .collect();
                text_log_probs(net, normed, &texts).await
            }
        }
    }
}

/// What `text_log_probs` needs per row of `seq` tokens in one buffer: the whole vocabulary's logits and their
/// log-softmax at each position.
#[cfg(feature = "engine")]
pub(crate) fn log_prob_read_bytes(model: &Model, seq: usize) -> usize {
    2 * seq * model.cfg().vocab_size * 4
}

/// Σ log p(token | the tokens before it) over each row's tokens from position `from` (≥ 1) on: ln_final's output
/// of the rows [rows, seq, d] and each row's (tokens, from) → [rows]. Only the scored positions are unembedded.
#[cfg(feature = "engine")]
pub(crate) async fn text_log_probs(
    net: &Transformer,
    normed: Tensor<3>,
    texts: &[(&[u32], usize)],
) -> Result<Vec<f32>> {
    let [rows, s, d] = normed.dims();
    // Each scored token: the flat [row * seq + position] it is predicted from, and its id.
    let (mut from, mut ids, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    for (b, &(tokens, start)) in texts.iter().enumerate() {
        for (pos, &id) in tokens.iter().enumerate().skip(start.max(1)) {
            from.push(b * s + pos - 1);
            ids.push(id as i64);
            owner.push(b);
        }
    }
    let mut sums = vec![0.0f32; texts.len()];
    if from.is_empty() {
        return Ok(sums);
    }
    let (n, device) = (from.len(), normed.device());
    let at = normed.reshape([rows * s, d]).select(0, index_tensor(&from, &device)); // [n, d]
    let log_probs = activation::log_softmax(net.vocab_logits(at), 1); // [n, vocab]
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, 1]), &device);
    let picked = read(log_probs.gather(1, ids).reshape([n])).await?.data;
    for (&b, v) in owner.iter().zip(picked) {
        sums[b] += v;
    }
    Ok(sums)
}
/// One item's propensity.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Propensity {
    pub logit_diff: f32,
    pub p_matching: f32,
}

#[cfg(feature = "engine")]
impl Propensity {
    fn from_logit_diff(logit_diff: f32) -> Self {
        Self { logit_diff, p_matching: 1.0 / (1.0 + (-logit_diff).exp()) }
    }
}

/// Steering to evaluate on every item: each of `vectors` ([d_model] each) at `hook`, at each multiplier.
#[cfg(feature = "engine")]
pub struct Grid<'a> {
    pub hook: HookPoint,
    pub vectors: Vec<&'a [f32]>,
    pub multipliers: &'a [f32],
}

/// The difference of every item under every grid's vectors and multipliers: `[grid][vector][multiplier][item]`.
/// Multiplier 0 is the unsteered pass (adding 0 × v changes no bit of the residual stream).
#[cfg(feature = "engine")]
pub async fn grid_scores(model: &Model, probes: &Probes, grids: &[Grid<'_>]) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
    let d = model.cfg().d_model;
    for g in grids {
        check_finite(g.multipliers)?;
        if let Some(v) = g.vectors.iter().find(|v| v.len() != d) {
            return Err(Error::invalid(format!(
                "steering vector has {} dims but {} has d_model = {d}",
                v.len(),
                model.name
            )));
        }
    }
    let token_rows = probes.rows();
    let n_rows = token_rows.len();
    // Scores per token row, [grid][vector][multiplier][row]; items are made from them at the end.
    let mut out: Vec<Vec<Vec<Vec<f32>>>> =
        grids.iter().map(|g| vec![vec![vec![0.0; n_rows]; g.multipliers.len()]; g.vectors.len()]).collect();
    let device = &model.net.device;
    let lens: Vec<usize> = token_rows.iter().map(|r| r.len()).collect();
    let resumed: Vec<HookPoint> = grids.iter().map(|g| g.hook).filter(|&h| Transformer::resumable(h)).collect();
    // Progress in rows: each row once unsteered, then once per vector and non-zero multiplier.
    let steered_per_row: usize =
        grids.iter().map(|g| g.vectors.len() * g.multipliers.iter().filter(|&&m| m != 0.0).count()).sum();
    let (total, mut done) = (n_rows * (1 + steered_per_row), 0);
    let stage = match probes.measure() {
        Measure::AbLogitDiff => "A/B items × vectors × multipliers",
        Measure::PairLogProbDiff => "pair texts × vectors × multipliers",
    };
    let read_bytes = |seq: usize| probes.read_bytes(model, seq);
    for rows in model.chunks(&lens, read_bytes) {
        model.report(stage, done, total);
        let batch = Batch::new(&token_rows[rows.clone()])?;
        let global: Vec<usize> = rows.clone().collect();
        // The unsteered pass, keeping the activations the steered rows resume from.
        let mut hooks = Hooks::capturing(resumed.iter().copied());
        let input = Input::Tokens { ids: &batch.ids, rows: batch.rows() };
        let normed = model.run_to(input, &mut hooks, HookPoint::LnFinal)?;
        let clean = probes.read_rows(&model.net, normed, &global).await?;
        done += batch.rows();
        for (g, grid) in grids.iter().enumerate() {
            let kept = hooks.captured.iter().find(|(p, _)| *p == grid.hook).map(|(_, x)| x.clone());
            let vectors: Vec<f32> = grid.vectors.iter().flat_map(|v| v.iter().copied()).collect();
            let vectors = upload::<2>(HostTensor::new(vec![grid.vectors.len(), d], vectors), device);
            // Steered rows: (row in the chunk, vector, multiplier index).
            let mut jobs = Vec::new();
            for (v, out_v) in out[g].iter_mut().enumerate() {
                for (m, &mult) in grid.multipliers.iter().enumerate() {
                    if mult == 0.0 {
                        out_v[m][rows.clone()].copy_from_slice(&clean);
                    } else {
                        jobs.extend((0..batch.rows()).map(|i| (i, v, m)));
                    }
                }
            }
            for part in model.chunks(&vec![batch.seq; jobs.len()], read_bytes) {
                model.report(stage, done, total);
                done += part.len();
                let jobs = &jobs[part];
                let which: Vec<usize> = jobs.iter().map(|&(i, _, _)| i).collect();
                let steering = RowSteering {
                    hook: grid.hook,
                    vectors: vectors.clone(),
                    rows: jobs
                        .iter()
                        .map(|&(_, v, m)| Some(RowAdd { vector: v, coef: grid.multipliers[m], from_pos: 0 }))
                        .collect(),
                };
                let mut hooks = Hooks { rows: vec![steering], ..Default::default() };
                let mut ids = Vec::new();
                let input = batch.rows_input(&which, kept.as_ref().map(|x| (grid.hook, x)), &mut ids);
                let normed = model.run_to(input, &mut hooks, HookPoint::LnFinal)?;
                let of: Vec<usize> = which.iter().map(|&i| rows.start + i).collect();
                let scores = probes.read_rows(&model.net, normed, &of).await?;
                for (&(i, v, m), score) in jobs.iter().zip(scores) {
                    out[g][v][m][rows.start + i] = score;
                }
            }
        }
    }
    Ok(out.into_iter().map(|g| g.into_iter().map(|v| v.iter().map(|m| probes.items(m)).collect()).collect()).collect())
}

/// logit(matching) − logit(not matching) of each row at its answer position: ln_final's output [rows, seq, d]
/// → [rows].
#[cfg(feature = "engine")]
fn logit_diffs(net: &Transformer, normed: Tensor<3>, positions: &[usize], items: &[AbPrompt]) -> Tensor<1> {
    let rows = items.len();
    let ids: Vec<u32> = items.iter().flat_map(|p| [p.matching, p.not_matching]).collect();
    let two = net.token_logits(gather_positions(normed, positions), &ids, 2); // [rows, 2]
    (two.clone().slice([0..rows, 0..1]) - two.slice([0..rows, 1..2])).reshape([rows])
}

/// Propensity against the multiplier of one steering vector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SteerabilityCurve {
    pub hook: String,
    pub multipliers: Vec<f32>,
    /// What `mean_logit_diff` averages: the A/B logit difference, or the pairs' log-probability difference.
    #[serde(default)]
    pub measure: Measure,
    /// Mean over items of the difference (`measure`), one per multiplier.
    pub mean_logit_diff: Vec<f32>,
    /// Mean over items of its sigmoid, one per multiplier: p(matching) / (p(A) + p(B)) on A/B items,
    /// p(positive) / (p(positive) + p(negative)) on pairs.
    pub mean_p_matching: Vec<f32>,
    /// Slope of `mean_logit_diff` against `multipliers` (equal to the mean of the per-item slopes).
    pub steerability: f32,
    /// Fraction of items whose own slope is negative: steering moves them the wrong way.
    pub anti_steerable_fraction: f32,
}

/// The steerability of `vector` at `hook` over `multipliers` (at least two distinct values).
#[cfg(feature = "engine")]
pub async fn steerability(
    model: &Model,
    probes: &Probes,
    hook: &str,
    vector: &[f32],
    multipliers: &[f32],
) -> Result<SteerabilityCurve> {
    Ok(steerabilities(model, probes, hook, &[vector], multipliers).await?.remove(0))
}

/// The steerability of each of `vectors` at `hook`, all in one batched sweep.
#[cfg(feature = "engine")]
pub async fn steerabilities(
    model: &Model,
    probes: &Probes,
    hook: &str,
    vectors: &[&[f32]],
    multipliers: &[f32],
) -> Result<Vec<SteerabilityCurve>> {
    check_multipliers(multipliers)?;
    let point = HookPoint::parse(hook, model.cfg().n_layers)?;
    let grid = Grid { hook: point, vectors: vectors.to_vec(), multipliers };
    let diffs = grid_scores(model, probes, &[grid]).await?.remove(0);
    Ok(diffs.iter().map(|per_mult| curve(hook, probes.measure(), multipliers, per_mult)).collect())
}

/// A steerability curve from each multiplier's logit differences over the items.
#[cfg(feature = "engine")]
fn curve(hook: &str, measure: Measure, multipliers: &[f32], per_mult: &[Vec<f32>]) -> SteerabilityCurve {
    let n_items = per_mult.first().map_or(0, Vec::len);
    let mean_ld: Vec<f32> = per_mult.iter().map(|ds| mean(ds.iter().copied())).collect();
    let sigmoid = |d: f32| Propensity::from_logit_diff(d).p_matching;
    let mean_p: Vec<f32> = per_mult.iter().map(|ds| mean(ds.iter().map(|&d| sigmoid(d)))).collect();
    let anti = (0..n_items)
        .filter(|&i| slope(multipliers, &per_mult.iter().map(|ds| ds[i]).collect::<Vec<_>>()) < 0.0)
        .count();
    SteerabilityCurve {
        hook: hook.to_string(),
        multipliers: multipliers.to_vec(),
        measure,
        steerability: slope(multipliers, &mean_ld),
        mean_logit_diff: mean_ld,
        mean_p_matching: mean_p,
        anti_steerable_fraction: anti as f32 / n_items.max(1) as f32,
    }
}

/// One row of a layer sweep: the CAA vector at `hook` from the training pairs, and its steerability.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerSweepRow {
    pub layer: usize,
    pub vector_norm: f32,
    pub curve: SteerabilityCurve,
}

/// CAA vectors at `blocks.L.hook_resid_pre` for each layer (one set of passes captures every layer), each
/// evaluated on the held-out prompts (one batched sweep shares the unsteered pass across layers).
#[cfg(feature = "engine")]
pub async fn layer_sweep(
    model: &Model,
    train: &[ContrastivePair],
    eval: &Probes,
    layers: &[usize],
    multipliers: &[f32],
) -> Result<Vec<LayerSweepRow>> {
    check_multipliers(multipliers)?;
    let n_layers = model.cfg().n_layers;
    if let Some(l) = layers.iter().find(|&&l| l >= n_layers) {
        return Err(Error::invalid(format!("layer {l} is out of range: the model has {n_layers} layers")));
    }
    let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::ResidPre(l)).collect();
    let vectors = caa_vectors(model, train, &points).await?;
    let grids: Vec<Grid> =
        points.iter().zip(&vectors).map(|(&hook, v)| Grid { hook, vectors: vec![v.as_slice()], multipliers }).collect();
    let diffs = grid_scores(model, eval, &grids).await?;
    Ok(layers
        .iter()
        .zip(points)
        .zip(vectors.iter().zip(diffs))
        .map(|((&layer, point), (v, d))| LayerSweepRow {
            layer,
            vector_norm: norm(v),
            curve: curve(&point.to_string(), eval.measure(), multipliers, &d[0]),
        })
        .collect())
}

#[cfg(feature = "engine")]
fn check_multipliers(multipliers: &[f32]) -> Result<()> {
    check_finite(multipliers)?;
    let first = multipliers.first().copied().unwrap_or(0.0);
    if !multipliers.iter().any(|&m| m != first) {
        return Err(Error::invalid("steerability needs at least two different multipliers"));
    }
    Ok(())
}

#[cfg(feature = "engine")]
fn check_finite(multipliers: &[f32]) -> Result<()> {
    match multipliers.iter().find(|m| !m.is_finite()) {
        Some(m) => Err(Error::invalid(format!("multiplier {m} is not finite"))),
        None => Ok(()),
    }
}

/// Least-squares slope of ys against xs.
#[cfg(feature = "engine")]
pub fn slope(xs: &[f32], ys: &[f32]) -> f32 {
    let (mx, my) = (mean(xs.iter().copied()) as f64, mean(ys.iter().copied()) as f64);
    let (mut sxy, mut sxx) = (0.0f64, 0.0f64);
    for (&x, &y) in xs.iter().zip(ys) {
        sxy += (x as f64 - mx) * (y as f64 - my);
        sxx += (x as f64 - mx).powi(2);
    }
    (sxy / sxx) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_and_sigmoid() {
        assert!((slope(&[-1.0, 0.0, 1.0, 2.0], &[-1.0, 1.0, 3.0, 5.0]) - 2.0).abs() < 1e-6);
        assert!((Propensity::from_logit_diff(0.0).p_matching - 0.5).abs() < 1e-7);
        assert!(check_multipliers(&[1.0, 1.0]).is_err());
        assert!(check_multipliers(&[0.0, f32::NAN]).is_err());
    }
}
