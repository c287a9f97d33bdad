//! Writing named tensors (f32 and i64) to safetensors, for traces and steering vectors.

use crate::error::{Error, Result};
use safetensors::{Dtype, tensor::TensorView};
use std::collections::HashMap;

pub enum TensorValues {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: TensorValues,
}

impl NamedTensor {
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self { name: name.into(), shape, values: TensorValues::F32(data) }
    }
    pub fn i64(name: impl Into<String>, shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self { name: name.into(), shape, values: TensorValues::I64(data) }
    }
}

/// Serialises tensors and string metadata into safetensors bytes.
pub fn to_safetensors(tensors: &[NamedTensor], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<(Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|t| match &t.values {
            TensorValues::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TensorValues::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, (dtype, b))| {
            TensorView::new(*dtype, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::invalid(format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = if metadata.is_empty() { None } else { Some(metadata) };
    safetensors::serialize(views, meta).map_err(|e| Error::invalid(format!("writing safetensors: {e}")))
}
