//! Few-row matrix products (a decode step's: one row, or one a continuation when the lab decodes several together)
//! on the CPU backend (natively on every core, in the browser's worker on its one thread), each weight read once
//! from where it lies.
//!
//! burn's CPU matmul hands a one-row product to the gemm crate's matrix-vector kernel, which runs on the calling
//! thread alone, and a product of a few rows to gemm's blocked kernels, which repack the weight into their tile
//! order as they go, on one thread below 192³ multiply-adds: a decode step of GPT-2 small with two rows (the
//! unsteered and steered continuations) cost 2.1–2.7 one-row steps. All a decode step needs is to stream each weight
//! once. Here each thread of rayon's pool (the one burn's CPU backend runs) takes a contiguous band of the weight,
//! reads it in place from the backend's buffer, and serves every row from each value while it is in cache. The
//! browser's CPU fallback has one thread and no rayon: there the whole weight is one band.

use burn::backend::Flex;
use burn::tensor::{DType, Device, Tensor, TensorData};
#[cfg(not(target_arch = "wasm32"))]
use rayon::prelude::*;
use std::ops::Range;

/// The most rows (or columns) a product done here has. With more, gemm's blocked kernels (on every core from 8 rows
/// at GPT-2's sizes) won: GPT-2 small's decode of 8 rows on the 2-core VM took 144, 121 and 201 ms a step here
/// against 121, 93 and 146 with gemm, in three runs; 4 rows took 80 here against 96.
const MAX_ROWS: usize = 4;

/// Weights under this many elements stay with burn: handing bands to threads would cost more than it saves.
const MIN_ELEMENTS: usize = 1 << 18;

/// `a @ b` here, when one side is a few rows (`a`, [m ≤ 4, k]) or columns (`b`, [k, c ≤ 4]) and the other is a
/// large contiguous f32 matrix in the CPU backend's memory; `None` leaves the product to burn (f16 weights too: with
/// them gemm's own bands were slower than one product, and this loop reads f32).
pub fn product(a: &Tensor<2>, b: &Tensor<2>) -> Option<Tensor<2>> {
    let ([m, k], [k_b, n]) = (a.dims(), b.dims());
    if k != k_b {
        return None; // burn's matmul reports it
    }
    if (1..=MAX_ROWS).contains(&m) && large(b) {
        let x = thin(a.clone())?; // [m, k]
        return with_values(b, |w| rows_times(&x, m, k, w, n)).map(|y| tensor(y, [m, n]));
    }
    if (1..=MAX_ROWS).contains(&n) && large(a) {
        let x = thin(b.clone().transpose())?; // [n, k]: b's columns as rows
        return with_values(a, |w| times_columns(w, m, k, &x, n)).map(|y| tensor(y, [m, n]));
    }
    None
}

/// Whether `w` is an f32 matrix on the CPU backend large enough to be worth cutting into bands.
fn large(w: &Tensor<2>) -> bool {
    w.dtype() == DType::F32 && w.shape().num_elements() >= MIN_ELEMENTS && w.device() == Device::flex()
}

/// The few rows' values, row by row (a copy only where they are a strided view or shared).
fn thin(x: Tensor<2>) -> Option<Vec<f32>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    x.into_data().try_into_vec::<f32>().ok()
}

/// Runs `f` on `w`'s values in the CPU backend's own buffer, row-major, without a copy; `None` if `w` is not
/// there or not contiguous.
fn with_values<R>(w: &Tensor<2>, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let cpu = w.clone().try_into_primitive::<Flex>().ok()?;
    let (start, end) = cpu.layout().contiguous_offsets()?;
    Some(f(&cpu.storage::<f32>()[start..end]))
}

fn tensor(values: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

/// x [m, k] @ w [k, n] → [m, n]: w's rows in one contiguous band per thread (so each thread streams its part of
/// the weight front to back), each band's partial sums added at the end.
fn rows_times(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    let partial = |depth: Range<usize>| {
        let mut out = vec![0.0f32; m * n]; // [m, n]
        for kk in depth {
            let w_row = &w[kk * n..(kk + 1) * n];
            for (i, row) in out.chunks_exact_mut(n).enumerate() {
                axpy(row, x[i * k + kk], w_row);
            }
        }
        out
    };
    let add = |mut sum: Vec<f32>, part: Vec<f32>| {
        sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
        sum
    };
    each_band(k, partial).into_iter().reduce(add).unwrap_or_else(|| vec![0.0; m * n]) // [m, n]
}

/// w [r, k] @ xᵀ (x [c, k], the columns as rows) → [r, c], w's rows in one band per thread.
fn times_columns(w: &[f32], r: usize, k: usize, x: &[f32], c: usize) -> Vec<f32> {
    let parts = each_band(r, |rows| {
        let mut out = Vec::with_capacity(rows.len() * c); // [rows, c]
        for w_row in w[rows.start * k..rows.end * k].chunks_exact(k) {
            out.extend(x.chunks_exact(k).map(|col| dot(w_row, col)));
        }
        out
    });
    let out = parts.concat();
    debug_assert_eq!(out.len(), r * c);
    out
}

/// `o += a · w`, element by element (natively LLVM vectorises it).
#[cfg(not(target_arch = "wasm32"))]
fn axpy(o: &mut [f32], a: f32, w: &[f32]) {
    o.iter_mut().zip(w).for_each(|(o, w)| *o += a * w);
}

/// Σ a·b, in sixteen running sums (so that it vectorises) added at the end.
#[cfg(not(target_arch = "wasm32"))]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a16.remainder().iter().zip(b16.remainder()).map(|(x, y)| x * y).sum();
    let mut sums = [0.0f32; 16];
    for (x, y) in a16.zip(b16) {
        for l in 0..16 {
            sums[l] += x[l] * y[l];
        }
    }
    sums.iter().sum::<f32>() + tail
}

// In the browser the same two loops come written in SIMD128 lanes (`simd128.rs` says why; the figures are README's).
#[cfg(target_arch = "wasm32")]
use super::simd128::{axpy, dot};

/// `f` of each band of `0..n`, in order, the bands run on rayon's pool.
#[cfg(not(target_arch = "wasm32"))]
fn each_band<T: Send>(n: usize, f: impl Fn(Range<usize>) -> T + Sync + Send) -> Vec<T> {
    bands(n, rayon::current_num_threads()).into_par_iter().map(f).collect()
}

/// The browser's worker has one thread: one band, `f(0..n)`.
#[cfg(target_arch = "wasm32")]
fn each_band<T>(n: usize, f: impl Fn(Range<usize>) -> T) -> Vec<T> {
    bands(n, 1).into_iter().map(f).collect()
}

/// `0..n` in one band per thread, each a multiple of 16 long (whole SIMD vectors) except the last.
fn bands(n: usize, threads: usize) -> Vec<Range<usize>> {
    let band = n.div_ceil(threads).next_multiple_of(16);
    (0..n).step_by(band.max(1)).map(|lo| lo..(lo + band).min(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::read;
    use burn::tensor::FloatDType;

    fn matrix(rows: usize, cols: usize, seed: f32) -> Tensor<2> {
        let data = (0..rows * cols).map(|i| ((i as f32 + seed) * 0.618).sin()).collect::<Vec<f32>>();
        Tensor::from_data(TensorData::new(data, [rows, cols]), &Device::flex())
    }

    fn values(t: Tensor<2>) -> (Vec<usize>, Vec<f32>) {
        let h = pollster::block_on(read(t)).unwrap();
        (h.shape, h.data)
    }

    fn assert_close(got: Tensor<2>, want: Tensor<2>, tolerance: f32) {
        let ((shape, got), (want_shape, want)) = (values(got), values(want));
        assert_eq!(shape, want_shape);
        let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0.0f32, |a, (g, w)| a.max((g - w).abs()));
        assert!(worst <= tolerance * scale, "largest difference {worst} of {scale}");
    }

    /// Products of one to four rows (and columns) equal burn's, to f32 rounding (the sums run in another order),
    /// for sizes that do and do not divide into whole bands, in a pool of several threads whatever the machine has.
    #[test]
    fn few_row_products_equal_burns() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        pool.install(|| {
            for (k, n) in [(512, 512), (700, 1001), (300, 4099)] {
                assert_eq!(bands(n, rayon::current_num_threads()).len(), 3);
                let w = matrix(k, n, 2.0);
                for rows in 1..=MAX_ROWS {
                    let x = matrix(rows, k, 1.0);
                    assert_close(product(&x, &w).expect("done here"), x.matmul(w.clone()), 1e-5);
                    // The unembedding's shape: the weight times a few columns, here a transposed view.
                    let (m, cols) = (matrix(n, k, 3.0), matrix(rows, k, 4.0).transpose());
                    assert_close(product(&m, &cols).expect("done here"), m.matmul(cols), 1e-5);
                }
            }
        });
    }

    /// A decode step (one row, or two rows with their own tokens and caches, through every weight: here) gives the
    /// logits a full pass of each row (many rows: gemm's blocked kernels) gives at the same position, on a GPT-2
    /// whose MLP and unembedding are large enough for this module.
    #[test]
    fn decoding_here_matches_full_passes() {
        use crate::model::{Model, config::ModelConfig, hooks::Hooks, kv_cache::KvCache, random::RandomWeights};
        let cfg = r#"{"model_type":"gpt2","n_embd":256,"n_head":4,"n_layer":2,"n_positions":64,"vocab_size":2048,
            "activation_function":"gelu_new","layer_norm_epsilon":1e-5}"#;
        let cfg = ModelConfig::from_json(cfg, "config.json").unwrap();
        let (n_layers, device) = (cfg.n_layers, Device::flex());
        let net = Model::build(cfg, &RandomWeights { seed: 7 }, &device).unwrap();
        let rows: [Vec<u32>; 2] = [0, 1].map(|r| (0..12).map(|i| (i * 389 + 5 + r * 1000) % 2048).collect());
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            assert!(
                product(&matrix(2, 256, 0.0), &matrix(256, 1024, 0.0)).is_some(),
                "the MLP's weights are done here"
            );
            let full = |tokens: &[u32]| {
                let logits = net.forward(tokens, &mut KvCache::new(n_layers), &mut Hooks::default()).unwrap();
                logits.slice([0..1, 11..12, 0..2048]).reshape([1, 2048]) // [1, vocab]
            };
            let step = |rows: &[Vec<u32>]| {
                let (n, mut cache) = (rows.len(), KvCache::new(n_layers));
                let prompts: Vec<u32> = rows.iter().flat_map(|r| r[..11].to_vec()).collect(); // [n · 11]
                net.next_token_logits_rows(&prompts, n, &mut cache, &mut Hooks::default()).unwrap();
                let last: Vec<u32> = rows.iter().map(|r| r[11]).collect(); // [n · 1]
                net.next_token_logits_rows(&last, n, &mut cache, &mut Hooks::default()).unwrap() // [n, vocab]
            };
            assert_close(step(&rows[..1]), full(&rows[0]), 1e-5);
            let both = step(&rows);
            for (r, tokens) in rows.iter().enumerate() {
                assert_close(both.clone().slice([r..r + 1, 0..2048]), full(tokens), 1e-5);
            }
        });
    }

    /// Small weights, wide products, f16 weights and weights that are strided views stay with burn.
    #[test]
    fn other_products_stay_with_burn() {
        let (x, w) = (matrix(2, 512, 1.0), matrix(512, 512, 0.0));
        assert!(product(&x, &w).is_some() && product(&w, &x.clone().transpose()).is_some());
        assert!(product(&matrix(2, 64, 1.0), &matrix(64, 64, 0.0)).is_none());
        let wide = matrix(MAX_ROWS + 1, 512, 1.0);
        assert!(product(&wide, &w).is_none() && product(&w, &wide.transpose()).is_none());
        assert!(product(&x, &w.clone().cast(FloatDType::F16)).is_none());
        assert!(product(&x, &w.transpose()).is_none());
        assert!(product(&x, &matrix(512, 1024, 0.0).slice([0..512, 0..512])).is_none());
    }

    #[test]
    fn bands_cover_every_index_once() {
        for n in [1, 15, 16, 17, 1000, 50257] {
            for threads in 1..=5 {
                let b = bands(n, threads);
                assert_eq!(b.first().unwrap().start, 0);
                assert_eq!(b.last().unwrap().end, n);
                assert!(b.windows(2).all(|w| w[0].end == w[1].start && w[0].len() % 16 == 0));
            }
        }
    }
}
