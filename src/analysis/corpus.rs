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

/// The most bytes of per-token activations `corpus_activations` may hold at once (prompt sets and other small
/// texts; a background corpus is streamed by `corpus_stats` instead).
pub const MAX_CORPUS_BYTES: usize = if cfg!(target_arch = "wasm32") { 256 << 20 } else { 1 << 30 };

/// Every passage's activations at every token but the first (position 0 carries outlier norms in GPT-2 and
/// would dominate every statistic), stacked in one [n, d_model]; passages longer than the context are cut,
/// one-token passages skipped. For small texts: each row is kept.
pub async fn corpus_activations(model: &Model, passages: &[String], point: HookPoint) -> Result<HostTensor> {
    let d = model.cfg().d_model;
    let seqs = passage_tokens(model, passages)?;
    let n: usize = seqs.iter().map(|s| s.len() - 1).sum();
    if n.saturating_mul(d).saturating_mul(4) > MAX_CORPUS_BYTES {
        return Err(Error::invalid(format!(
            "the text is {n} tokens; at this model's width (d_model = {d}) at most {} fit in memory here",
            MAX_CORPUS_BYTES / (4 * d)
        )));
    }
    let mut data = Vec::with_capacity(n * d);
    for_each_chunk(model, &seqs, point, "passages", &mut |rows| {
        data.extend_from_slice(rows);
        Ok(())
    })
    .await?;
    Ok(HostTensor::new(vec![n, d], data))
}

/// What the diagnostics need of a background corpus at one hook, gathered chunk by chunk so that only one
/// chunk's activations is held at a time: Mayne et al.'s 200k tokens fit a browser tab.
#[derive(Debug, Clone)]
pub struct CorpusStats {
    /// Each token's activation norm, in corpus order (every passage's tokens but the first).
    pub norms: Vec<f32>,
    sum: Vec<f64>,
    /// Every `stride`-th token's activation, [⌈tokens / stride⌉, d]: the dots of the strip plots.
    pub sample: HostTensor,
    stride: usize,
}

impl CorpusStats {
    /// Room for `tokens` rows of width `d`, keeping about `sample_rows` of them evenly spaced.
    pub fn new(d: usize, tokens: usize, sample_rows: usize) -> Self {
        let stride = tokens.div_ceil(sample_rows.max(1)).max(1);
        Self {
            norms: Vec::with_capacity(tokens),
            sum: vec![0.0; d],
            sample: HostTensor::new(vec![0, d], vec![]),
            stride,
        }
    }

    /// The statistics of rows held in memory, [n, d].
    pub fn of_rows(x: &HostTensor, sample_rows: usize) -> Self {
        let mut s = Self::new(x.shape[1], x.shape[0], sample_rows);
        s.add(&x.data);
        s
    }

    /// Adds the next tokens' activations, row after row of width d.
    pub fn add(&mut self, rows: &[f32]) {
        let d = self.sum.len();
        for row in rows.chunks(d) {
            if self.norms.len().is_multiple_of(self.stride) {
                self.sample.data.extend_from_slice(row);
                self.sample.shape[0] += 1;
            }
            self.norms.push(crate::stats::norm(row));
            self.sum.iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
        }
    }

    pub fn tokens(&self) -> usize {
        self.norms.len()
    }

    /// The mean activation [d].
    pub fn mean(&self) -> Vec<f32> {
        let n = self.tokens().max(1) as f64;
        self.sum.iter().map(|s| (s / n) as f32).collect()
    }
}

/// The statistics of `passages` at `point`, passed chunk by chunk (each chunk's real tokens, rows of d_model)
/// to `each` as well: what else a flow needs of every token (feature firing counts) it gathers there.
pub async fn corpus_stats(
    model: &Model,
    passages: &[String],
    point: HookPoint,
    sample_rows: usize,
    each: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<CorpusStats> {
    let seqs = passage_tokens(model, passages)?;
    let n: usize = seqs.iter().map(|s| s.len() - 1).sum();
    let mut stats = CorpusStats::new(model.cfg().d_model, n, sample_rows);
    for_each_chunk(model, &seqs, point, "background passages", &mut |rows| {
        stats.add(rows);
        each(rows)
    })
    .await?;
    Ok(stats)
}

/// Runs `seqs` batched to `point` and hands each chunk's activations at every token but each passage's first to
/// `each`, in order: [tokens, d] as rows.
async fn for_each_chunk(
    model: &Model,
    seqs: &[Vec<u32>],
    point: HookPoint,
    stage: &str,
    each: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    let d = model.cfg().d_model;
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    for part in model.chunks(&lens, |_| 0) {
        model.report(stage, part.start, lens.len());
        let batch = Batch::new(&seqs[part.clone()])?;
        let input = Input::Tokens { ids: &batch.ids, rows: batch.rows() };
        let acts = read(model.run_to(input, &mut Hooks::default(), point)?).await?; // [rows, seq, d]
        for (r, tokens) in seqs[part].iter().enumerate() {
            each(&acts.data[(r * batch.seq + 1) * d..(r * batch.seq + tokens.len()) * d])?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows added chunk by chunk give the statistics of the rows held at once: norms in order, the mean, and
    /// every stride-th row as the sample.
    #[test]
    fn streamed_statistics_equal_those_of_the_whole() {
        let rows: Vec<f32> = (0..14).map(|i| i as f32 - 3.0).collect(); // 7 rows of width 2
        let whole = CorpusStats::of_rows(&HostTensor::new(vec![7, 2], rows.clone()), 3);
        let mut streamed = CorpusStats::new(2, 7, 3);
        for chunk in [&rows[..4], &rows[4..6], &rows[6..]] {
            streamed.add(chunk);
        }
        assert_eq!(streamed.norms, whole.norms);
        assert_eq!(streamed.tokens(), 7);
        assert_eq!(streamed.norms[1], (1.0f32 + 0.0).sqrt()); // row (-1, 0)
        assert_eq!(streamed.mean(), vec![3.0, 4.0]);
        // 7 rows, about 3 kept: every third (rows 0, 3, 6).
        assert_eq!(streamed.sample.shape, vec![3, 2]);
        assert_eq!(streamed.sample.data, vec![-3.0, -2.0, 3.0, 4.0, 9.0, 10.0]);
        assert_eq!(whole.sample.data, streamed.sample.data);
    }
}
