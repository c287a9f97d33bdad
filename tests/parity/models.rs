//! Parity with Hugging Face transformers on tiny random models in the real hub layout
//! (scripts/make_fixtures.py): tokens exactly, logits to 1e-3 absolute, residuals to 1e-4 relative,
//! steered logits and greedy generations (with KV cache), on the CPU and on wgpu.

use crate::common::*;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use steerlab::device::{Precision, has_f16, read};
use steerlab::model::Model;
use steerlab::model::generate::{GenerateOptions, generate};
use steerlab::model::hooks::{HookPoint, Hooks};
use steerlab::model::kv_cache::KvCache;
use steerlab::model::layers::{AttnOptions, causal_attention};
use steerlab::steer::apply::intervention;

fn check_logits(what: &str, logits: &[f32], vocab: usize, exp: &Expected, key: &str) {
    let ids = exp.i64("logit_ids");
    let picked = pick_cols(logits, vocab, &ids);
    let d = max_abs_diff(&picked, &exp.f32(&format!("{key}.logits")));
    assert!(d <= 1e-3, "{what}: logits differ by {d}");
    let d = max_abs_diff(&logsumexp_rows(logits, vocab), &exp.f32(&format!("{key}.logsumexp")));
    assert!(d <= 1e-3, "{what}: logsumexp over the vocabulary differs by {d}");
}

fn check_model(name: &str) {
    let exp = Expected::load(name);
    for (dev_name, device) in devices() {
        let model = Model::from_dir(&model_dir(name), &device).unwrap();
        let n_layers = model.cfg().n_layers;
        let vocab = model.cfg().vocab_size;
        let steer_hook = exp.meta("steer_hook");
        let steer_coef: f32 = exp.meta("steer_coef").parse().unwrap();
        let sv = exp.f32("steering_vector");
        for (p, prompt) in exp.prompts().iter().enumerate() {
            let what = format!("{name} on {dev_name}, prompt {p} {prompt:?}");
            let tokens = model.encode(prompt, false).unwrap();
            assert_eq!(tokens, exp.u32(&format!("p{p}.tokens")), "{what}: tokens");

            let mut points: Vec<HookPoint> =
                (0..n_layers).flat_map(|l| [HookPoint::ResidPre(l), HookPoint::ResidMid(l)]).collect();
            points.extend([HookPoint::ResidPost(n_layers - 1), HookPoint::LnFinal]);
            let mut hooks = Hooks::capturing(points.clone());
            let logits = pollster::block_on(read(model.forward(&tokens, &mut hooks).unwrap())).unwrap();
            check_logits(&what, &logits.data, vocab, &exp, &format!("p{p}"));
            for point in points {
                let got = pollster::block_on(read(hooks.take(point).unwrap())).unwrap();
                let d = rel_diff(&got.data, &exp.f32(&format!("p{p}.{point}")));
                assert!(d <= 1e-4, "{what}: {point} differs by {d} (relative)");
            }

            let steer = || vec![intervention(&model, &steer_hook, &sv, steer_coef, 0).unwrap()];
            let mut hooks = Hooks::steering(steer());
            let logits = pollster::block_on(read(model.forward(&tokens, &mut hooks).unwrap())).unwrap();
            check_logits(&format!("{what}, steered"), &logits.data, vocab, &exp, &format!("p{p}.steered"));

            let from: usize = exp.meta("steer_from").parse().unwrap();
            let mut hooks = Hooks::steering(vec![intervention(&model, &steer_hook, &sv, steer_coef, from).unwrap()]);
            let logits = pollster::block_on(read(model.forward(&tokens, &mut hooks).unwrap())).unwrap();
            check_logits(
                &format!("{what}, steered from {from}"),
                &logits.data,
                vocab,
                &exp,
                &format!("p{p}.steered_from"),
            );

            // The same pass in two pieces through the KV cache gives the same logits for the second.
            if tokens.len() > 1 {
                let split = tokens.len() / 2;
                let mut cache = KvCache::new(n_layers);
                let mut hooks = Hooks::steering(steer());
                model.net.forward(&tokens[..split], &mut cache, &mut hooks).unwrap();
                let tail =
                    pollster::block_on(read(model.net.forward(&tokens[split..], &mut cache, &mut hooks).unwrap()))
                        .unwrap();
                let whole = pick_cols(&tail.data, vocab, &exp.i64("logit_ids"));
                let want = exp.f32(&format!("p{p}.steered.logits"));
                let d = max_abs_diff(&whole, &want[split * whole.len() / (tokens.len() - split)..]);
                assert!(d <= 1e-3, "{what}: logits through the KV cache differ by {d}");
            }

            let opts = GenerateOptions { max_new_tokens: 8, ..Default::default() };
            for (key, interventions) in [("greedy", vec![]), ("steered_greedy", steer())] {
                let mut hooks = Hooks::steering(interventions);
                let got = pollster::block_on(generate(&model, &tokens, &mut hooks, &opts, |_| true)).unwrap();
                assert_eq!(got, exp.u32(&format!("p{p}.{key}")), "{what}: {key} generation");
            }
        }
    }
}

#[test]
fn gpt2_f32_bare_keys_with_mask_buffers() {
    check_model("gpt2-tiny");
}

#[test]
fn gpt2_bf16_prefixed_keys() {
    check_model("gpt2-tiny-bf16-prefixed");
}

#[test]
fn pythia_f16_parallel_residual_older_config_keys() {
    check_model("pythia-tiny-f16-parallel");
}

#[test]
fn pythia_f32_sequential_residual_newer_config_keys() {
    check_model("pythia-tiny-f32-sequential");
}

#[test]
fn gemma2_hub_config_keys_sharded_checkpoint() {
    check_model("gemma2-tiny");
}

#[test]
fn gemma2_layer_types_and_rope_parameters() {
    check_model("gemma2-tiny-layer-types");
}

/// What f16 weights may cost: logits within this share of the reference's largest |logit|. f16 keeps 11
/// significant bits (a relative step of 4.9e-4 per rounding); the products accumulate them over the layers.
const F16_TOLERANCE: f32 = 1e-2;

/// f16 weights (`Precision::F16`) on every device with f16 arithmetic, every fixture architecture: plain,
/// steered and KV-cached logits within F16_TOLERANCE of transformers' f32 ones — and not the f32 run's own
/// logits, so the weights really are f16.
#[test]
fn f16_weights_stay_within_tolerance_of_transformers() {
    let mut checked = Vec::new();
    for name in ["gpt2-tiny", "pythia-tiny-f32-sequential", "pythia-tiny-f16-parallel", "gemma2-tiny"] {
        let exp = Expected::load(name);
        for (dev_name, device) in devices() {
            if !has_f16(&device) {
                eprintln!("{dev_name} has no f16 arithmetic: skipped");
                continue;
            }
            let full = Model::from_dir(&model_dir(name), &device).unwrap();
            let half = Model::from_dir(&model_dir(name), &device).unwrap().with_precision(Precision::F16).unwrap();
            assert_eq!((full.precision(), half.precision()), (Precision::F32, Precision::F16));
            let vocab = half.cfg().vocab_size;
            let ids = exp.i64("logit_ids");
            let sv = exp.f32("steering_vector");
            let coef: f32 = exp.meta("steer_coef").parse().unwrap();
            for (p, prompt) in exp.prompts().iter().enumerate() {
                let what = format!("{name} in f16 on {dev_name}, prompt {p}");
                let tokens = half.encode(prompt, false).unwrap();
                for (key, steer) in [("logits", false), ("steered.logits", true)] {
                    let run = |m: &Model| {
                        let steering = if steer {
                            vec![intervention(m, &exp.meta("steer_hook"), &sv, coef, 0).unwrap()]
                        } else {
                            vec![]
                        };
                        let logits = m.forward(&tokens, &mut Hooks::steering(steering)).unwrap();
                        pick_cols(&pollster::block_on(read(logits)).unwrap().data, vocab, &ids)
                    };
                    let (got, f32_run) = (run(&half), run(&full));
                    let want = exp.f32(&format!("p{p}.{key}"));
                    let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    let d = max_abs_diff(&got, &want);
                    assert!(d <= F16_TOLERANCE * scale, "{what}: {key} differ by {d} (largest |logit| {scale})");
                    assert!(max_abs_diff(&got, &f32_run) > 0.0, "{what}: {key} equal the f32 run's");
                }
                // Through the KV cache: the second half of the prompt after the first.
                if tokens.len() > 1 {
                    let split = tokens.len() / 2;
                    let mut cache = KvCache::new(half.cfg().n_layers);
                    half.net.forward(&tokens[..split], &mut cache, &mut Hooks::default()).unwrap();
                    let tail = half.net.forward(&tokens[split..], &mut cache, &mut Hooks::default()).unwrap();
                    let got = pick_cols(&pollster::block_on(read(tail)).unwrap().data, vocab, &ids);
                    let want = exp.f32(&format!("p{p}.logits"));
                    let want = &want[split * got.len() / (tokens.len() - split)..];
                    let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    let d = max_abs_diff(&got, want);
                    assert!(d <= F16_TOLERANCE * scale, "{what}: logits through the KV cache differ by {d}");
                }
            }
            checked.push(format!("{name} on {dev_name}"));
        }
    }
    eprintln!("f16 checked: {checked:?}");
}

/// Attention written out position by position on the host: query i (absolute position start + i) over the keys
/// it may see, key head `qh / (h / h_kv)` for query head `qh`. q [b, h, s_q, d], k, v [b, h_kv, s_k, d] →
/// [b, s_q, h·d].
fn attention_by_hand(q: &[f32], k: &[f32], v: &[f32], dims: [usize; 5], start: usize, opts: AttnOptions) -> Vec<f32> {
    let [b, h, h_kv, s_q, d] = dims;
    let s_k = start + s_q;
    let window = opts.window.unwrap_or(usize::MAX);
    let mut out = vec![0.0; b * s_q * h * d];
    for (bi, qh, i) in (0..b).flat_map(|bi| (0..h).flat_map(move |qh| (0..s_q).map(move |i| (bi, qh, i)))) {
        let kh = qh / (h / h_kv);
        let qi = &q[((bi * h + qh) * s_q + i) * d..][..d];
        let key = |j: usize| ((bi * h_kv + kh) * s_k + j) * d;
        let seen: Vec<usize> = (0..s_k).filter(|&j| j <= start + i && start + i - j < window).collect();
        let scores: Vec<f64> = seen
            .iter()
            .map(|&j| {
                let dot: f64 = (0..d).map(|t| qi[t] as f64 * k[key(j) + t] as f64).sum::<f64>() * opts.scale;
                opts.softcap.map_or(dot, |c| c * (dot / c).tanh())
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        for t in 0..d {
            let value: f64 = seen.iter().zip(&weights).map(|(&j, w)| w * v[key(j) + t] as f64).sum();
            out[((bi * s_q + i) * h + qh) * d + t] = (value / total) as f32;
        }
    }
    out
}

/// Values in [-2, 2), seeded: enough spread for peaked and flat softmaxes.
fn uniform_values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

/// Every way the mask is chosen (burn's causality for a prompt, none for a decode step, written out for a chunk
/// after a cache or a sliding window that bites) with grouped-query heads, a soft-cap and a scale other than
/// 1/√d, against the sum written out: on the CPU, and on wgpu where there is an adapter (the GPU's attention
/// kernels are other code).
#[test]
fn causal_attention_matches_attention_by_hand() {
    let devices: Vec<Device> = devices().into_iter().map(|(_, device)| device).collect();
    let default = |d: usize| AttnOptions { scale: 1.0 / (d as f64).sqrt(), softcap: None, window: None };
    // (b, h, h_kv, s_q, start, d, options)
    let cases = [
        (2, 4, 4, 6, 0, 8, default(8)),
        (2, 4, 4, 1, 5, 8, default(8)),
        (1, 4, 2, 3, 4, 8, default(8)),
        (2, 4, 2, 7, 0, 4, AttnOptions { scale: 0.3, softcap: Some(5.0), window: Some(3) }),
        (1, 2, 1, 2, 6, 4, AttnOptions { scale: 0.7, softcap: Some(2.0), window: Some(4) }),
    ];
    for (device, (n, (b, h, h_kv, s_q, start, d, opts))) in
        devices.iter().flat_map(|device| cases.into_iter().enumerate().map(move |case| (device, case)))
    {
        let s_k = start + s_q;
        let seed = 3 * n as u64;
        let (q, k, v) = (
            uniform_values(b * h * s_q * d, seed),
            uniform_values(b * h_kv * s_k * d, seed + 1),
            uniform_values(b * h_kv * s_k * d, seed + 2),
        );
        let t = |data: &[f32], heads: usize, s: usize| {
            Tensor::<4>::from_data(TensorData::new(data.to_vec(), [b, heads, s, d]), device)
        };
        let got = causal_attention(t(&q, h, s_q), t(&k, h_kv, s_k), t(&v, h_kv, s_k), start, opts);
        let got = pollster::block_on(read(got)).unwrap().data;
        let expected = attention_by_hand(&q, &k, &v, [b, h, h_kv, s_q, d], start, opts);
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{device:?}, case {n}, element {i}: {g} vs {e}");
        }
    }
}
