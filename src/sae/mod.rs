//! Sparse autoencoders in the SAELens layout (`cfg.json` + `sae_weights.safetensors`): loading,
//! encode and decode on any device.

pub mod config;
#[cfg(feature = "engine")]
pub mod decompose;
pub mod edit;
pub mod fidelity;
#[cfg(feature = "engine")]
pub mod random;
pub mod releases;

#[cfg(feature = "engine")]
use {
    crate::device::read,
    crate::error::{Error, Result},
    crate::model::config::ModelConfig,
    crate::model::hooks::HookPoint,
    crate::model::layers::{index_tensor, row_tensor, transpose, upload},
    crate::model::weights::{HostTensor, SafetensorsWeights, Weights},
    burn::tensor::{Device, IndexingUpdateOp, Tensor, activation},
    config::{Normalize, SaeArch, SaeConfig},
};

#[cfg(feature = "engine")]
pub struct Sae {
    /// Labels the SAE in outputs (its directory or file).
    pub name: String,
    pub cfg: SaeConfig,
    pub w_enc: Tensor<2>, // [d_in, d_sae]
    pub b_enc: Tensor<1>, // [d_sae]
    pub w_dec: Tensor<2>, // [d_sae, d_in]
    pub b_dec: Tensor<1>, // [d_in]
    /// JumpReLU thresholds [d_sae].
    pub threshold: Option<Tensor<1>>,
}

#[cfg(feature = "engine")]
impl Sae {
    /// Loads from the contents of `cfg.json` and `sae_weights.safetensors`; `name` labels errors.
    pub fn from_files(name: &str, cfg_json: &str, weights: &[u8], device: &Device) -> Result<Self> {
        let cfg = SaeConfig::from_json(cfg_json, &format!("{name}/cfg.json"))?;
        let w = SafetensorsWeights::parse(weights, &format!("{name}/sae_weights.safetensors"), &[])?;
        Self::from_weights(name, cfg, &w, device)
    }

    /// An SAE of `cfg` from weights in SAELens's names (`W_enc`, `b_enc`, `W_dec`, `b_dec`, `threshold`).
    pub fn from_weights(name: &str, cfg: SaeConfig, w: &dyn Weights, device: &Device) -> Result<Self> {
        let (d_in, d_sae) = (cfg.d_in, cfg.d_sae);
        let threshold = match cfg.arch {
            SaeArch::JumpRelu => Some(upload(w.get("threshold", &[d_sae])?, device)),
            _ => None,
        };
        let (mut w_enc, mut b_enc, mut w_dec) =
            (w.get("W_enc", &[d_in, d_sae])?, w.get("b_enc", &[d_sae])?, w.get("W_dec", &[d_sae, d_in])?);
        if cfg.rescale_acts_by_decoder_norm && matches!(cfg.arch, SaeArch::TopK { .. }) {
            fold_decoder_norm(&mut w_enc.data, &mut b_enc.data, &mut w_dec.data, d_in);
        }
        Ok(Self {
            w_enc: upload(w_enc, device),
            b_enc: upload(b_enc, device),
            w_dec: upload(w_dec, device),
            b_dec: upload(w.get("b_dec", &[d_in])?, device),
            threshold,
            cfg,
            name: name.to_string(),
        })
    }

    /// Converts an EleutherAI sparsify SAE (`cfg.json` + `sae.safetensors` with `encoder.weight` [d_sae, d_in],
    /// `encoder.bias`, `W_dec`, `b_dec`) for the hookpoint its directory is named after. Its encoder, ReLU then
    /// top-k of (x − b_dec) · encoderᵀ + bias, is a SAELens TopK SAE with apply_b_dec_to_input.
    pub fn from_sparsify(name: &str, hookpoint: &str, cfg_json: &str, weights: &[u8], device: &Device) -> Result<Self> {
        let cfg = config::sparsify_config(cfg_json, &format!("{name}/cfg.json"), hookpoint)?;
        let w = SafetensorsWeights::parse(weights, &format!("{name}/sae.safetensors"), &[])?;
        let (d_in, d_sae) = (cfg.d_in, cfg.d_sae);
        Ok(Self {
            w_enc: upload(transpose(w.get("encoder.weight", &[d_sae, d_in])?), device),
            b_enc: upload(w.get("encoder.bias", &[d_sae])?, device),
            w_dec: upload(w.get("W_dec", &[d_sae, d_in])?, device),
            b_dec: upload(w.get("b_dec", &[d_in])?, device),
            threshold: None,
            cfg,
            name: name.to_string(),
        })
    }

    /// Converts a Gemma Scope SAE (`params.npz`: W_enc, W_dec, b_enc, b_dec, threshold), whose `path` names its
    /// hook (`layer_N` → blocks.N.hook_resid_post). Its sizes are read from W_enc.
    pub fn from_gemma_scope(path: &str, npz: &[u8], device: &Device) -> Result<Self> {
        let w = crate::npz::NpzWeights::parse(npz, path)?;
        // Early releases spell the matrices w_enc / w_dec; sae-lens renames them as here.
        let key = |name: &str| if w.has(name) { name.to_string() } else { name.replacen("W_", "w_", 1) };
        let w_enc = w.get_any(&key("W_enc"))?;
        let [d_in, d_sae] = w_enc.shape[..] else {
            return Err(Error::Tensor {
                file: path.into(),
                tensor: "W_enc".into(),
                msg: format!("shape {:?}, expected [d_in, d_sae]", w_enc.shape),
            });
        };
        let cfg = config::gemma_scope_config(path, d_in, d_sae)?;
        Ok(Self {
            w_enc: upload(w_enc, device),
            b_enc: upload(w.get("b_enc", &[d_sae])?, device),
            w_dec: upload(w.get(&key("W_dec"), &[d_sae, d_in])?, device),
            b_dec: upload(w.get("b_dec", &[d_in])?, device),
            threshold: Some(upload(w.get("threshold", &[d_sae])?, device)),
            cfg,
            name: path.to_string(),
        })
    }

    /// Loads a directory in the SAELens layout (`cfg.json`, `sae_weights.safetensors`), the sparsify layout
    /// (`cfg.json`, `sae.safetensors`, the directory named by its hookpoint) or Gemma Scope's (`params.npz`, or
    /// that file itself, under a `layer_N` directory).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path, device: &Device) -> Result<Self> {
        use crate::files::{read_bytes, read_text};
        let npz = if dir.extension().is_some_and(|e| e == "npz") { dir.to_path_buf() } else { dir.join("params.npz") };
        if npz.is_file() && !dir.join("sae_weights.safetensors").exists() {
            return Self::from_gemma_scope(&npz.display().to_string(), &read_bytes(&npz)?, device);
        }
        let cfg = read_text(&dir.join("cfg.json"))?;
        // A release's folder in the hub cache is read as SAELens reads it, with the release's config overrides.
        let overrides = releases::by_cache_dir(dir).and_then(|(r, _)| r.config_overrides);
        let cfg = config::with_overrides(&cfg, overrides)
            .map_err(|e| Error::file(dir.join("cfg.json").display().to_string(), e))?;
        let name = dir.display().to_string();
        let sparsify = dir.join("sae.safetensors");
        if !dir.join("sae_weights.safetensors").exists() && sparsify.exists() {
            let hookpoint = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            return Self::from_sparsify(&name, hookpoint, &cfg, &read_bytes(&sparsify)?, device);
        }
        Self::from_files(&name, &cfg, &read_bytes(&dir.join("sae_weights.safetensors"))?, device)
    }

    /// Checks that this SAE reads a hook of `model` with its width.
    pub fn check_fits(&self, model: &ModelConfig) -> Result<HookPoint> {
        if self.cfg.d_in != model.d_model {
            return Err(Error::invalid(format!(
                "SAE d_in = {} does not match the model's d_model = {}",
                self.cfg.d_in, model.d_model
            )));
        }
        HookPoint::parse(&self.cfg.hook_name, model.n_layers)
    }

    /// The input as the encoder sees it (centred if `center_input`, then `normalize_activations`), and how to
    /// undo that on a reconstruction: x = x' · scale + shift, scale and shift [n, 1].
    pub fn normalize(&self, x: Tensor<2>) -> (Tensor<2>, Option<(Tensor<2>, Tensor<2>)>) {
        if !self.cfg.center_input {
            return self.normalize_activations(x);
        }
        let mean = x.clone().mean_dim(1); // [n, 1]
        match self.normalize_activations(x - mean.clone()) {
            (x, Some((scale, shift))) => (x, Some((scale, shift + mean))),
            (x, None) => (x, Some((mean.ones_like(), mean))),
        }
    }

    fn normalize_activations(&self, x: Tensor<2>) -> (Tensor<2>, Option<(Tensor<2>, Tensor<2>)>) {
        let [_, d] = x.dims();
        match self.cfg.normalize {
            Normalize::None | Normalize::ExpectedAverageOnlyIn => (x, None),
            Normalize::ConstantNormRescale => {
                // ‖x‖ / sqrt(d); a zero vector stays zero instead of becoming NaN.
                let scale = (x.clone().powi_scalar(2).sum_dim(1).sqrt() / (d as f32).sqrt()).clamp_min(1e-12);
                (x / scale.clone(), Some((scale.clone(), scale.zeros_like())))
            }
            Normalize::LayerNorm => {
                let mean = x.clone().mean_dim(1);
                let centred = x - mean.clone();
                let var = centred.clone().powi_scalar(2).sum_dim(1) / (d.max(2) - 1) as f32;
                let std = var.sqrt();
                (centred / (std.clone() + 1e-5), Some((std, mean)))
            }
        }
    }

    /// Pre-activations: (normalised x − b_dec if apply_b_dec_to_input) @ W_enc + b_enc. [n, d_in] → [n, d_sae].
    pub fn pre_activations(&self, x: Tensor<2>) -> Tensor<2> {
        self.pre_activations_normalized(self.normalize(x).0)
    }

    fn pre_activations_normalized(&self, x: Tensor<2>) -> Tensor<2> {
        let x = if self.cfg.apply_b_dec_to_input { x - self.b_dec.clone().unsqueeze::<2>() } else { x };
        x.matmul(self.w_enc.clone()) + self.b_enc.clone().unsqueeze::<2>()
    }

    /// Feature activations, as SAELens computes them. [n, d_in] → [n, d_sae].
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.activate(self.pre_activations(x))
    }

    /// Encodes and decodes, undoing the input normalisation: (feature_acts [n, d_sae], reconstruction [n, d_in]).
    pub fn reconstruct(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (x, undo) = self.normalize(x);
        let acts = self.activate(self.pre_activations_normalized(x));
        let rec = self.decode(acts.clone());
        let rec = match undo {
            Some((scale, shift)) => rec * scale + shift,
            None => rec,
        };
        (acts, rec)
    }

    /// The activation function on pre-activations [n, d_sae].
    pub fn activate(&self, pre: Tensor<2>) -> Tensor<2> {
        match self.cfg.arch {
            SaeArch::Standard => activation::relu(pre),
            SaeArch::JumpRelu => {
                let threshold = self.threshold.clone().expect("jumprelu SAEs load a threshold").unsqueeze::<2>();
                let gate = pre.clone().greater(threshold.expand(pre.dims())).float();
                activation::relu(pre) * gate
            }
            SaeArch::TopK { k } => {
                let (values, indices) = pre.clone().topk_with_indices(k, 1); // [n, k]
                pre.zeros_like().scatter(1, indices, activation::relu(values), IndexingUpdateOp::Assign)
            }
        }
    }

    /// acts @ W_dec + b_dec, in the normalised input space (the reconstruction for SAEs without
    /// `normalize_activations`; see `reconstruct`). [n, d_sae] → [n, d_in].
    pub fn decode(&self, acts: Tensor<2>) -> Tensor<2> {
        acts.matmul(self.w_dec.clone()) + self.b_dec.clone().unsqueeze::<2>()
    }

    /// Checks feature indices against d_sae.
    pub fn check_features(&self, features: &[usize]) -> Result<()> {
        match features.iter().find(|&&f| f >= self.cfg.d_sae) {
            Some(f) => {
                Err(Error::invalid(format!("feature {f} does not exist: this SAE has {} features", self.cfg.d_sae)))
            }
            None => Ok(()),
        }
    }

    /// The decoder rows of `features` (checked): [n, d_in].
    pub fn decoder_rows(&self, features: &[usize]) -> Result<Tensor<2>> {
        self.check_features(features)?;
        Ok(self.w_dec.clone().select(0, index_tensor(features, &self.w_dec.device())))
    }

    /// What feature steering adds to the residual stream: Σ strength × W_dec[feature], [d_in].
    pub async fn feature_direction(&self, features: &[(usize, f32)]) -> Result<Vec<f32>> {
        if features.is_empty() {
            return Err(Error::invalid("no features to steer with"));
        }
        if let Some((f, s)) = features.iter().find(|(_, s)| !s.is_finite()) {
            return Err(Error::invalid(format!("feature {f}: strength {s} is not finite")));
        }
        let rows = self.decoder_rows(&features.iter().map(|(f, _)| *f).collect::<Vec<_>>())?; // [n, d]
        let strengths = features.iter().map(|(_, s)| *s).collect::<Vec<_>>();
        Ok(read(row_tensor(&strengths, &rows.device()).matmul(rows)).await?.data)
    }

    /// Encodes host vectors [n, d_in] (or one [d_in]) and returns (feature_acts [n, d_sae],
    /// reconstruction [n, d_in]).
    pub async fn encode_host(&self, x: HostTensor, device: &Device) -> Result<(HostTensor, HostTensor)> {
        let d_in = self.cfg.d_in;
        let n = match x.shape[..] {
            [d] if d == d_in => 1,
            [n, d] if d == d_in && n > 0 => n,
            _ => {
                return Err(Error::invalid(format!(
                    "input of shape {:?} does not fit this SAE: expected [n, {d_in}] or [{d_in}]",
                    x.shape
                )));
            }
        };
        let (acts, rec) = self.reconstruct(upload(HostTensor::new(vec![n, d_in], x.data), device));
        Ok((read(acts).await?, read(rec).await?))
    }
}

/// Folds `rescale_acts_by_decoder_norm` into the weights: scaling pre-activations by ‖W_dec row‖ and
/// dividing acts by it before decoding equals scaling W_enc columns and b_enc by it and using unit-norm
/// decoder rows.
#[cfg(feature = "engine")]
fn fold_decoder_norm(w_enc: &mut [f32], b_enc: &mut [f32], w_dec: &mut [f32], d_in: usize) {
    let d_sae = b_enc.len();
    for (f, row) in w_dec.chunks_mut(d_in).enumerate() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 {
            continue; // a dead feature decodes to nothing either way
        }
        row.iter_mut().for_each(|v| *v /= norm);
        b_enc[f] *= norm;
        (0..d_in).for_each(|i| w_enc[i * d_sae + f] *= norm);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tensor_file::{NamedTensor, to_safetensors};
    use burn::tensor::TensorData;

    /// A hand-built SAE with d_in = 2, d_sae = 3: feature 0 reads +x0, feature 1 reads −x0 (its anti-aligned
    /// partner), feature 2 reads x1 with a large encoder bias that dominates encode(0).
    pub(crate) fn hand_built(arch: &str, extra: &str) -> Sae {
        let w = to_safetensors(
            &[
                NamedTensor::f32("W_enc", vec![2, 3], vec![1.0, -1.0, 0.0, 0.0, 0.0, 1.0]),
                NamedTensor::f32("b_enc", vec![3], vec![0.0, 0.0, 5.0]),
                NamedTensor::f32("W_dec", vec![3, 2], vec![1.0, 0.0, -1.0, 0.0, 0.0, 1.0]),
                NamedTensor::f32("b_dec", vec![2], vec![0.5, -0.5]),
                NamedTensor::f32("threshold", vec![3], vec![0.5, 0.5, 6.0]),
            ],
            Default::default(),
        )
        .unwrap();
        let cfg =
            format!(r#"{{"architecture":"{arch}","d_in":2,"d_sae":3,"hook_name":"blocks.0.hook_resid_pre"{extra}}}"#);
        Sae::from_files("hand", &cfg, &w, &Device::flex()).unwrap()
    }

    fn run(sae: &Sae, x: [f32; 2]) -> (Vec<f32>, Vec<f32>) {
        let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, 2]), &Device::flex());
        let acts = sae.encode(x);
        let rec = sae.decode(acts.clone());
        (pollster::block_on(read(acts)).unwrap().data, pollster::block_on(read(rec)).unwrap().data)
    }

    #[test]
    fn relu_drops_the_negative_projection_and_its_partner_fires() {
        let s = hand_built("standard", "");
        // encode(0): only the bias feature fires.
        assert_eq!(run(&s, [0.0, 0.0]).0, vec![0.0, 0.0, 5.0]);
        // x0 = −2: feature 0's projection is negative and dropped; its anti-aligned partner fires.
        let (acts, rec) = run(&s, [-2.0, 1.0]);
        assert_eq!(acts, vec![0.0, 2.0, 6.0]);
        assert_eq!(rec, vec![0.5 - 2.0, -0.5 + 6.0]);
    }

    #[test]
    fn apply_b_dec_jumprelu_and_topk() {
        let s = hand_built("standard", r#","apply_b_dec_to_input":true"#);
        assert_eq!(run(&s, [2.5, 0.5]).0, vec![2.0, 0.0, 6.0]);
        let s = hand_built("jumprelu", "");
        // feature 0 at 0.4 is under its 0.5 threshold; feature 2 at 5.5 under 6.0.
        assert_eq!(run(&s, [0.4, 0.5]).0, vec![0.0, 0.0, 0.0]);
        assert_eq!(run(&s, [0.6, 1.5]).0, vec![0.6, 0.0, 6.5]);
        let s = hand_built("topk", r#","activation_fn_kwargs":{"k":1}"#);
        // pre-activations [3, −3, 1]: only the largest survives.
        assert_eq!(run(&s, [3.0, -4.0]).0, vec![3.0, 0.0, 0.0]);
    }

    #[test]
    fn centred_inputs_lose_their_mean_and_get_it_back() {
        let s = hand_built("standard", r#","model_from_pretrained_kwargs":{"center_writing_weights":true}"#);
        assert!(s.cfg.center_input);
        // [3, 1] is seen as [1, −1]: feature 0 reads 1, feature 2 reads 5 − 1.
        assert_eq!(run(&s, [3.0, 1.0]).0, vec![1.0, 0.0, 4.0]);
        // The reconstruction gets the mean back: decode([1, 0, 4]) = [1.5, 3.5], + 2.
        let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 1.0], [1, 2]), &Device::flex());
        let rec = pollster::block_on(read(s.reconstruct(x).1)).unwrap().data;
        assert_eq!(rec, vec![3.5, 5.5]);
        assert!(!hand_built("standard", "").cfg.center_input);
    }

    #[test]
    fn feature_direction_sums_decoder_rows() {
        let s = hand_built("standard", "");
        let d = pollster::block_on(s.feature_direction(&[(0, 2.0), (2, -3.0)])).unwrap();
        assert_eq!(d, vec![2.0, -3.0]);
        let e = pollster::block_on(s.feature_direction(&[(3, 1.0)])).unwrap_err().to_string();
        assert_eq!(e, "feature 3 does not exist: this SAE has 3 features");
        assert!(pollster::block_on(s.feature_direction(&[])).is_err());
    }

    #[test]
    fn missing_threshold_and_wrong_width_are_named() {
        let w = to_safetensors(&[NamedTensor::f32("W_enc", vec![2, 3], vec![0.0; 6])], Default::default()).unwrap();
        let cfg = r#"{"architecture":"jumprelu","d_in":2,"d_sae":3,"hook_name":"blocks.0.hook_resid_pre"}"#;
        let e = Sae::from_files("s", cfg, &w, &Device::flex()).err().unwrap().to_string();
        assert_eq!(e, "s/sae_weights.safetensors: tensor `threshold`: missing");
        let model = crate::model::config::ModelConfig::from_json(
            r#"{"model_type":"gpt2","n_embd":4,"n_layer":1,"n_head":1,"vocab_size":10}"#,
            "c",
        )
        .unwrap();
        let e = hand_built("standard", "").check_fits(&model).unwrap_err().to_string();
        assert_eq!(e, "SAE d_in = 2 does not match the model's d_model = 4");
    }
}
