//! Shared helpers for the parity tests: fixture paths, devices and reading expected tensors.
#![allow(dead_code)]

use burn::tensor::Device;
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;
use steerlab::device::{DeviceChoice, init_device};

pub const MODELS: &[&str] =
    &["gpt2-tiny", "gpt2-tiny-bf16-prefixed", "pythia-tiny-f16-parallel", "pythia-tiny-f32-sequential"];

pub fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models").join(name)
}

/// The devices to test on: always the CPU; wgpu when an adapter exists. With
/// STEERLAB_REQUIRE_WGPU=1 (as in CI) a missing adapter fails instead of being skipped.
pub fn devices() -> Vec<(&'static str, Device)> {
    let mut out = vec![("cpu", pollster::block_on(init_device(DeviceChoice::Cpu)).unwrap())];
    match pollster::block_on(init_device(DeviceChoice::Wgpu)) {
        Ok(d) => out.push(("wgpu", d)),
        Err(e) if std::env::var("STEERLAB_REQUIRE_WGPU").as_deref() == Ok("1") => panic!("wgpu required: {e}"),
        Err(e) => eprintln!("skipping wgpu: {e}"),
    }
    out
}

pub struct Expected {
    bytes: Vec<u8>,
}

impl Expected {
    pub fn load(model: &str) -> Self {
        Self::from_file(&model_dir(model).join("expected.safetensors"))
    }

    pub fn from_file(path: &std::path::Path) -> Self {
        Self { bytes: std::fs::read(path).unwrap() }
    }

    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }

    pub fn meta(&self, key: &str) -> String {
        let (_, m) = SafeTensors::read_metadata(&self.bytes).unwrap();
        m.metadata().as_ref().unwrap()[key].clone()
    }

    pub fn prompts(&self) -> Vec<String> {
        serde_json::from_str(&self.meta("prompts")).unwrap()
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("expected tensor {name}"));
        assert_eq!(t.dtype(), Dtype::F32);
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("expected tensor {name}"));
        assert_eq!(t.dtype(), Dtype::I64);
        t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn u32(&self, name: &str) -> Vec<u32> {
        self.i64(name).into_iter().map(|x| x as u32).collect()
    }
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Largest absolute difference relative to the reference's largest magnitude.
pub fn rel_diff(a: &[f32], reference: &[f32]) -> f32 {
    let scale = reference.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(f32::MIN_POSITIVE);
    max_abs_diff(a, reference) / scale
}

/// logsumexp of each row of a [rows, cols] matrix.
pub fn logsumexp_rows(x: &[f32], cols: usize) -> Vec<f32> {
    x.chunks(cols)
        .map(|r| {
            let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            m + r.iter().map(|v| ((v - m) as f64).exp()).sum::<f64>().ln() as f32
        })
        .collect()
}

/// Picks columns `ids` of each row of a [rows, cols] matrix.
pub fn pick_cols(x: &[f32], cols: usize, ids: &[i64]) -> Vec<f32> {
    x.chunks(cols).flat_map(|r| ids.iter().map(move |&i| r[i as usize])).collect()
}
