//! Activations at a hook for background text and for the two sides of contrastive pairs.

use crate::device::read;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::batch::Batch;
use crate::model::hooks::{HookPoint, Hooks};
use crate::model::transformer::Input;
use crate::model::weights::HostTensor;
use crate::steer::caa;
use crate::steer::dataset::ContrastivePair;

/// One passage's tokens and their activations [n, d_model], position 0 left out.
pub struct PassageActivations {
    pub tokens: Vec<u32>,
    pub acts: HostTensor,
}

/// Each passage's tokens, cut to the context; one-token and blank passages are left out.
pub fn passage_tokens(model: &Model, passages: &[String]) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for text in passages.iter().filter(|t| !t.trim().is_empty()) {
        let mut tokens = model.encode(text, false)?;
        tokens.truncate(model.cfg().n_ctx);
        if tokens.len() >= 2 {
            out.push(tokens);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("the corpus has no passage of two tokens or more"));
    }
    Ok(out)
}

/// Each passage's activations at every token but the first (position 0 carries outlier norms in GPT-2 and
/// would dominate every statistic); passages longer than the context are cut, one-token passages skipped.
/// Passages run batched.
pub async fn passage_activations(
    model: &Model,
    passages: &[String],
    point: HookPoint,
) -> Result<Vec<PassageActivations>> {
    let d = model.cfg().d_model;
    let seqs = passage_tokens(model, passages)?;
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let mut out = Vec::with_capacity(seqs.len());
    for part in model.chunks(&lens, |_| 0) {
        let batch = Batch::new(&seqs[part.clone()])?;
        let input = Input::Tokens { ids: &batch.ids, rows: batch.rows() };
        let acts = read(model.run_to(input, &mut Hooks::default(), point)?).await?; // [rows, seq, d]
        for (r, tokens) in seqs[part].iter().enumerate() {
            let row = &acts.data[(r * batch.seq + 1) * d..(r * batch.seq + tokens.len()) * d];
            out.push(PassageActivations {
                acts: HostTensor::new(vec![tokens.len() - 1, d], row.to_vec()),
                tokens: tokens[1..].to_vec(),
            });
        }
    }
    Ok(out)
}

/// Every passage's activations (see `passage_activations`) in one [n, d_model].
pub async fn corpus_activations(model: &Model, passages: &[String], point: HookPoint) -> Result<HostTensor> {
    Ok(stack(&passage_activations(model, passages, point).await?))
}

/// The passages' activations in one [n, d_model].
pub fn stack(passages: &[PassageActivations]) -> HostTensor {
    let d = passages.first().map_or(0, |p| p.acts.shape[1]);
    let data: Vec<f32> = passages.iter().flat_map(|p| p.acts.data.iter().copied()).collect();
    HostTensor::new(vec![data.len() / d.max(1), d], data)
}

/// Activations at the read position (last token) of the positive and of the negative texts: [n, d] each.
pub async fn pair_activations(
    model: &Model,
    pairs: &[ContrastivePair],
    point: HookPoint,
) -> Result<(HostTensor, HostTensor)> {
    let (mut pos, mut neg) = caa::pair_activations(model, pairs, &[point]).await?;
    Ok((pos.remove(0), neg.remove(0)))
}
/// The mean row of [n, d].
pub fn mean_row(x: &HostTensor) -> Vec<f32> {
    let d = x.shape[1];
    let mut sum = vec![0.0f64; d];
    for row in x.data.chunks(d) {
        sum.iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
    }
    sum.into_iter().map(|s| (s / x.shape[0] as f64) as f32).collect()
}
