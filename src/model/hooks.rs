//! Hook points named as TransformerLens names them, and what a caller does at them: capture the
//! activation, or add a vector to it.

#[cfg(feature = "engine")]
use super::layers::index_tensor;
use crate::error::{Error, Result};
#[cfg(feature = "engine")]
use burn::tensor::{Tensor, TensorData};
use std::fmt;

/// A point in the residual stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    /// `blocks.{L}.hook_resid_pre`: the input of block L.
    ResidPre(usize),
    /// `blocks.{L}.hook_resid_mid`: resid_pre + attention output (for parallel-residual NeoX blocks,
    /// whose MLP reads resid_pre, this is the same sum; the MLP output is added after it).
    ResidMid(usize),
    /// `blocks.{L}.hook_resid_post`: the output of block L (equal to resid_pre of block L + 1).
    ResidPost(usize),
    /// `ln_final.hook_normalized`: the final layer norm's output, the unembedding's input.
    LnFinal,
}

impl HookPoint {
    /// Parses a TransformerLens name, checking the layer against `n_layers`.
    pub fn parse(name: &str, n_layers: usize) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "unknown hook `{name}`: expected blocks.{{L}}.hook_resid_pre, blocks.{{L}}.hook_resid_mid, \
                 blocks.{{L}}.hook_resid_post (0 <= L < {n_layers}) or ln_final.hook_normalized"
            ))
        };
        if name == "ln_final.hook_normalized" {
            return Ok(Self::LnFinal);
        }
        let rest = name.strip_prefix("blocks.").ok_or_else(bad)?;
        let (layer, kind) = rest.split_once('.').ok_or_else(bad)?;
        let layer: usize = layer.parse().map_err(|_| bad())?;
        if layer >= n_layers {
            return Err(bad());
        }
        match kind {
            "hook_resid_pre" => Ok(Self::ResidPre(layer)),
            "hook_resid_mid" => Ok(Self::ResidMid(layer)),
            "hook_resid_post" => Ok(Self::ResidPost(layer)),
            _ => Err(bad()),
        }
    }

    /// Where the point comes in a forward pass: later points have larger depths.
    pub fn depth(&self) -> usize {
        match self {
            Self::ResidPre(l) => 3 * l,
            Self::ResidMid(l) => 3 * l + 1,
            Self::ResidPost(l) => 3 * l + 2,
            Self::LnFinal => usize::MAX,
        }
    }

    /// Every hook point of a model with `n_layers` blocks, in forward order.
    pub fn all(n_layers: usize) -> Vec<Self> {
        (0..n_layers)
            .flat_map(|l| [Self::ResidPre(l), Self::ResidMid(l), Self::ResidPost(l)])
            .chain([Self::LnFinal])
            .collect()
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResidPre(l) => write!(f, "blocks.{l}.hook_resid_pre"),
            Self::ResidMid(l) => write!(f, "blocks.{l}.hook_resid_mid"),
            Self::ResidPost(l) => write!(f, "blocks.{l}.hook_resid_post"),
            Self::LnFinal => write!(f, "ln_final.hook_normalized"),
        }
    }
}

/// Adds `coef × vector` at `hook`: a [1, d_model] vector at every absolute position `>= from_pos`, or, when
/// `aligned` (ActAdd), a [k, d_model] one whose row i goes to position `from_pos + i` only. In a batch it goes
/// to every row, or, with `rows`, × rows[b] to row b.
#[cfg(feature = "engine")]
#[derive(Clone, Debug)]
pub struct Intervention {
    pub hook: HookPoint,
    pub vector: Tensor<2>,
    pub aligned: bool,
    pub coef: f32,
    pub from_pos: usize,
    /// A factor per batch row (0 leaves a row alone); None: 1 for every row.
    pub rows: Option<Vec<f32>>,
}

#[cfg(feature = "engine")]
impl Intervention {
    /// What this adds to positions `start..start + s`: [1 or b, s, d] (or [1 or b, 1, d] to broadcast), or
    /// nothing.
    fn delta(&self, start: usize, s: usize) -> Option<Tensor<3>> {
        let delta = self.delta_all_rows(start, s)?;
        match &self.rows {
            None => Some(delta),
            Some(rows) => {
                let factors =
                    Tensor::<3>::from_data(TensorData::new(rows.clone(), [rows.len(), 1, 1]), &delta.device());
                Some(delta * factors) // [b, s or 1, d]
            }
        }
    }

    fn delta_all_rows(&self, start: usize, s: usize) -> Option<Tensor<3>> {
        let [k, d] = self.vector.dims();
        let scaled = || self.vector.clone() * self.coef;
        let device = self.vector.device();
        if !self.aligned {
            return if self.from_pos <= start {
                Some(scaled().unsqueeze::<3>()) // [1, 1, d]
            } else if self.from_pos < start + s {
                let keep: Vec<f32> = (start..start + s).map(|p| if p >= self.from_pos { 1.0 } else { 0.0 }).collect();
                let keep = Tensor::<3>::from_data(TensorData::new(keep, [1, s, 1]), &device);
                Some(scaled().unsqueeze::<3>() * keep)
            } else {
                None
            };
        }
        // The rows that land in this window, zero-padded to its length.
        let (lo, hi) = (start.max(self.from_pos), (start + s).min(self.from_pos + k));
        if lo >= hi {
            return None;
        }
        let mut parts = Vec::new();
        if lo > start {
            parts.push(Tensor::<2>::zeros([lo - start, d], &device));
        }
        parts.push(scaled().slice([lo - self.from_pos..hi - self.from_pos, 0..d]));
        if start + s > hi {
            parts.push(Tensor::<2>::zeros([start + s - hi, d], &device));
        }
        Some(Tensor::cat(parts, 0).unsqueeze::<3>()) // [1, s, d]
    }
}

/// One batch row's share of a `RowSteering`: `coef × vectors[vector]` at positions `>= from_pos`.
#[cfg(feature = "engine")]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowAdd {
    pub vector: usize,
    pub coef: f32,
    pub from_pos: usize,
}

/// Different steering for each row of a batch at one hook: row b adds `rows[b]` (nothing when None). One
/// gather of the stacked vectors serves the whole batch, so a steerability grid (vectors × multipliers × items)
/// is one pass.
#[cfg(feature = "engine")]
#[derive(Clone, Debug)]
pub struct RowSteering {
    pub hook: HookPoint,
    /// [n, d_model]
    pub vectors: Tensor<2>,
    pub rows: Vec<Option<RowAdd>>,
}

#[cfg(feature = "engine")]
impl RowSteering {
    /// [b, 1, d] (or [b, s, d] when some row starts inside the window), or nothing.
    fn delta(&self, start: usize, s: usize) -> Option<Tensor<3>> {
        let active = |r: &Option<RowAdd>| r.filter(|a| a.coef != 0.0 && a.from_pos < start + s);
        if !self.rows.iter().any(|r| active(r).is_some()) {
            return None;
        }
        let b = self.rows.len();
        let [_, d] = self.vectors.dims();
        let device = self.vectors.device();
        let which: Vec<usize> = self.rows.iter().map(|r| r.map_or(0, |a| a.vector)).collect();
        let coefs: Vec<f32> = self.rows.iter().map(|r| active(r).map_or(0.0, |a| a.coef)).collect();
        let coefs = Tensor::<2>::from_data(TensorData::new(coefs, [b, 1]), &device);
        let per_row = (self.vectors.clone().select(0, index_tensor(&which, &device)) * coefs).reshape([b, 1, d]);
        if self.rows.iter().all(|r| r.is_none_or(|a| a.from_pos <= start)) {
            return Some(per_row); // [b, 1, d]
        }
        let from = |r: &Option<RowAdd>| r.map_or(0, |a| a.from_pos);
        let keep: Vec<f32> = self
            .rows
            .iter()
            .flat_map(|r| (start..start + s).map(move |p| if p >= from(r) { 1.0 } else { 0.0 }))
            .collect();
        let keep = Tensor::<3>::from_data(TensorData::new(keep, [b, s, 1]), &device);
        Some(per_row * keep) // [b, s, d]
    }
}

/// What one forward pass does at its hook points: the interventions to apply (to every row, and per row), the
/// hooks to capture and, after the pass, the captured activations ([batch, seq, d_model] each, after any
/// intervention).
#[cfg(feature = "engine")]
#[derive(Default)]
pub struct Hooks {
    pub interventions: Vec<Intervention>,
    pub rows: Vec<RowSteering>,
    pub capture: Vec<HookPoint>,
    pub captured: Vec<(HookPoint, Tensor<3>)>,
}

#[cfg(feature = "engine")]
impl Hooks {
    pub fn capturing(points: impl IntoIterator<Item = HookPoint>) -> Self {
        Self { capture: points.into_iter().collect(), ..Default::default() }
    }

    pub fn steering(interventions: Vec<Intervention>) -> Self {
        Self { interventions, ..Default::default() }
    }

    /// Checks every vector has the model's width and every per-row list the batch's row count.
    pub fn check(&self, d_model: usize, batch: usize) -> Result<()> {
        let widths = self.interventions.iter().map(|iv| (iv.hook, iv.vector.dims()[1]));
        for (hook, n) in widths.chain(self.rows.iter().map(|r| (r.hook, r.vectors.dims()[1]))) {
            if n != d_model {
                return Err(Error::invalid(format!(
                    "steering vector for {hook} has {n} dims but the model's d_model is {d_model}"
                )));
            }
        }
        let counts = self.interventions.iter().filter_map(|iv| iv.rows.as_ref().map(Vec::len));
        if let Some(n) = counts.chain(self.rows.iter().map(|r| r.rows.len())).find(|&n| n != batch) {
            return Err(Error::invalid(format!("per-row steering for {n} rows, but the batch has {batch}")));
        }
        if let Some(r) = self.rows.iter().find(|r| r.rows.iter().flatten().any(|a| a.vector >= r.vectors.dims()[0])) {
            return Err(Error::invalid(format!("per-row steering at {} names a vector it does not have", r.hook)));
        }
        Ok(())
    }

    /// Runs hook `point` on `x` [b, s, d] whose first position is `start`.
    pub fn run(&mut self, point: HookPoint, mut x: Tensor<3>, start: usize) -> Tensor<3> {
        let [_, s, _] = x.dims();
        for iv in self.interventions.iter().filter(|iv| iv.hook == point) {
            if let Some(delta) = iv.delta(start, s) {
                x = x + delta;
            }
        }
        for rs in self.rows.iter().filter(|r| r.hook == point) {
            if let Some(delta) = rs.delta(start, s) {
                x = x + delta;
            }
        }
        if self.capture.contains(&point) {
            self.captured.push((point, x.clone()));
        }
        x
    }

    /// Takes the captured activation at `point`, if any.
    pub fn take(&mut self, point: HookPoint) -> Option<Tensor<3>> {
        let i = self.captured.iter().position(|(p, _)| *p == point)?;
        Some(self.captured.remove(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in HookPoint::all(3) {
            assert_eq!(HookPoint::parse(&p.to_string(), 3).unwrap(), p);
        }
        assert!(HookPoint::parse("blocks.3.hook_resid_pre", 3).is_err());
        assert!(HookPoint::parse("blocks.x.hook_resid_pre", 3).is_err());
        assert!(HookPoint::parse("blocks.0.hook_attn_out", 3).unwrap_err().to_string().contains("unknown hook"));
    }

    /// Position-aligned rows land on their own positions, whichever window of a cached pass sees them.
    #[test]
    fn aligned_rows_land_on_their_positions() {
        let device = burn::tensor::Device::flex();
        let vector = Tensor::<2>::from_data(TensorData::new(vec![1.0, 2.0, 3.0], [3, 1]), &device);
        let iv =
            Intervention { hook: HookPoint::ResidPre(0), vector, aligned: true, coef: 2.0, from_pos: 1, rows: None };
        let read = |t: Option<Tensor<3>>| t.map(|t| pollster::block_on(crate::device::read(t)).unwrap().data);
        assert_eq!(read(iv.delta(0, 6)), Some(vec![0.0, 2.0, 4.0, 6.0, 0.0, 0.0]));
        assert_eq!(read(iv.delta(2, 1)), Some(vec![4.0]));
        assert_eq!(read(iv.delta(3, 2)), Some(vec![6.0, 0.0]));
        assert_eq!(read(iv.delta(4, 3)), None);
        let all = Intervention { aligned: false, from_pos: 2, vector: iv.vector.clone().slice([0..1, 0..1]), ..iv };
        assert_eq!(read(all.delta(0, 4)), Some(vec![0.0, 0.0, 2.0, 2.0]));
        assert_eq!(read(all.delta(5, 1)), Some(vec![2.0]));
    }
}
