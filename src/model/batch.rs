//! Many sequences in one forward pass. Rows of different lengths are right-padded into one [batch, seq] block:
//! every row starts at position 0, so positions, rotary angles, the causal mask and Gemma's sliding window are
//! the same for every row, and causal attention already keeps the padding (which only ever comes after a row's
//! real tokens) out of every real position. Nothing else needs a mask: each row is read at its own positions
//! and the padded ones are ignored. Work is cut into chunks of rows that fit the device's limits.

#[cfg(feature = "engine")]
use super::Model;
use super::config::ModelConfig;
#[cfg(feature = "engine")]
use {
    super::hooks::HookPoint,
    super::layers::index_tensor,
    super::transformer::Input,
    crate::error::{Error, Result},
    burn::tensor::Tensor,
};

/// The id padded rows are filled with: any id inside the vocabulary would do, since no real position sees it.
#[cfg(feature = "engine")]
const PAD: u32 = 0;

/// Token rows, right-padded into one [rows, seq] block.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// [rows * seq], row-major.
    pub ids: Vec<u32>,
    /// Each row's real length.
    pub lens: Vec<usize>,
    pub seq: usize,
}

#[cfg(feature = "engine")]
impl Batch {
    /// Pads `rows` (each at least one token) to the longest.
    pub fn new<R: AsRef<[u32]>>(rows: &[R]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::invalid("an empty batch: at least one sequence is needed"));
        }
        let seq = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
        if let Some(i) = rows.iter().position(|r| r.as_ref().is_empty()) {
            return Err(Error::invalid(format!(
                "sequence {} of the batch is empty: at least one token is needed",
                i + 1
            )));
        }
        let mut ids = Vec::with_capacity(rows.len() * seq);
        for r in rows {
            ids.extend_from_slice(r.as_ref());
            ids.resize(ids.len() + seq - r.as_ref().len(), PAD);
        }
        Ok(Self { ids, lens: rows.iter().map(|r| r.as_ref().len()).collect(), seq })
    }

    pub fn rows(&self) -> usize {
        self.lens.len()
    }

    /// Rows `which` of this batch (repeats allowed) as a pass's input: resumed at `at` from `kept`, their
    /// activations there in an earlier pass of this batch, when given; else their tokens again, written to `ids`.
    pub fn rows_input<'a>(
        &self,
        which: &[usize],
        kept: Option<(HookPoint, &Tensor<3>)>,
        ids: &'a mut Vec<u32>,
    ) -> Input<'a> {
        match kept {
            Some((at, x)) => Input::Resume { at, x: x.clone().select(0, index_tensor(which, &x.device())) }, // [which, seq, d]
            None => {
                *ids = which.iter().flat_map(|&i| self.ids[i * self.seq..(i + 1) * self.seq].iter().copied()).collect();
                let ids: &'a Vec<u32> = ids;
                Input::Tokens { ids, rows: which.len() }
            }
        }
    }

    /// Each row's last real position.
    pub fn last_positions(&self) -> Vec<usize> {
        self.lens.iter().map(|l| l - 1).collect()
    }
}

/// Row `b` of `x` at position `positions[b]`: [b, s, d] → [b, d].
#[cfg(feature = "engine")]
pub fn gather_positions(x: Tensor<3>, positions: &[usize]) -> Tensor<2> {
    let [b, s, d] = x.dims();
    let flat: Vec<usize> = positions.iter().enumerate().map(|(row, &p)| row * s + p).collect();
    let device = x.device();
    x.reshape([b * s, d]).select(0, index_tensor(&flat, &device)) // [b, d]
}

/// What the device lets one batch use: the largest single buffer (WebGPU's maxStorageBufferBindingSize: 128 MiB
/// on lavapipe and Android, often more on desktop GPUs) and the memory a batch's live tensors may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub max_binding_bytes: u64,
    pub budget_bytes: u64,
}

impl Default for Limits {
    /// Safe on every device: WebGPU's default binding limit, and half a GiB of activations.
    fn default() -> Self {
        Self { max_binding_bytes: 128 << 20, budget_bytes: 512 << 20 }
    }
}

impl Limits {
    /// How many rows of `seq` tokens one pass of `cfg` may take, when each row also needs `extra_row_bytes` in
    /// one buffer of its own (the caller's: full-vocabulary logits, SAE activations) — at least 1.
    pub fn rows_per_pass(&self, cfg: &ModelConfig, seq: usize, extra_row_bytes: usize) -> usize {
        let (s, d) = (seq as u64, cfg.d_model as u64);
        let qkv = ((cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.d_head) as u64;
        // The largest buffers of a pass, per row: MLP hidden, attention scores, fused q|k|v.
        let largest =
            [s * cfg.d_mlp as u64, cfg.n_heads as u64 * s * s, s * qkv, s * d].into_iter().max().unwrap_or(1) * 4;
        let largest = largest.max(extra_row_bytes as u64).max(1);
        // What is alive at once, per row: a few residual-sized tensors, the MLP hidden twice (GeGLU), the scores
        // and the probabilities, and the caller's buffer.
        let live = (6 * s * d + 2 * s * cfg.d_mlp as u64 + 2 * cfg.n_heads as u64 * s * s) * 4 + extra_row_bytes as u64;
        let by_binding = self.max_binding_bytes / largest;
        let by_budget = self.budget_bytes / live.max(1);
        by_binding.min(by_budget).clamp(1, usize::MAX as u64) as usize
    }
}

#[cfg(feature = "engine")]
impl Model {
    /// Chunks of rows (given by their lengths) for passes that each fit the limits: consecutive index ranges.
    /// `extra_row_bytes(seq)` is what the caller adds per row of a pass of `seq` tokens, in one buffer.
    pub fn chunks(&self, lens: &[usize], extra_row_bytes: impl Fn(usize) -> usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < lens.len() {
            let mut end = start;
            let mut seq = 0;
            while end < lens.len() {
                let s = seq.max(lens[end]);
                if end > start && end - start + 1 > self.limits.rows_per_pass(self.cfg(), s, extra_row_bytes(s)) {
                    break;
                }
                seq = s;
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }
}
