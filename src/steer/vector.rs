//! A steering vector on disk: safetensors with one tensor `steering_vector` and string metadata (model, hook,
//! method, dataset, layer, ...). The tensor is [d_model], added at every position, or [k, d_model] for a
//! position-aligned ActAdd vector, row i added at position i.

use crate::error::{Error, Result};
use crate::model::weights::{SafetensorsWeights, Weights};
use crate::tensor_file::{NamedTensor, to_safetensors};
use std::collections::HashMap;

pub const TENSOR: &str = "steering_vector";

#[derive(Debug, Clone, PartialEq)]
pub struct SteeringVector {
    /// [d_model], or [k, d_model] row-major when `rows` is Some(k).
    pub values: Vec<f32>,
    /// Some(k) for a position-aligned (ActAdd) vector.
    pub rows: Option<usize>,
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
        let rows = match t.shape[..] {
            [d] if d > 0 => None,
            [k, d] if k > 0 && d > 0 => Some(k),
            _ => return Err(err(format!("shape {:?}, expected [d_model] (or [k, d_model] for ActAdd)", t.shape))),
        };
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(err(format!("element {i} is not finite")));
        }
        Ok(Self { values: t.data, rows, metadata: w.metadata() })
    }

    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let shape = match self.rows {
            None => vec![self.values.len()],
            Some(k) => vec![k, self.values.len() / k],
        };
        to_safetensors(&[NamedTensor::f32(TENSOR, shape, self.values.clone())], self.metadata.clone())
    }

    /// The [d_model] vector, or an error naming `file` for a position-aligned one, which `what` cannot take.
    pub fn single(&self, file: &str, what: &str) -> Result<&[f32]> {
        match self.rows {
            None => Ok(&self.values),
            Some(k) => Err(Error::file(
                file,
                format!("a position-aligned (ActAdd) vector of {k} rows; {what} needs one [d_model] vector"),
            )),
        }
    }

    /// The hook named in the metadata, if any.
    pub fn hook(&self) -> Option<&str> {
        self.metadata.get("hook").map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let sv = SteeringVector {
            values: vec![1.0, -2.0, 0.5],
            rows: None,
            metadata: HashMap::from([("hook".into(), "blocks.1.hook_resid_pre".into())]),
        };
        let bytes = sv.to_safetensors().unwrap();
        assert_eq!(SteeringVector::from_safetensors(&bytes, "sv.safetensors").unwrap(), sv);
        let other = to_safetensors(&[NamedTensor::f32("x", vec![2], vec![0.0; 2])], HashMap::new()).unwrap();
        let e = SteeringVector::from_safetensors(&other, "sv.safetensors").unwrap_err().to_string();
        assert!(e.starts_with("sv.safetensors: tensor `steering_vector`: missing"), "{e}");
        assert!(SteeringVector::from_safetensors(b"garbage", "sv.safetensors").is_err());
        let actadd = SteeringVector { values: vec![1.0, 2.0, 3.0, 4.0], rows: Some(2), metadata: HashMap::new() };
        let back = SteeringVector::from_safetensors(&actadd.to_safetensors().unwrap(), "a.safetensors").unwrap();
        assert_eq!(back, actadd);
        assert!(back.single("a.safetensors", "decompose").unwrap_err().to_string().contains("ActAdd"));
    }
}
