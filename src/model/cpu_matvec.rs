//! One-row matrix products (a decode step's) on the native CPU backend, on every core.
//!
//! burn's CPU matmul hands a product with one row or one column to the gemm crate's matrix-vector kernel, which
//! runs on the calling thread alone (gemm 0.19 spreads only its blocked kernels over threads), so a decode step
//! streamed every weight through one core while the others waited. Here the weight is cut into bands, each
//! band's product runs on a thread of rayon's pool (the one burn's CPU backend already runs), and the bands are
//! put back together. Each output is the same sum as before: column bands of a row product run the same kernel
//! and give the same bits; a short band of rows can get another of gemm's kernels, which may round differently
//! in the last place.

use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// Matrices under this many elements stay one product: handing bands to threads would cost more than it saves.
const MIN_ELEMENTS: usize = 1 << 18;

/// Whether a product of `m` (one of its sides having a single row or column) is worth cutting into bands. Only
/// f32: an f16 product takes another gemm path, which bands made slower (GPT-2 small's decode with f16 weights,
/// 2-core VM: 29.0–34.5 ms a token whole, 33.7–38.3 in bands).
pub fn applies(m: &Tensor<2>, one_row_or_column: bool) -> bool {
    one_row_or_column
        && m.dtype() == DType::F32
        && m.shape().num_elements() >= MIN_ELEMENTS
        && m.device() == Device::flex()
        && rayon::current_num_threads() > 1
}

/// `x @ w` for one row: x [1, k], w [k, n] → [1, n], w's columns in one band per thread.
pub fn row_times(x: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
    let [k, n] = w.dims();
    let parts = bands(n).into_par_iter().map(|cols| x.clone().matmul(w.clone().slice([0..k, cols]))).collect();
    Tensor::cat(parts, 1) // [1, n]
}

/// `m @ x` for one column: m [r, k], x [k, 1] → [r, 1], m's rows in one band per thread.
pub fn times_column(m: &Tensor<2>, x: Tensor<2>) -> Tensor<2> {
    let [r, k] = m.dims();
    let parts = bands(r).into_par_iter().map(|rows| m.clone().slice([rows, 0..k]).matmul(x.clone())).collect();
    Tensor::cat(parts, 0) // [r, 1]
}

/// `0..n` in one band per thread, each a multiple of 16 long (whole SIMD vectors) except the last.
fn bands(n: usize) -> Vec<Range<usize>> {
    let band = n.div_ceil(rayon::current_num_threads()).next_multiple_of(16);
    (0..n).step_by(band.max(1)).map(|lo| lo..(lo + band).min(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::read;
    use burn::tensor::TensorData;

    fn matrix(rows: usize, cols: usize, seed: f32) -> Tensor<2> {
        let data = (0..rows * cols).map(|i| ((i as f32 + seed) * 0.618).sin()).collect::<Vec<f32>>();
        Tensor::from_data(TensorData::new(data, [rows, cols]), &Device::flex())
    }

    fn values(t: Tensor<2>) -> (Vec<usize>, Vec<f32>) {
        let h = pollster::block_on(read(t)).unwrap();
        (h.shape, h.data)
    }

    /// Banded products equal burn's one-thread products (row products to the bit, column products to f32
    /// rounding), for sizes that do and do not divide into whole bands, in a pool of several threads whatever the
    /// machine has.
    #[test]
    fn bands_change_nothing() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        pool.install(|| {
            for (k, n) in [(512, 512), (700, 1001), (300, 4099)] {
                let (x, w) = (matrix(1, k, 1.0), matrix(k, n, 2.0));
                assert!(applies(&w, true));
                assert_eq!(bands(n).len(), 3);
                assert_eq!(values(row_times(x.clone(), &w)), values(x.matmul(w)));
                let (m, col) = (matrix(n, k, 3.0), matrix(k, 1, 4.0));
                let ((shape, got), (want_shape, want)) = (values(times_column(&m, col.clone())), values(m.matmul(col)));
                assert_eq!(shape, want_shape);
                let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-6 * scale), "{got:?} vs {want:?}");
            }
        });
    }

    /// A decode step (one row through every weight: banded) gives the logits a full pass (many rows: gemm's
    /// blocked kernels) gives at the same position, on a GPT-2 whose MLP and unembedding are large enough to band.
    #[test]
    fn decoding_with_bands_matches_a_full_pass() {
        use crate::model::{Model, config::ModelConfig, hooks::Hooks, kv_cache::KvCache, random::RandomWeights};
        let cfg = r#"{"model_type":"gpt2","n_embd":256,"n_head":4,"n_layer":2,"n_positions":64,"vocab_size":2048,
            "activation_function":"gelu_new","layer_norm_epsilon":1e-5}"#;
        let cfg = ModelConfig::from_json(cfg, "config.json").unwrap();
        let (n_layers, device) = (cfg.n_layers, Device::flex());
        let net = Model::build(cfg, &RandomWeights { seed: 7 }, &device).unwrap();
        let tokens: Vec<u32> = (0..12).map(|i| (i * 389 + 5) % 2048).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let (full, step) = pool.install(|| {
            assert!(applies(&matrix(256, 1024, 0.0), true), "the MLP's [256, 1024] weights must be banded");
            let full = net.forward(&tokens, &mut KvCache::new(n_layers), &mut Hooks::default()).unwrap();
            let mut cache = KvCache::new(n_layers);
            net.forward(&tokens[..11], &mut cache, &mut Hooks::default()).unwrap();
            let step = net.next_token_logits(&tokens[11..], &mut cache, &mut Hooks::default()).unwrap();
            (full.slice([0..1, 11..12, 0..2048]).reshape([1, 2048]), step.reshape([1, 2048]))
        });
        let ((_, want), (_, got)) = (values(full), values(step));
        let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0.0f32, |a, (g, w)| a.max((g - w).abs()));
        assert!(worst <= 1e-5 * scale, "largest difference {worst} of {scale}");
    }

    #[test]
    fn small_matrices_several_rows_and_f16_stay_one_product() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            assert!(applies(&matrix(512, 512, 0.0), true));
            assert!(!applies(&matrix(64, 64, 0.0), true));
            assert!(!applies(&matrix(512, 512, 0.0), false));
            assert!(!applies(&matrix(512, 512, 0.0).cast(burn::tensor::FloatDType::F16), true));
        });
    }

    #[test]
    fn bands_cover_every_index_once() {
        for n in [1, 15, 16, 17, 1000, 50257] {
            let b = bands(n);
            assert_eq!(b.first().unwrap().start, 0);
            assert_eq!(b.last().unwrap().end, n);
            assert!(b.windows(2).all(|w| w[0].end == w[1].start && w[0].len() % 16 == 0));
        }
    }
}
