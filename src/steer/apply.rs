//! Turning a steering vector into an intervention on a loaded model.

use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::hooks::{HookPoint, Intervention};
use burn::tensor::{Tensor, TensorData};

/// `coef × values` ([d_model]) added at the hook named `hook` (TransformerLens name), from position `from_pos` on.
pub fn intervention(model: &Model, hook: &str, values: &[f32], coef: f32, from_pos: usize) -> Result<Intervention> {
    build(model, hook, values, 1, coef, from_pos)
}

/// A position-aligned (ActAdd) intervention: `values` holds k rows of d_model, row i added at position
/// `from_pos + i`.
pub fn aligned_intervention(
    model: &Model,
    hook: &str,
    values: &[f32],
    coef: f32,
    from_pos: usize,
) -> Result<Intervention> {
    let d = model.cfg().d_model;
    if values.is_empty() || !values.len().is_multiple_of(d) {
        return Err(Error::invalid(format!(
            "a position-aligned vector holds rows of d_model = {d}, but it has {} values",
            values.len()
        )));
    }
    let mut iv = build(model, hook, values, values.len() / d, coef, from_pos)?;
    iv.aligned = true;
    Ok(iv)
}

fn build(model: &Model, hook: &str, values: &[f32], rows: usize, coef: f32, from_pos: usize) -> Result<Intervention> {
    let cfg = model.cfg();
    let hook = HookPoint::parse(hook, cfg.n_layers)?;
    if values.len() != rows * cfg.d_model {
        return Err(Error::invalid(format!(
            "steering vector has {} dims but {} has d_model = {}",
            values.len(),
            model.name,
            cfg.d_model
        )));
    }
    if !coef.is_finite() {
        return Err(Error::invalid(format!("coefficient {coef} is not finite")));
    }
    let vector = Tensor::from_data(TensorData::new(values.to_vec(), [rows, cfg.d_model]), &model.net.device);
    Ok(Intervention { hook, vector, aligned: false, coef, from_pos, rows: None })
}
