//! Ways to write a steering vector as SAE features. The plain reconstruction is the SAE's own forward pass;
//! these are the better-behaved alternatives the lab compares against it:
//! - bias-corrected: encode(SV + mean) − encode(mean), so the encoder bias and the default components that a
//!   real activation carries are present on both sides and cancel (decoded without b_dec);
//! - gradient pursuit on the (unit-norm) decoder, non-negative or signed: inference-time optimisation as in
//!   the appendix of Conmy & Nanda 2024, with no encoder involved at all.

use super::Sae;
use crate::device::read;
use crate::error::{Error, Result};
use crate::model::layers::row_tensor;
use burn::tensor::{IndexingUpdateOp, Tensor, activation};

/// A decomposition: per-feature coefficients [d_sae] and the vector they decode to [d_in] (without b_dec).
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposed {
    pub coefs: Vec<f32>,
    pub vector: Vec<f32>,
}

impl Decomposed {
    /// Features with a non-zero coefficient.
    pub fn active(&self) -> usize {
        self.coefs.iter().filter(|c| **c != 0.0).count()
    }
}

impl Sae {
    /// Unit-norm decoder rows [d_sae, d_in] (dead all-zero rows stay zero).
    pub fn unit_decoder(&self) -> Tensor<2> {
        let norms = self.w_dec.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12); // [d_sae, 1]
        self.w_dec.clone() / norms
    }

    /// The cosine of each of `features`' decoder rows with every decoder row: [features, d_sae].
    pub fn decoder_cosines(&self, features: &[usize]) -> Tensor<2> {
        let unit = self.unit_decoder(); // [d_sae, d]
        let ids = crate::model::layers::index_tensor(features, &unit.device());
        unit.clone().select(0, ids).matmul(unit.transpose())
    }

    /// encode(sv + mean) − encode(mean) and its decoding Σ coef_f · W_dec[f] (no b_dec), reconstructed as
    /// `reconstruct(sv + mean) − reconstruct(mean)` so input normalisations are undone too.
    pub async fn bias_corrected(&self, sv: &[f32], mean: &[f32]) -> Result<Decomposed> {
        self.check_width(sv)?;
        self.check_width(mean)?;
        let device = self.w_dec.device();
        let with: Vec<f32> = sv.iter().zip(mean).map(|(a, b)| a + b).collect();
        let x = Tensor::cat(vec![row_tensor(&with, &device), row_tensor(mean, &device)], 0); // [2, d_in]
        let (acts, rec) = self.reconstruct(x);
        let [_, d_sae] = acts.dims();
        let d = self.cfg.d_in;
        let coefs = acts.clone().slice([0..1, 0..d_sae]) - acts.slice([1..2, 0..d_sae]);
        let vector = rec.clone().slice([0..1, 0..d]) - rec.slice([1..2, 0..d]);
        Ok(Decomposed { coefs: read(coefs).await?.data, vector: read(vector).await?.data })
    }

    /// Keeps the `k` features of `coefs` that contribute most (|coef| · ‖W_dec row‖) and decodes them
    /// without b_dec.
    pub async fn top_k_subset(&self, coefs: &[f32], k: usize) -> Result<Decomposed> {
        let device = self.w_dec.device();
        let norms = read(self.w_dec.clone().powi_scalar(2).sum_dim(1).sqrt()).await?.data;
        let mut order: Vec<usize> = (0..coefs.len()).filter(|&f| coefs[f] != 0.0).collect();
        order.sort_by(|&a, &b| (coefs[b].abs() * norms[b]).total_cmp(&(coefs[a].abs() * norms[a])));
        let mut kept = vec![0.0; coefs.len()];
        for &f in order.iter().take(k) {
            kept[f] = coefs[f];
        }
        let vector = read(row_tensor(&kept, &device).matmul(self.w_dec.clone())).await?.data;
        Ok(Decomposed { coefs: kept, vector })
    }

    /// Gradient pursuit of `sv` on the unit-norm decoder: each step adds the direction most aligned with the
    /// residual (most positive, or largest |·| when `signed`) to the support, then takes an exact line-search
    /// gradient step on ‖sv − coefs · D‖² over the support (non-negative coefficients clipped at 0). Returns
    /// the decomposition after each of `ks` steps (ascending); coefficients are per unit-norm direction.
    /// `check` runs before every step, so a stopped request ends within one step.
    pub async fn gradient_pursuit(
        &self,
        sv: &[f32],
        ks: &[usize],
        signed: bool,
        check: &dyn Fn() -> Result<()>,
    ) -> Result<Vec<(usize, Decomposed)>> {
        self.check_width(sv)?;
        if ks.is_empty() || ks.windows(2).any(|w| w[0] >= w[1]) || ks[0] == 0 {
            return Err(Error::invalid("gradient pursuit needs ascending k values of at least 1"));
        }
        self.check_ks(ks)?;
        let device = self.w_dec.device();
        let dict = self.unit_decoder(); // [d_sae, d_in]
        let dict_t = dict.clone().transpose(); // [d_in, d_sae]
        let x = row_tensor(sv, &device);
        let d_sae = self.cfg.d_sae;
        let mut coefs = Tensor::<2>::zeros([1, d_sae], &device);
        let mut support = Tensor::<2>::zeros([1, d_sae], &device);
        let mut residual = x.clone();
        let mut out = Vec::new();
        for step in 1..=*ks.last().expect("checked non-empty") {
            check()?;
            let inner = residual.clone().matmul(dict_t.clone()); // [1, d_sae]
            let score = if signed { inner.clone().abs() } else { inner.clone() };
            let (best, index) = score.max_dim_with_indices(1); // [1, 1]
            // The best direction (the first on ties) joins the support; a non-negative pursuit adds nothing
            // once no direction has a positive inner product with the residual.
            let pick = Tensor::<2>::zeros([1, d_sae], &device).scatter(
                1,
                index,
                best.greater_elem(1e-12).float(),
                IndexingUpdateOp::Assign,
            );
            support = support.max_pair(pick);
            let grad = inner * support.clone(); // [1, d_sae]
            let c = grad.clone().matmul(dict.clone()); // [1, d_in]
            let step_size = (c.clone() * residual.clone()).sum_dim(1) / (c.clone() * c).sum_dim(1).clamp_min(1e-20);
            coefs = coefs + grad * step_size;
            if !signed {
                coefs = activation::relu(coefs);
            }
            let fit = coefs.clone().matmul(dict.clone());
            residual = x.clone() - fit.clone();
            if ks.contains(&step) {
                out.push((step, Decomposed { coefs: read(coefs.clone()).await?.data, vector: read(fit).await?.data }));
            }
        }
        Ok(out)
    }

    /// Sparsity levels must name at most every feature: no support grows past d_sae.
    pub fn check_ks(&self, ks: &[usize]) -> Result<()> {
        match ks.iter().find(|&&k| k == 0 || k > self.cfg.d_sae) {
            Some(k) => Err(Error::invalid(format!(
                "k = {k}: sparsity levels run from 1 to the SAE's {} features",
                self.cfg.d_sae
            ))),
            None => Ok(()),
        }
    }

    fn check_width(&self, v: &[f32]) -> Result<()> {
        if v.len() != self.cfg.d_in {
            return Err(Error::invalid(format!("vector has {} dims but the SAE's d_in is {}", v.len(), self.cfg.d_in)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::sae::Sae;
    use crate::tensor_file::{NamedTensor, to_safetensors};
    use burn::tensor::Device;

    /// d_in = 3, d_sae = 4: axis-aligned decoder rows e0, e1, −e0 and (e1 + e2)/√2 · 2.
    fn sae() -> Sae {
        let s = std::f32::consts::SQRT_2;
        let w = to_safetensors(
            &[
                NamedTensor::f32(
                    "W_enc",
                    vec![3, 4],
                    vec![1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.5],
                ),
                NamedTensor::f32("b_enc", vec![4], vec![0.0, 0.0, 0.0, 2.0]),
                NamedTensor::f32("W_dec", vec![4, 3], vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, s, s]),
                NamedTensor::f32("b_dec", vec![3], vec![0.0; 3]),
            ],
            Default::default(),
        )
        .unwrap();
        let cfg = r#"{"d_in":3,"d_sae":4,"hook_name":"blocks.0.hook_resid_pre"}"#;
        Sae::from_files("gp", cfg, &w, &Device::flex()).unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn gradient_pursuit_stops_when_asked_and_refuses_k_past_the_width() {
        let s = sae();
        let steps = std::cell::Cell::new(0);
        let check = || {
            steps.set(steps.get() + 1);
            if steps.get() > 2 { Err(crate::Error::Cancelled) } else { Ok(()) }
        };
        let r = pollster::block_on(s.gradient_pursuit(&[3.0, -2.0, 0.0], &[4], true, &check));
        assert!(matches!(r, Err(crate::Error::Cancelled)), "{r:?}");
        assert_eq!(steps.get(), 3, "one check per step, and none after the stop");
        let e = pollster::block_on(s.gradient_pursuit(&[3.0, -2.0, 0.0], &[1, 1_000_000_000_000], true, &|| Ok(())));
        assert!(e.unwrap_err().to_string().contains("sparsity levels run from 1 to the SAE's 4 features"));
    }

    #[test]
    fn gradient_pursuit_recovers_sparse_combinations() {
        let s = sae();
        // sv = 3·e0 − 2·e1: signed pursuit uses e0 and e1 with a negative coefficient.
        let sv = [3.0, -2.0, 0.0];
        let signed = pollster::block_on(s.gradient_pursuit(&sv, &[1, 2], true, &|| Ok(()))).unwrap();
        assert_eq!(signed[0].1.active(), 1);
        assert!(close(&signed[1].1.vector, &sv), "{:?}", signed[1].1);
        assert!(close(&signed[1].1.coefs[..2], &[3.0, -2.0]) || close(&signed[1].1.coefs[1..3], &[-2.0, -3.0]));
        // Non-negative pursuit cannot use −e1 (no such row), so it keeps 3·e0 only.
        let nonneg = pollster::block_on(s.gradient_pursuit(&sv, &[1, 2, 3], false, &|| Ok(()))).unwrap();
        for (_, d) in &nonneg {
            assert!(d.coefs.iter().all(|c| *c >= 0.0));
            assert!(close(&d.vector, &[3.0, 0.0, 0.0]), "{d:?}");
        }
        assert!(pollster::block_on(s.gradient_pursuit(&sv, &[2, 1], true, &|| Ok(()))).is_err());
    }

    #[test]
    fn bias_corrected_cancels_the_encoder_bias() {
        let s = sae();
        // encode(0) fires feature 3 (bias 2); encode(sv) too. The difference against a mean activation that
        // already fires feature 3 leaves only what sv adds.
        let mean = [0.0, 1.0, 0.0];
        let d = pollster::block_on(s.bias_corrected(&[2.0, 0.0, 0.0], &mean)).unwrap();
        assert!(close(&d.coefs, &[2.0, 0.0, 0.0, 0.0]), "{d:?}");
        assert!(close(&d.vector, &[2.0, 0.0, 0.0]));
        // A negative direction: ReLU on sv alone would drop it; against the mean it shows as a negative delta.
        let d = pollster::block_on(s.bias_corrected(&[0.0, -0.5, -0.5], &mean)).unwrap();
        assert!(close(&d.coefs, &[0.0, -0.5, 0.0, -0.5]), "{d:?}");
        let top = pollster::block_on(s.top_k_subset(&d.coefs, 1)).unwrap();
        assert_eq!(top.active(), 1);
        assert!(close(&top.coefs, &[0.0, 0.0, 0.0, -0.5]), "{top:?}"); // |−0.5| · ‖row 3‖ = 1 > |−0.5| · 1
    }
}
