//! Turning a steering vector into an intervention on a loaded model.

use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::hooks::{HookPoint, Intervention};
use burn::tensor::{Tensor, TensorData};

/// `coef × values` added at the hook named `hook` (TransformerLens name), from position `from_pos` on.
pub fn intervention(model: &Model, hook: &str, values: &[f32], coef: f32, from_pos: usize) -> Result<Intervention> {
    let cfg = model.cfg();
    let hook = HookPoint::parse(hook, cfg.n_layers)?;
    if values.len() != cfg.d_model {
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
    let vector = Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &model.net.device);
    Ok(Intervention { hook, vector, coef, from_pos })
}
