//! How strongly a model shows a behaviour on held-out A/B items, and how that moves with a steering
//! multiplier. Propensity of one item: the logit difference logit(matching letter) − logit(other letter) at
//! the answer position, and p(matching) / (p(A) + p(B)), which is the sigmoid of that difference.
//! Steerability (Tan et al. 2024): the least-squares slope of the mean logit difference against the multiplier.
//!
//! Every item × vector × multiplier of a sweep runs batched (`grid_logit_diffs`), and only two logits per row
//! come back. Steering at `blocks.L.hook_resid_pre` changes nothing before block L, so the items run once
//! unsteered, their activations there are kept, and each steered row starts from them at block L.

use super::caa::caa_vectors;
use super::dataset::{AbItem, ContrastivePair};
use crate::device::read;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::batch::{Batch, gather_positions};
use crate::model::hooks::{HookPoint, Hooks, RowAdd, RowSteering};
use crate::model::layers::upload;
use crate::model::transformer::{Input, Transformer};
use crate::model::weights::HostTensor;
use crate::stats::{mean, norm};
use burn::tensor::Tensor;

/// An A/B item tokenised: the prompt up to the answer letter and the two letters' token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct AbPrompt {
    pub tokens: Vec<u32>,
    pub matching: u32,
    pub not_matching: u32,
}

/// Tokenises items, checking each answer letter is one token after the prompt.
pub fn prepare(model: &Model, items: &[AbItem]) -> Result<Vec<AbPrompt>> {
    if items.is_empty() {
        return Err(Error::invalid("no A/B items to evaluate"));
    }
    items.iter().enumerate().map(|(i, item)| prepare_one(model, item).map_err(|e| e.in_record("A/B item", i))).collect()
}

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

/// One item's propensity.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Propensity {
    pub logit_diff: f32,
    pub p_matching: f32,
}

impl Propensity {
    fn from_logit_diff(logit_diff: f32) -> Self {
        Self { logit_diff, p_matching: 1.0 / (1.0 + (-logit_diff).exp()) }
    }
}

/// Steering to evaluate on every item: each of `vectors` ([d_model] each) at `hook`, at each multiplier.
pub struct Grid<'a> {
    pub hook: HookPoint,
    pub vectors: Vec<&'a [f32]>,
    pub multipliers: &'a [f32],
}

/// The logit difference of every item under every grid's vectors and multipliers: `[grid][vector][multiplier]
/// [item]`. Multiplier 0 is the unsteered pass (adding 0 × v changes no bit of the residual stream).
pub async fn grid_logit_diffs(
    model: &Model,
    prompts: &[AbPrompt],
    grids: &[Grid<'_>],
) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
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
    let mut out: Vec<Vec<Vec<Vec<f32>>>> =
        grids.iter().map(|g| vec![vec![vec![0.0; prompts.len()]; g.multipliers.len()]; g.vectors.len()]).collect();
    let device = &model.net.device;
    let lens: Vec<usize> = prompts.iter().map(|p| p.tokens.len()).collect();
    let resumed: Vec<HookPoint> = grids.iter().map(|g| g.hook).filter(|&h| Transformer::resumable(h)).collect();
    // Progress in rows: each item once unsteered, then once per vector and non-zero multiplier.
    let steered_per_item: usize =
        grids.iter().map(|g| g.vectors.len() * g.multipliers.iter().filter(|&&m| m != 0.0).count()).sum();
    let (total, mut done) = (prompts.len() * (1 + steered_per_item), 0);
    const STAGE: &str = "A/B items × vectors × multipliers";
    for items in model.chunks(&lens, |_| 0) {
        model.report(STAGE, done, total);
        let chunk = &prompts[items.clone()];
        let batch = Batch::new(&chunk.iter().map(|p| p.tokens.as_slice()).collect::<Vec<_>>())?;
        let rows = batch.rows();
        // The unsteered pass, keeping the activations the steered rows resume from.
        let mut hooks = Hooks::capturing(resumed.iter().copied());
        let input = Input::Tokens { ids: &batch.ids, rows };
        let normed = model.run_to(input, &mut hooks, HookPoint::LnFinal)?;
        let clean = read(logit_diffs(&model.net, normed, &batch.last_positions(), chunk)).await?.data;
        done += rows;
        for (g, grid) in grids.iter().enumerate() {
            let kept = hooks.captured.iter().find(|(p, _)| *p == grid.hook).map(|(_, x)| x.clone());
            let vectors: Vec<f32> = grid.vectors.iter().flat_map(|v| v.iter().copied()).collect();
            let vectors = upload::<2>(HostTensor::new(vec![grid.vectors.len(), d], vectors), device);
            // Steered rows: (item in the chunk, vector, multiplier index).
            let mut jobs = Vec::new();
            for v in 0..grid.vectors.len() {
                for (m, &mult) in grid.multipliers.iter().enumerate() {
                    if mult == 0.0 {
                        out[g][v][m][items.clone()].copy_from_slice(&clean);
                    } else {
                        jobs.extend((0..rows).map(|i| (i, v, m)));
                    }
                }
            }
            for part in model.chunks(&vec![batch.seq; jobs.len()], |_| 0) {
                model.report(STAGE, done, total);
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
                let positions: Vec<usize> = which.iter().map(|&i| batch.lens[i] - 1).collect();
                let items_of: Vec<AbPrompt> = which.iter().map(|&i| chunk[i].clone()).collect();
                let diffs = read(logit_diffs(&model.net, normed, &positions, &items_of)).await?.data;
                for (&(i, v, m), diff) in jobs.iter().zip(diffs) {
                    out[g][v][m][items.start + i] = diff;
                }
            }
        }
    }
    Ok(out)
}

/// logit(matching) − logit(not matching) of each row at its answer position: ln_final's output [rows, seq, d]
/// → [rows].
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
    /// Mean over items of the logit difference, one per multiplier.
    pub mean_logit_diff: Vec<f32>,
    /// Mean over items of p(matching) / (p(A) + p(B)), one per multiplier.
    pub mean_p_matching: Vec<f32>,
    /// Slope of `mean_logit_diff` against `multipliers` (equal to the mean of the per-item slopes).
    pub steerability: f32,
    /// Fraction of items whose own slope is negative: steering moves them the wrong way.
    pub anti_steerable_fraction: f32,
}

/// The steerability of `vector` at `hook` over `multipliers` (at least two distinct values).
pub async fn steerability(
    model: &Model,
    prompts: &[AbPrompt],
    hook: &str,
    vector: &[f32],
    multipliers: &[f32],
) -> Result<SteerabilityCurve> {
    Ok(steerabilities(model, prompts, hook, &[vector], multipliers).await?.remove(0))
}

/// The steerability of each of `vectors` at `hook`, all in one batched sweep.
pub async fn steerabilities(
    model: &Model,
    prompts: &[AbPrompt],
    hook: &str,
    vectors: &[&[f32]],
    multipliers: &[f32],
) -> Result<Vec<SteerabilityCurve>> {
    check_multipliers(multipliers)?;
    let point = HookPoint::parse(hook, model.cfg().n_layers)?;
    let grid = Grid { hook: point, vectors: vectors.to_vec(), multipliers };
    let diffs = grid_logit_diffs(model, prompts, &[grid]).await?.remove(0);
    Ok(diffs.iter().map(|per_mult| curve(hook, multipliers, per_mult)).collect())
}

/// A steerability curve from each multiplier's logit differences over the items.
fn curve(hook: &str, multipliers: &[f32], per_mult: &[Vec<f32>]) -> SteerabilityCurve {
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
pub async fn layer_sweep(
    model: &Model,
    train: &[ContrastivePair],
    eval: &[AbPrompt],
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
    let diffs = grid_logit_diffs(model, eval, &grids).await?;
    Ok(layers
        .iter()
        .zip(points)
        .zip(vectors.iter().zip(diffs))
        .map(|((&layer, point), (v, d))| LayerSweepRow {
            layer,
            vector_norm: norm(v),
            curve: curve(&point.to_string(), multipliers, &d[0]),
        })
        .collect())
}

fn check_multipliers(multipliers: &[f32]) -> Result<()> {
    check_finite(multipliers)?;
    let first = multipliers.first().copied().unwrap_or(0.0);
    if !multipliers.iter().any(|&m| m != first) {
        return Err(Error::invalid("steerability needs at least two different multipliers"));
    }
    Ok(())
}

fn check_finite(multipliers: &[f32]) -> Result<()> {
    match multipliers.iter().find(|m| !m.is_finite()) {
        Some(m) => Err(Error::invalid(format!("multiplier {m} is not finite"))),
        None => Ok(()),
    }
}

/// Least-squares slope of ys against xs.
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
