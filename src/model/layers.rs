//! The math shared by every architecture: layer norm and RMS norm, linear maps, activations, rotary
//! embeddings and causal attention (grouped-query, soft-capped, sliding-window) with a KV cache. Shapes are
//! written `[batch, seq, ...]`.

use super::config::Activation;
use super::weights::{HostTensor, Weights};
use crate::error::Result;
use burn::tensor::module::{attention, layer_norm};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Device, FloatDType, Int, Tensor, TensorData, activation};

/// Uploads a host tensor of rank `D`.
pub fn upload<const D: usize>(h: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(h.data, h.shape), device)
}

/// A vector as one row, [1, n].
pub fn row_tensor(v: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), device)
}

/// Row or column indices as a device tensor, for `select`.
pub fn index_tensor(ids: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [ids.len()]), device)
}

/// Layer norm (GPT-2, NeoX) or RMS norm (Gemma).
pub struct Norm {
    weight: Tensor<1>,       // [d]
    bias: Option<Tensor<1>>, // [d]; None: RMS norm, no centring
    eps: f64,
}

impl Norm {
    /// Layer norm with `{prefix}.weight` and `{prefix}.bias`.
    pub fn layer(w: &dyn Weights, prefix: &str, d: usize, eps: f64, device: &Device) -> Result<Self> {
        Ok(Self {
            weight: upload(w.get(&format!("{prefix}.weight"), &[d])?, device),
            bias: Some(upload(w.get(&format!("{prefix}.bias"), &[d])?, device)),
            eps,
        })
    }

    /// Gemma's RMS norm: the stored weight is an offset, the gain is `1 + weight`.
    pub fn rms_plus_one(w: &dyn Weights, prefix: &str, d: usize, eps: f64, device: &Device) -> Result<Self> {
        let mut gain = w.get(&format!("{prefix}.weight"), &[d])?;
        gain.data.iter_mut().for_each(|g| *g += 1.0);
        Ok(Self { weight: upload(gain, device), bias: None, eps })
    }

    /// [b, s, d] → [b, s, d]; biased variance, as torch.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match &self.bias {
            // burn's fused op: one pass over each row on the CPU instead of nine tensor ops.
            Some(bias) => layer_norm(x, self.weight.clone(), Some(bias.clone()), self.eps),
            None => {
                let ms = x.clone().square().mean_dim(2); // [b, s, 1]
                x / (ms + self.eps).sqrt() * self.weight.clone().unsqueeze::<3>()
            }
        }
    }
}

/// `x @ weight + bias` with the weight stored `[d_in, d_out]`.
pub struct Linear {
    pub weight: Tensor<2>,       // [d_in, d_out]
    pub bias: Option<Tensor<1>>, // [d_out]
}

impl Linear {
    pub fn new(weight: HostTensor, bias: Option<HostTensor>, device: &Device) -> Self {
        Self { weight: upload(weight, device), bias: bias.map(|b| upload(b, device)) }
    }

    /// Holds the weight in f16 (`device::Precision::F16`); the bias stays f32.
    pub fn half(&mut self) {
        self.weight = self.weight.clone().cast(FloatDType::F16);
    }

    /// [b, s, d_in] → [b, s, d_out], as one [b·s, d_in] × [d_in, d_out] product (one large matrix product
    /// beats b small ones that each re-read the weight).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let x = x.reshape([b * s, d_in]); // [b·s, d_in]
        let y = to_f32(product(in_dtype_of(x, &self.weight), self.weight.clone())).reshape([b, s, d_out]); // [b, s, d_out]
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<3>(),
            None => y,
        }
    }
}

/// `a @ b`; on the CPU a product with a few rows or columns streams the weight once (`cpu_matvec`).
pub fn product(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    if let Some(y) = super::cpu_matvec::product(&a, &b) {
        return y;
    }
    a.matmul(b)
}

/// `x` in `weight`'s float type, for a product with it: an f16 copy for an f16 weight, `x` itself otherwise.
pub fn in_dtype_of<const D: usize, const E: usize>(x: Tensor<D>, weight: &Tensor<E>) -> Tensor<D> {
    match weight.dtype() {
        DType::F16 => x.cast(FloatDType::F16),
        _ => x,
    }
}

/// A product's result back in f32, where everything outside the weights' products stays.
pub fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.cast(FloatDType::F32)
}

/// `cap · tanh(x / cap)`: Gemma-2's soft bound on attention scores and logits.
pub fn softcap<const D: usize>(x: Tensor<D>, cap: Option<f64>) -> Tensor<D> {
    match cap {
        Some(cap) => (x / cap).tanh() * cap,
        None => x,
    }
}

pub fn activate(x: Tensor<3>, act: Activation) -> Tensor<3> {
    match act {
        Activation::Gelu => activation::gelu(x),
        Activation::GeluTanh if super::cpu_gelu::applies(&x.device()) => super::cpu_gelu::gelu_tanh(x),
        Activation::GeluTanh => activation::gelu_approximate(x),
        Activation::Relu => activation::relu(x),
    }
}

/// Transposes a host matrix: [rows, cols] → [cols, rows] (nn.Linear's [out, in] → [in, out]).
pub fn transpose(h: HostTensor) -> HostTensor {
    let (r, c) = (h.shape[0], h.shape[1]);
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = h.data[i * c + j];
        }
    }
    HostTensor::new(vec![c, r], out)
}

/// Rotate-half rotary embedding on the first `dims` of each head (GPT-NeoX).
pub struct Rotary {
    pub dims: usize,
    pub base: f64,
}

impl Rotary {
    /// cos and sin tables for absolute positions `start..start+len`: [1, 1, len, dims].
    fn tables(&self, start: usize, len: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let half = self.dims / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(len * self.dims), Vec::with_capacity(len * self.dims));
        for p in start..start + len {
            // freqs repeated twice, as transformers' cat((freqs, freqs)).
            for _ in 0..2 {
                for i in 0..half {
                    let inv_freq = 1.0 / self.base.powf((2 * i) as f64 / self.dims as f64);
                    let angle = (p as f64 * inv_freq) as f32;
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
        }
        let shape = [1, 1, len, self.dims];
        (Tensor::from_data(TensorData::new(cos, shape), device), Tensor::from_data(TensorData::new(sin, shape), device))
    }

    /// Rotates `x` [b, h, s, d_head] whose first position is `start`.
    pub fn apply(&self, x: Tensor<4>, start: usize) -> Tensor<4> {
        if self.dims == 0 {
            return x;
        }
        let [b, h, s, d_head] = x.dims();
        let (cos, sin) = self.tables(start, s, &x.device());
        let half = self.dims / 2;
        let rot = x.clone().slice([0..b, 0..h, 0..s, 0..self.dims]); // [b, h, s, dims]
        let x1 = rot.clone().slice([0..b, 0..h, 0..s, 0..half]);
        let x2 = rot.clone().slice([0..b, 0..h, 0..s, half..self.dims]);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3); // rotate_half
        let out = rot * cos + rotated * sin;
        if self.dims == d_head {
            out
        } else {
            Tensor::cat(vec![out, x.slice([0..b, 0..h, 0..s, self.dims..d_head])], 3)
        }
    }
}

/// How attention scores are scaled, bounded and masked.
#[derive(Clone, Copy)]
pub struct AttnOptions {
    pub scale: f64,
    pub softcap: Option<f64>,
    /// Each query sees only the last `window` keys (itself included).
    pub window: Option<usize>,
}

/// Causal softmax attention of queries at absolute positions `start..start+s_q` over all `s_k` keys
/// (the cache first). q: [b, h, s_q, d_head], k and v: [b, h_kv, s_k, d_head] where each key/value head serves
/// `h / h_kv` consecutive query heads → [b, s_q, h * d_head].
///
/// One call of burn's fused attention. In a native GPU build, where the scale is the default `1/√d_head` and
/// nothing is soft-capped (GPT-2, Pythia), autotuning runs it as flash attention where that is faster, which
/// never materialises the [b, h, s_q, s_k] scores; on the CPU it is one multi-threaded loop per (row, head).
/// Right-padded batch rows need no mask of their own: causality keeps every real position from seeing the
/// padding after it.
pub fn causal_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, start: usize, opts: AttnOptions) -> Tensor<3> {
    let [b, h, s_q, d_head] = q.dims();
    let (k, v) = (repeat_kv(k, h), repeat_kv(v, h));
    let s_k = k.dims()[2];
    let window = opts.window.unwrap_or(usize::MAX);
    // Query i sits at absolute position start + i and sees keys 0..=start + i (the last `window` of them).
    // The keys are the cache then this step's (s_k = start + s_q), so that is burn's bottom-right-aligned
    // causality, except where a sliding window bites, or for a chunk after a cache (the flash kernels align
    // their causal mask bottom-right only on some tile shapes), which get the mask written out. One query
    // (a decode step) sees every key.
    let window_bites = s_k > window;
    let (mask, is_causal) = if window_bites || (start > 0 && s_q > 1) {
        let mask: Vec<bool> =
            (0..s_q).flat_map(|i| (0..s_k).map(move |j| j > start + i || start + i - j >= window)).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [s_q, s_k]), &q.device())
            .unsqueeze::<4>()
            .expand([b, h, s_q, s_k]);
        (Some(mask), false)
    } else {
        (None, s_q > 1)
    };
    // The default scale keeps the flash kernels eligible; they take no other.
    let default_scale = 1.0 / (d_head as f64).sqrt();
    let scale = ((opts.scale - default_scale).abs() > 1e-12 * default_scale).then_some(opts.scale);
    let options = AttentionModuleOptions { scale, softcap: opts.softcap, is_causal };
    attention(q, k, v, mask, None, options) // [b, h, s_q, d_head]
        .swap_dims(1, 2) // [b, s_q, h, d_head]
        .reshape([b, s_q, h * d_head])
}

/// Grouped-query attention: [b, h_kv, s, d] → [b, h, s, d], each key/value head repeated for its group.
fn repeat_kv(x: Tensor<4>, h: usize) -> Tensor<4> {
    let [b, h_kv, s, d] = x.dims();
    if h_kv == h {
        return x;
    }
    x.unsqueeze_dim::<5>(2).expand([b, h_kv, h / h_kv, s, d]).reshape([b, h, s, d])
}

/// Splits [b, s, h * d_head] into heads: [b, h, s, d_head].
pub fn split_heads(x: Tensor<3>, h: usize) -> Tensor<4> {
    let [b, s, d] = x.dims();
    x.reshape([b, s, h, d / h]).swap_dims(1, 2)
}
