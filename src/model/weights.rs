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

    /// Bytes the tensor `name` takes in the file (0 if absent).
    pub fn stored_bytes(&self, name: &str) -> u64 {
        self.find(name).map_or(0, |v| v.data().len() as u64)
    }

    /// Bytes of all the file's tensors.
    pub fn total_bytes(&self) -> u64 {
        self.st.tensors().iter().map(|(_, v)| v.data().len() as u64).sum()
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

/// A checkpoint split over several safetensors files, as the hub shards large models: each tensor is read
/// from the shard that holds it. Optionally reports the bytes read so far (multi-GB loads take a while).
pub struct ShardedWeights<'a> {
    /// Names the checkpoint in "missing" errors.
    label: String,
    shards: Vec<SafetensorsWeights<'a>>,
    report: Option<&'a dyn Fn(u64, u64)>,
    done: std::cell::Cell<u64>,
}

impl<'a> ShardedWeights<'a> {
    pub fn new(label: &str, shards: Vec<SafetensorsWeights<'a>>) -> Self {
        Self { label: label.to_string(), shards, report: None, done: Default::default() }
    }

    /// Calls `report(read, total)` after each tensor read: bytes of the files' tensors (buffers such as GPT-2's
    /// causal masks are never read, so `read` may end short of `total`).
    pub fn reporting(mut self, report: &'a dyn Fn(u64, u64)) -> Self {
        self.report = Some(report);
        self
    }
}

impl Weights for ShardedWeights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        match self.shards.iter().find(|s| s.has(name)) {
            Some(shard) => {
                let t = shard.get(name, shape)?;
                if let Some(report) = self.report {
                    self.done.set(self.done.get() + shard.stored_bytes(name));
                    report(self.done.get(), self.shards.iter().map(SafetensorsWeights::total_bytes).sum());
                }
                Ok(t)
            }
            None => Err(Error::Tensor { file: self.label.clone(), tensor: name.to_string(), msg: "missing".into() }),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.shards.iter().any(|s| s.has(name))
    }
}

/// The shard files `model.safetensors.index.json` lists, each once, in order; `file` names it in errors.
/// Only bare file names are accepted: an index must not reach outside its model's folder.
pub fn shard_files(index_json: &str, file: &str) -> Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_str(index_json).map_err(|e| Error::file(file, format!("not valid JSON: {e}")))?;
    let map =
        v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::file(file, "no `weight_map` object"))?;
    let mut files: Vec<String> = Vec::new();
    for (tensor, shard) in map {
        let name = shard
            .as_str()
            .filter(|n| !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\']))
            .ok_or_else(|| Error::file(file, format!("tensor `{tensor}` maps to {shard}, not a file name")))?;
        if !files.iter().any(|f| f == name) {
            files.push(name.to_string());
        }
    }
    if files.is_empty() {
        return Err(Error::file(file, "`weight_map` lists no tensors"));
    }
    files.sort();
    Ok(files)
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
    fn shards_are_read_where_they_hold_each_tensor() {
        let a = safetensors::serialize(
            [("model.a", TensorView::new(Dtype::F32, vec![1], &[0, 0, 128, 63]).unwrap())],
            None,
        )
        .unwrap();
        let b =
            safetensors::serialize([("model.b", TensorView::new(Dtype::F32, vec![1], &[0, 0, 0, 64]).unwrap())], None)
                .unwrap();
        let shards = vec![
            SafetensorsWeights::parse(&a, "a.safetensors", &["model."]).unwrap(),
            SafetensorsWeights::parse(&b, "b.safetensors", &["model."]).unwrap(),
        ];
        let w = ShardedWeights::new("m/model-*.safetensors", shards);
        assert_eq!((w.get("a", &[1]).unwrap().data, w.get("b", &[1]).unwrap().data), (vec![1.0], vec![2.0]));
        assert_eq!(w.get("c", &[1]).unwrap_err().to_string(), "m/model-*.safetensors: tensor `c`: missing");
        assert_eq!(w.get("b", &[2]).unwrap_err().to_string(), "b.safetensors: tensor `b`: shape [1], expected [2]");
    }

    #[test]
    fn index_lists_each_shard_once_and_stays_in_its_folder() {
        let index = r#"{"weight_map":{"x":"model-00002-of-00002.safetensors","y":"model-00001-of-00002.safetensors",
            "z":"model-00002-of-00002.safetensors"}}"#;
        assert_eq!(
            shard_files(index, "i").unwrap(),
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        );
        for bad in [
            r#"{"weight_map":{"x":"../secret"}}"#,
            r#"{"weight_map":{"x":"/etc/passwd"}}"#,
            r#"{"weight_map":{"x":3}}"#,
        ] {
            assert!(shard_files(bad, "i").unwrap_err().to_string().contains("not a file name"), "{bad}");
        }
        assert!(shard_files("{}", "i").unwrap_err().to_string().contains("no `weight_map`"));
        assert!(shard_files(r#"{"weight_map":{}}"#, "i").unwrap_err().to_string().contains("lists no tensors"));
        assert!(shard_files("{", "i").unwrap_err().to_string().starts_with("i: not valid JSON"));
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
