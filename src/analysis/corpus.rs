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

/// The most bytes of per-token activations one corpus may fill: every statistic over it (norms, default
/// components, SAE activations) needs them all at once. 1 GiB is Mayne et al.'s 200k tokens at GPT-2's width;
/// a browser tab gets a quarter of that.
pub const MAX_CORPUS_BYTES: usize = if cfg!(target_arch = "wasm32") { 256 << 20 } else { 1 << 30 };

/// Every passage's activations at every token but the first (position 0 carries outlier norms in GPT-2 and
/// would dominate every statistic), stacked in one [n, d_model]; passages longer than the context are cut,
/// one-token passages skipped. Passages run batched and each row is copied once, into the result.
pub async fn corpus_activations(model: &Model, passages: &[String], point: HookPoint) -> Result<HostTensor> {
    let d = model.cfg().d_model;
    let seqs = passage_tokens(model, passages)?;
    let n: usize = seqs.iter().map(|s| s.len() - 1).sum();
    if n.saturating_mul(d).saturating_mul(4) > MAX_CORPUS_BYTES {
        return Err(Error::invalid(format!(
            "the corpus is {n} tokens; at this model's width (d_model = {d}) at most {} fit in memory here",
            MAX_CORPUS_BYTES / (4 * d)
        )));
    }
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let mut data = Vec::with_capacity(n * d);
    for part in model.chunks(&lens, |_| 0) {
        model.report("background passages", part.start, lens.len());
        let batch = Batch::new(&seqs[part.clone()])?;
        let input = Input::Tokens { ids: &batch.ids, rows: batch.rows() };
        let acts = read(model.run_to(input, &mut Hooks::default(), point)?).await?; // [rows, seq, d]
        for (r, tokens) in seqs[part].iter().enumerate() {
            data.extend_from_slice(&acts.data[(r * batch.seq + 1) * d..(r * batch.seq + tokens.len()) * d]);
        }
    }
    Ok(HostTensor::new(vec![n, d], data))
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
