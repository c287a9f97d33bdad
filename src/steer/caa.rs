//! Contrastive activation addition (CAA, Rimsky et al.): the steering vector at a hook is the mean over
//! pairs of resid(positive) − resid(negative), each read at its text's last token. Every text of every pair
//! runs in batched passes that capture all the requested hooks at once and stop after the deepest.

use super::dataset::ContrastivePair;
use crate::device::read;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::batch::{Batch, gather_positions};
use crate::model::hooks::{HookPoint, Hooks};
use crate::model::transformer::Input;
use crate::model::weights::HostTensor;

/// The CAA vector [d_model] at the hook named `hook`.
pub async fn caa_vector(model: &Model, pairs: &[ContrastivePair], hook: &str) -> Result<Vec<f32>> {
    let point = HookPoint::parse(hook, model.cfg().n_layers)?;
    Ok(caa_vectors(model, pairs, &[point]).await?.remove(0))
}

/// The CAA vector at each of `points` ([d_model] each), from one set of passes.
pub async fn caa_vectors(model: &Model, pairs: &[ContrastivePair], points: &[HookPoint]) -> Result<Vec<Vec<f32>>> {
    if pairs.is_empty() {
        return Err(Error::invalid("no contrastive pairs to average"));
    }
    let (pos, neg) = pair_activations(model, pairs, points).await?;
    let d = model.cfg().d_model;
    Ok(pos
        .iter()
        .zip(&neg)
        .map(|(p, n)| {
            let mut sum = vec![0.0f64; d];
            for (prow, nrow) in p.data.chunks(d).zip(n.data.chunks(d)) {
                for ((s, a), b) in sum.iter_mut().zip(prow).zip(nrow) {
                    *s += (a - b) as f64;
                }
            }
            sum.into_iter().map(|s| (s / pairs.len() as f64) as f32).collect()
        })
        .collect())
}

/// Activations at the read position (last token) of the positive and of the negative texts, per point:
/// [pairs, d_model] each.
pub async fn pair_activations(
    model: &Model,
    pairs: &[ContrastivePair],
    points: &[HookPoint],
) -> Result<(Vec<HostTensor>, Vec<HostTensor>)> {
    let mut texts = Vec::with_capacity(2 * pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        for text in [&pair.positive, &pair.negative] {
            texts.push(model.encode_prompt(text).map_err(|e| e.in_record("pair", i))?);
        }
    }
    let acts = last_token_activations(model, &texts, points).await?;
    let d = model.cfg().d_model;
    let side = |x: &HostTensor, first: usize| {
        let data = x.data.chunks(d).skip(first).step_by(2).flatten().copied().collect();
        HostTensor::new(vec![pairs.len(), d], data)
    };
    Ok((acts.iter().map(|x| side(x, 0)).collect(), acts.iter().map(|x| side(x, 1)).collect()))
}

/// The activation at each of `points` of each sequence's last token: per point, [sequences, d_model].
pub async fn last_token_activations(model: &Model, seqs: &[Vec<u32>], points: &[HookPoint]) -> Result<Vec<HostTensor>> {
    let Some(&deepest) = points.iter().max_by_key(|p| p.depth()) else {
        return Err(Error::invalid("no hook to read"));
    };
    let d = model.cfg().d_model;
    let mut out: Vec<Vec<f32>> = vec![Vec::with_capacity(seqs.len() * d); points.len()];
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    for part in model.chunks(&lens, |_| 0) {
        model.report("contrastive pairs", part.start, lens.len());
        let batch = Batch::new(&seqs[part])?;
        let mut hooks = Hooks::capturing(points.iter().copied());
        let last = model.run_to(Input::Tokens { ids: &batch.ids, rows: batch.rows() }, &mut hooks, deepest)?;
        for (p, acc) in points.iter().zip(out.iter_mut()) {
            let x = match hooks.captured.iter().find(|(q, _)| q == p) {
                Some((_, x)) => x.clone(),
                None => last.clone(), // the deepest: the pass stopped there
            };
            acc.extend(read(gather_positions(x, &batch.last_positions())).await?.data); // [rows, d]
        }
    }
    Ok(out.into_iter().map(|data| HostTensor::new(vec![seqs.len(), d], data)).collect())
}
