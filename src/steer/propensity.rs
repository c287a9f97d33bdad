//! How strongly a model shows a behaviour on held-out A/B items, and how that moves with a steering
//! multiplier. Propensity of one item: the logit difference logit(matching letter) − logit(other letter) at
//! the answer position, and p(matching) / (p(A) + p(B)), which is the sigmoid of that difference.
//! Steerability (Tan et al. 2024): the least-squares slope of the mean logit difference against the multiplier.

use super::apply::intervention;
use super::caa::caa_vector;
use super::dataset::{AbItem, ContrastivePair};
use crate::device::read;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::hooks::{HookPoint, Hooks, Intervention};
use crate::model::layers::index_tensor;
use crate::stats::{mean, norm};

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

/// Each item's propensity with `steering` applied at every position.
pub async fn propensities(model: &Model, prompts: &[AbPrompt], steering: &[Intervention]) -> Result<Vec<Propensity>> {
    let mut out = Vec::with_capacity(prompts.len());
    for p in prompts {
        let last = model.next_token_logits(&p.tokens, &mut Hooks::steering(steering.to_vec()))?; // [vocab]
        let ids = index_tensor(&[p.matching as usize, p.not_matching as usize], &model.net.device);
        let two = read(last.select(0, ids)).await?.data;
        out.push(Propensity::from_logit_diff(two[0] - two[1]));
    }
    Ok(out)
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
    check_multipliers(multipliers)?;
    let mut per_item = vec![Vec::with_capacity(multipliers.len()); prompts.len()];
    let (mut mean_ld, mut mean_p) = (Vec::new(), Vec::new());
    for &m in multipliers {
        let iv = intervention(model, hook, vector, m, 0)?;
        let props = propensities(model, prompts, &[iv]).await?;
        for (curve, p) in per_item.iter_mut().zip(&props) {
            curve.push(p.logit_diff);
        }
        mean_ld.push(mean(props.iter().map(|p| p.logit_diff)));
        mean_p.push(mean(props.iter().map(|p| p.p_matching)));
    }
    let anti = per_item.iter().filter(|ys| slope(multipliers, ys) < 0.0).count();
    Ok(SteerabilityCurve {
        hook: hook.to_string(),
        multipliers: multipliers.to_vec(),
        steerability: slope(multipliers, &mean_ld),
        mean_logit_diff: mean_ld,
        mean_p_matching: mean_p,
        anti_steerable_fraction: anti as f32 / prompts.len().max(1) as f32,
    })
}

/// One row of a layer sweep: the CAA vector at `hook` from the training pairs, and its steerability.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerSweepRow {
    pub layer: usize,
    pub vector_norm: f32,
    pub curve: SteerabilityCurve,
}

/// CAA vectors at `blocks.L.hook_resid_pre` for each layer, each evaluated on the held-out prompts.
pub async fn layer_sweep(
    model: &Model,
    train: &[ContrastivePair],
    eval: &[AbPrompt],
    layers: &[usize],
    multipliers: &[f32],
) -> Result<Vec<LayerSweepRow>> {
    check_multipliers(multipliers)?;
    let mut rows = Vec::new();
    for &layer in layers {
        let hook = HookPoint::ResidPre(layer).to_string();
        let vector = caa_vector(model, train, &hook).await?;
        let curve = steerability(model, eval, &hook, &vector, multipliers).await?;
        rows.push(LayerSweepRow { layer, vector_norm: norm(&vector), curve });
    }
    Ok(rows)
}

fn check_multipliers(multipliers: &[f32]) -> Result<()> {
    if let Some(m) = multipliers.iter().find(|m| !m.is_finite()) {
        return Err(Error::invalid(format!("multiplier {m} is not finite")));
    }
    let first = multipliers.first().copied().unwrap_or(0.0);
    if !multipliers.iter().any(|&m| m != first) {
        return Err(Error::invalid("steerability needs at least two different multipliers"));
    }
    Ok(())
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
