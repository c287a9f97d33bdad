//! A steering vector on disk: safetensors with one tensor `steering_vector` [d_model] and string
//! metadata (model, hook, method, dataset, layer, ...).

use crate::error::{Error, Result};
use crate::model::weights::{SafetensorsWeights, Weights};
use crate::tensor_file::{NamedTensor, to_safetensors};
use std::collections::HashMap;

pub const TENSOR: &str = "steering_vector";

#[derive(Debug, Clone, PartialEq)]
pub struct SteeringVector {
    pub values: Vec<f32>,
    pub metadata: HashMap<String, String>,
}

impl SteeringVector {
    /// Parses a steering-vector file; `file` names it in errors.
    pub fn from_safetensors(bytes: &[u8], file: &str) -> Result<Self> {
        let w = SafetensorsWeights::parse(bytes, file, &[])?;
        let err = |msg: String| Error::Tensor { file: file.into(), tensor: TENSOR.into(), msg };
        if !w.has(TENSOR) {
            return Err(err("missing (a steering-vector file holds one tensor `steering_vector` [d_model])".into()));
        }
        let t = w.get_any(TENSOR)?;
        if t.shape.len() != 1 || t.shape[0] == 0 {
            return Err(err(format!("shape {:?}, expected one non-empty dimension [d_model]", t.shape)));
        }
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(err(format!("element {i} is not finite")));
        }
        Ok(Self { values: t.data, metadata: w.metadata() })
    }

    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        to_safetensors(&[NamedTensor::f32(TENSOR, vec![self.values.len()], self.values.clone())], self.metadata.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let sv = SteeringVector {
            values: vec![1.0, -2.0, 0.5],
            metadata: HashMap::from([("hook".into(), "blocks.1.hook_resid_pre".into())]),
        };
        let bytes = sv.to_safetensors().unwrap();
        assert_eq!(SteeringVector::from_safetensors(&bytes, "sv.safetensors").unwrap(), sv);
        let other = to_safetensors(&[NamedTensor::f32("x", vec![2], vec![0.0; 2])], HashMap::new()).unwrap();
        let e = SteeringVector::from_safetensors(&other, "sv.safetensors").unwrap_err().to_string();
        assert!(e.starts_with("sv.safetensors: tensor `steering_vector`: missing"), "{e}");
        assert!(SteeringVector::from_safetensors(b"garbage", "sv.safetensors").is_err());
    }
}
