//! SAE parity with sae-lens (scripts/make_sae_fixtures.py): random standard, JumpReLU and TopK SAEs as
//! sae-lens saves them, and its encodings and reconstructions of probe vectors (the zero vector first),
//! to 1e-5 (relative to the largest value), on the CPU and on wgpu.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::*;
use std::path::PathBuf;
use steerlab::device::read;
use steerlab::model::Model;
use steerlab::sae::Sae;

fn sae_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes").join(name)
}

#[test]
fn encodings_match_sae_lens() {
    for (dev_name, device) in devices() {
        for name in ["standard", "jumprelu", "topk"] {
            let exp = Expected::from_file(&sae_dir(name).join("expected.safetensors"));
            let sae = Sae::from_dir(&sae_dir(name), &device).unwrap();
            let probes = exp.f32("probes");
            let n = probes.len() / sae.cfg.d_in;
            let x = Tensor::<2>::from_data(TensorData::new(probes, [n, sae.cfg.d_in]), &device);
            let acts = sae.encode(x);
            let rec = sae.decode(acts.clone());
            let acts = pollster::block_on(read(acts)).unwrap();
            let rec = pollster::block_on(read(rec)).unwrap();
            let want = exp.f32("feature_acts");
            let fired = |a: &[f32]| a.iter().map(|&v| v > 0.0).collect::<Vec<_>>();
            assert_eq!(fired(&acts.data), fired(&want), "{name} on {dev_name}: a different set of features fired");
            let d = rel_diff(&acts.data, &want);
            assert!(d <= 1e-5, "{name} on {dev_name}: feature acts differ by {d} (relative)");
            let d = rel_diff(&rec.data, &exp.f32("reconstruction"));
            assert!(d <= 1e-5, "{name} on {dev_name}: reconstruction differs by {d} (relative)");
        }
    }
}

#[test]
fn sae_fits_the_fixture_model_or_says_why() {
    let cpu = burn::tensor::Device::flex();
    let model = Model::from_dir(&model_dir("gpt2-tiny"), &cpu).unwrap();
    let sae = Sae::from_dir(&sae_dir("standard"), &cpu).unwrap();
    assert_eq!(sae.check_fits(model.cfg()).unwrap().to_string(), "blocks.1.hook_resid_pre");
}
