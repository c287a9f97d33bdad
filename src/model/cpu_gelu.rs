//! GPT-2's tanh-approximated GELU (`gelu_new`) on the native CPU backend in one pass over the MLP's hidden
//! activations, on every core. burn's version is eight passes (powf, tanh, ...) of one-element library calls on one
//! core, which made it a fifth of a GPT-2 forward pass on the CPU. GPUs keep burn's (fused there).
//!
//! 0.5·x·(1 + tanh(z)) = x·sigmoid(2z) = x / (1 + e^(−2z)), z = √(2/π)·(x + 0.044715·x³), with e^y from a
//! degree-7 polynomial after range reduction (relative error below 1e-7, like the f32 library's).

use burn::tensor::{Device, Tensor};

/// Whether `x` lives on the native CPU backend, where `gelu_tanh` is worth its read and write.
pub fn applies(device: &Device) -> bool {
    !cfg!(target_arch = "wasm32") && *device == Device::flex()
}

/// gelu_new of every element of a CPU tensor.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let mut data = x.into_data(); // the backend's own buffer: no copy when unshared
    match data.as_mut_slice::<f32>() {
        Ok(values) => for_each_part(values, |part| part.iter_mut().for_each(|v| *v = gelu_tanh_one(*v))),
        Err(_) => unreachable!("models run in f32"),
    }
    Tensor::from_data(data, &device)
}

/// Runs `f` over `values` cut into one part per core.
fn for_each_part(values: &mut [f32], f: impl Fn(&mut [f32]) + Sync) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = values.len().div_ceil(cores).max(1 << 14);
    if values.len() <= part {
        return f(values);
    }
    std::thread::scope(|s| {
        for chunk in values.chunks_mut(part) {
            let f = &f;
            s.spawn(move || f(chunk));
        }
    });
}

#[inline]
fn gelu_tanh_one(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let z = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * z))
}

/// e^y for f32: y = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial to r⁷ (Horner), 2^n by exponent bits.
#[inline]
fn exp(y: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let y = y.clamp(-87.0, 88.0); // e^±88 stays finite; beyond it GELU is x or 0 to f32 precision anyway
    let n = (y * std::f32::consts::LOG2_E).round();
    let r = y - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the f64 formula torch's gelu_new computes, over the range activations take and beyond.
    #[test]
    fn matches_the_tanh_formula() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x32 = i as f32 * 1e-4; // -20 .. 20, the exact f32 inputs
            let x = x32 as f64;
            let want = 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
            let got = gelu_tanh_one(x32) as f64;
            worst = worst.max((got - want).abs() / want.abs().max(1e-3));
        }
        // f32's own rounding of z (|z| up to ~10 where GELU is tiny) costs up to 2·|z|·2⁻²⁴ in e^(−2z).
        assert!(worst < 3e-6, "relative error {worst}");
        for y in [-100.0f32, -87.0, -10.0, -1.0, 0.0, 0.3, 1.0, 10.0, 88.0, 100.0] {
            let (got, want) = (exp(y) as f64, (y.clamp(-87.0, 88.0) as f64).exp());
            assert!((got - want).abs() <= 2e-7 * want, "exp({y}) = {got}, not {want}");
        }
    }

    /// The tensor version equals burn's on the CPU (several parts, odd sizes).
    #[test]
    fn equals_burn_on_the_cpu() {
        let device = Device::flex();
        let n = 3 * (1 << 14) + 7;
        let values: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.013).sin() * 6.0).collect();
        let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(values, [n, 1]), &device);
        assert!(applies(&device));
        let ours = gelu_tanh(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let burn = burn::tensor::activation::gelu_approximate(x).into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&burn) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
