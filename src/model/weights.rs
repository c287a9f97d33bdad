//! safetensors → host f32 tensors. f32, f16 and bf16 files are all computed in f32.

use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};

/// A tensor in host memory, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// Where a model's weights come from: a checkpoint, or random numbers for benchmarks.
pub trait Weights {
    /// The tensor `name` (without any prefix), checked to have `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor>;
    /// Whether the tensor exists (under any accepted prefix).
    fn has(&self, name: &str) -> bool;
}

/// A parsed safetensors file. Keys are looked up bare and under each of `prefixes`
/// (`transformer.` for GPT-2, `gpt_neox.` for NeoX); tensors it does not ask for are ignored.
pub struct SafetensorsWeights<'a> {
    file: String,
    st: SafeTensors<'a>,
    metadata: std::collections::HashMap<String, String>,
    prefixes: &'static [&'static str],
}

impl<'a> SafetensorsWeights<'a> {
    pub fn parse(bytes: &'a [u8], file: &str, prefixes: &'static [&'static str]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::file(file, format!("not a valid safetensors file (truncated or corrupt?): {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).expect("the header was just parsed");
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(Self { file: file.to_string(), st, metadata, prefixes })
    }

    fn find(&self, name: &str) -> Option<safetensors::tensor::TensorView<'a>> {
        std::iter::once(String::new())
            .chain(self.prefixes.iter().map(|p| p.to_string()))
            .find_map(|p| self.st.tensor(&format!("{p}{name}")).ok())
    }

    /// The tensor `name` whatever its shape.
    pub fn get_any(&self, name: &str) -> Result<HostTensor> {
        let view = self.find(name).ok_or_else(|| self.err(name, "missing"))?;
        let data = decode(view.dtype(), view.data()).map_err(|m| self.err(name, m))?;
        Ok(HostTensor::new(view.shape().to_vec(), data))
    }

    /// The file's string metadata (empty when it has none).
    pub fn metadata(&self) -> std::collections::HashMap<String, String> {
        self.metadata.clone()
    }

    fn err(&self, tensor: &str, msg: impl std::fmt::Display) -> Error {
        Error::Tensor { file: self.file.clone(), tensor: tensor.to_string(), msg: msg.to_string() }
    }
}

impl Weights for SafetensorsWeights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let view = self.find(name).ok_or_else(|| self.err(name, "missing"))?;
        if view.shape() != shape {
            return Err(self.err(name, format!("shape {:?}, expected {:?}", view.shape(), shape)));
        }
        let data = decode(view.dtype(), view.data()).map_err(|m| self.err(name, m))?;
        Ok(HostTensor::new(shape.to_vec(), data))
    }

    fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

/// Little-endian bytes of `dtype` → f32.
pub fn decode(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let words = |n: usize| bytes.chunks_exact(n);
    Ok(match dtype {
        Dtype::F32 => words(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => words(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => words(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::F64 => words(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect(),
        other => return Err(format!("unsupported dtype {other:?} (expected F32, F16, BF16 or F64)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn file(dtype: Dtype, bytes: &[u8], shape: Vec<usize>) -> Vec<u8> {
        let view = TensorView::new(dtype, shape, bytes).unwrap();
        safetensors::serialize([("transformer.w", view)], None).unwrap()
    }

    #[test]
    fn reads_half_precisions_and_prefixes() {
        let vals = [1.5f32, -2.25, 0.0];
        let f16: Vec<u8> = vals.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        let bf16: Vec<u8> = vals.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect();
        for (dt, b) in [(Dtype::F16, f16), (Dtype::BF16, bf16)] {
            let bytes = file(dt, &b, vec![3]);
            let w = SafetensorsWeights::parse(&bytes, "m.safetensors", &["transformer."]).unwrap();
            assert_eq!(w.get("w", &[3]).unwrap().data, vals);
        }
    }

    #[test]
    fn errors_name_file_and_tensor() {
        let bytes = file(Dtype::F32, &[0u8; 8], vec![2]);
        let w = SafetensorsWeights::parse(&bytes, "m.safetensors", &["transformer."]).unwrap();
        assert_eq!(w.get("w", &[3]).unwrap_err().to_string(), "m.safetensors: tensor `w`: shape [2], expected [3]");
        assert_eq!(w.get("v", &[2]).unwrap_err().to_string(), "m.safetensors: tensor `v`: missing");
        let ints = file(Dtype::I32, &[0u8; 8], vec![2]);
        let w = SafetensorsWeights::parse(&ints, "m.safetensors", &["transformer."]).unwrap();
        assert!(w.get("w", &[2]).unwrap_err().to_string().contains("unsupported dtype I32"));
        let truncated = &bytes[..bytes.len() - 3];
        let e = SafetensorsWeights::parse(truncated, "m.safetensors", &[]).err().unwrap();
        assert!(e.to_string().starts_with("m.safetensors: not a valid safetensors file"), "{e}");
    }
}
