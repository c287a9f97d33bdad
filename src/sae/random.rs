//! A random SAE of any size, for benchmarks at full size without a download (the bench flows write it as a file;
//! the browser bench builds it in the worker).

use super::Sae;
use super::config::SaeConfig;
use crate::error::{Error, Result};
use crate::model::layers::transpose;
use crate::model::weights::{HostTensor, Weights};
use crate::tensor_file::{NamedTensor, to_safetensors};
use burn::tensor::Device;
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// Random weights in SAELens's names: unit-norm decoder rows, the encoder their transpose (SAELens's
/// initialisation), a small negative encoder bias so that some features fire on each activation, and zero decoder
/// bias and JumpReLU thresholds.
pub struct RandomSae {
    d_in: usize,
    d_sae: usize,
    w_dec: Vec<f32>, // [d_sae, d_in]
    b_enc: Vec<f32>, // [d_sae]
}

impl RandomSae {
    pub fn new(d_in: usize, d_sae: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w_dec: Vec<f32> = (0..d_sae * d_in).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        for row in w_dec.chunks_mut(d_in.max(1)) {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|v| *v /= n);
        }
        let b_enc = (0..d_sae).map(|_| rng.random_range(-0.05f32..0.0)).collect();
        Self { d_in, d_sae, w_dec, b_enc }
    }

    /// The weights as a `sae_weights.safetensors` file.
    pub fn safetensors(&self) -> Result<Vec<u8>> {
        let tensors: Vec<NamedTensor> = ["W_enc", "b_enc", "W_dec", "b_dec"]
            .into_iter()
            .filter_map(|name| self.tensor(name).map(|t| NamedTensor::f32(name, t.shape, t.data)))
            .collect();
        to_safetensors(&tensors, Default::default())
    }

    /// The tensor `name` in its own shape, if an SAE has it.
    fn tensor(&self, name: &str) -> Option<HostTensor> {
        let (d_in, d_sae) = (self.d_in, self.d_sae);
        let w_dec = || HostTensor::new(vec![d_sae, d_in], self.w_dec.clone());
        Some(match name {
            "W_dec" => w_dec(),
            "W_enc" => transpose(w_dec()),
            "b_enc" => HostTensor::new(vec![d_sae], self.b_enc.clone()),
            "threshold" => HostTensor::new(vec![d_sae], vec![0.0; d_sae]),
            "b_dec" => HostTensor::new(vec![d_in], vec![0.0; d_in]),
            _ => return None,
        })
    }
}

impl Weights for RandomSae {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let err = |msg: String| Error::Tensor { file: "random SAE".into(), tensor: name.into(), msg };
        let t = self.tensor(name).ok_or_else(|| err("missing".into()))?;
        if t.shape != shape {
            return Err(err(format!("shape {:?}, expected {shape:?}", t.shape)));
        }
        Ok(t)
    }

    fn has(&self, name: &str) -> bool {
        matches!(name, "W_enc" | "W_dec" | "b_enc" | "b_dec" | "threshold")
    }
}

impl Sae {
    /// An SAE of `cfg`'s sizes and architecture with `RandomSae`'s weights.
    pub fn random(name: &str, cfg: SaeConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.check_sizes(name)?;
        let weights = RandomSae::new(cfg.d_in, cfg.d_sae, seed);
        Self::from_weights(name, cfg, &weights, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::weights::SafetensorsWeights;

    #[test]
    fn the_file_holds_what_the_weights_give_and_the_encoder_is_the_decoders_transpose() {
        let (d_in, d_sae) = (3, 5);
        let random = RandomSae::new(d_in, d_sae, 7);
        let bytes = random.safetensors().unwrap();
        let file = SafetensorsWeights::parse(&bytes, "sae_weights.safetensors", &[]).unwrap();
        let w_dec = file.get("W_dec", &[d_sae, d_in]).unwrap().data;
        let w_enc = file.get("W_enc", &[d_in, d_sae]).unwrap().data;
        for f in 0..d_sae {
            let row = &w_dec[f * d_in..(f + 1) * d_in];
            assert!((row.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5, "row {f} is not unit-norm");
            for i in 0..d_in {
                assert_eq!(w_enc[i * d_sae + f], row[i]);
            }
        }
        let b_enc = file.get("b_enc", &[d_sae]).unwrap().data;
        assert!(b_enc.iter().all(|b| (-0.05..=0.0).contains(b)), "{b_enc:?}");
        assert_eq!(b_enc, random.get("b_enc", &[d_sae]).unwrap().data);
        // A wrong shape or name is an error, not a panic.
        assert!(random.get("W_enc", &[d_sae, d_in]).unwrap_err().to_string().contains("shape"));
        assert!(random.get("W_gate", &[1]).is_err());
        // The same seed gives the same SAE; another seed another.
        assert_eq!(RandomSae::new(d_in, d_sae, 7).safetensors().unwrap(), bytes);
        assert_ne!(RandomSae::new(d_in, d_sae, 8).safetensors().unwrap(), bytes);
    }

    #[test]
    fn a_random_sae_fires_the_feature_whose_decoder_row_it_is_given() {
        use crate::device::read;
        use burn::tensor::{Tensor, TensorData};
        let (d_in, d_sae) = (16, 64);
        let json = format!(
            r#"{{"architecture":"standard","d_in":{d_in},"d_sae":{d_sae},"hook_name":"blocks.0.hook_resid_pre"}}"#
        );
        let cfg = SaeConfig::from_json(&json, "cfg.json").unwrap();
        let sae = Sae::random("random", cfg, 7, &Device::flex()).unwrap();
        let row =
            RandomSae::new(d_in, d_sae, 7).get("W_dec", &[d_sae, d_in]).unwrap().data[5 * d_in..6 * d_in].to_vec();
        // 3 × a unit decoder row: its own feature reads 3 + a bias in (−0.05, 0], above every other feature, which
        // reads 3 × the cosine of two random directions.
        let x =
            Tensor::<2>::from_data(TensorData::new(row.iter().map(|v| 3.0 * v).collect(), [1, d_in]), &Device::flex());
        let acts = pollster::block_on(read(sae.encode(x))).unwrap().data;
        let best = (0..d_sae).max_by(|&a, &b| acts[a].total_cmp(&acts[b])).unwrap();
        assert_eq!(best, 5, "{acts:?}");
        assert!((acts[5] - 3.0).abs() < 0.06, "{}", acts[5]);
        assert!(acts.iter().filter(|&&a| a > 0.0).count() > 1, "only one feature fires: {acts:?}");
    }
}
