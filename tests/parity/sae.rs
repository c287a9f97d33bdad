//! SAE parity with sae-lens (scripts/make_sae_fixtures.py): random standard, JumpReLU and TopK SAEs as
//! sae-lens saves them (also with each input normalisation and TopK decoder-norm rescaling), and its
//! encodings and reconstructions of probe vectors (the zero vector first), to 1e-5 (relative to the largest
//! value), on the CPU and on wgpu.

use crate::common::*;
use burn::tensor::{Tensor, TensorData};
use std::path::PathBuf;
use steerlab::device::read;
use steerlab::model::Model;
use steerlab::sae::Sae;

fn sae_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes").join(name)
}

const SAES: [&str; 10] = [
    "standard",
    "jumprelu",
    "topk",
    "standard-constant-norm",
    "jumprelu-layer-norm",
    "standard-expected-average",
    "topk-rescaled",
    "sparsify/layers.1", // EleutherAI sparsify layout, converted on load
    // Gemma Scope params.npz (np.savez, stored; np.savez_compressed, deflated), converted on load
    "gemma-scope-res/layer_1/width_96/average_l0_9",
    "gemma-scope-res/layer_1/width_96/compressed/params.npz",
];

#[test]
fn encodings_match_sae_lens() {
    for (dev_name, device) in devices() {
        for name in SAES {
            let dir = sae_dir(name.trim_end_matches("/params.npz"));
            let exp = Expected::from_file(&dir.join("expected.safetensors"));
            let sae = Sae::from_dir(&sae_dir(name), &device).unwrap();
            let probes = exp.f32("probes");
            let n = probes.len() / sae.cfg.d_in;
            let x = Tensor::<2>::from_data(TensorData::new(probes, [n, sae.cfg.d_in]), &device);
            let (acts, rec) = sae.reconstruct(x);
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
    let sparsify = Sae::from_dir(&sae_dir("sparsify/layers.1"), &cpu).unwrap();
    assert_eq!(sparsify.check_fits(model.cfg()).unwrap().to_string(), "blocks.1.hook_resid_post");
    let gemma = Sae::from_dir(&sae_dir("gemma-scope-res/layer_1/width_96/average_l0_9"), &cpu).unwrap();
    assert_eq!(gemma.check_fits(model.cfg()).unwrap().to_string(), "blocks.1.hook_resid_post");
}

/// A damaged Gemma Scope archive is refused with a message naming the file, never half-loaded.
#[test]
fn corrupt_npz_is_named() {
    let dir = std::env::temp_dir().join(format!("steerlab-npz-{}/layer_1", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read(sae_dir("gemma-scope-res/layer_1/width_96/compressed/params.npz")).unwrap();
    let cpu = burn::tensor::Device::flex();
    let load = |bytes: &[u8]| {
        std::fs::write(dir.join("params.npz"), bytes).unwrap();
        Sae::from_dir(&dir, &cpu).err().expect("a damaged archive must not load").to_string()
    };
    let e = load(&good[..good.len() / 2]);
    assert!(e.contains("params.npz: not a valid .npz (zip) archive"), "{e}");
    let mut flipped = good.clone();
    flipped[200] ^= 0xFF; // inside the first member's deflated data
    let e = load(&flipped);
    assert!(e.contains("params.npz: tensor `") && (e.contains("checksum") || e.contains("inflate")), "{e}");
}

#[test]
fn sae_encode_cli_writes_acts_and_reconstruction() {
    let dir = std::env::temp_dir().join(format!("steerlab-sae-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exp_path = sae_dir("topk").join("expected.safetensors");
    let out = dir.join("enc.safetensors");
    let run = |tensor: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_steerlab"))
            .args(["sae-encode", "--sae", sae_dir("topk").to_str().unwrap(), "--input", exp_path.to_str().unwrap()])
            .args(["--tensor", tensor, "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = run("probes");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = Expected::from_file(&out);
    let exp = Expected::from_file(&exp_path);
    assert!(rel_diff(&got.f32("feature_acts"), &exp.f32("feature_acts")) <= 1e-5);
    assert!(rel_diff(&got.f32("reconstruction"), &exp.f32("reconstruction")) <= 1e-5);
    let (x, rec) = (exp.f32("probes"), exp.f32("reconstruction"));
    let mse: Vec<f32> = x
        .chunks(32)
        .zip(rec.chunks(32))
        .map(|(a, b)| a.iter().zip(b).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / 32.0)
        .collect();
    assert!(rel_diff(&got.f32("mse"), &mse) <= 1e-4, "per-vector reconstruction error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("fraction of variance unexplained"));

    // feature_acts is [6, 96]: not vectors of this SAE's d_in = 32.
    let o = run("feature_acts");
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("input of shape [6, 96] does not fit this SAE: expected [n, 32] or [32]"), "{e}");
    let o = run("nothing");
    assert!(String::from_utf8_lossy(&o.stderr).contains("tensor `nothing`: missing"));
}

/// Feature edits against torch's pseudo-inverse projection (scripts/make_decomposition_fixtures.py): the vector
/// restricted to a feature set's decoder span, and the vector minus it, repeats included; bad edits say why.
#[test]
fn feature_edits_match_the_pseudo_inverse_projection() {
    use steerlab::sae::edit::{EditMode, FeatureEdit, parse_features};
    let exp = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors"));
    let sets: Vec<Vec<usize>> = serde_json::from_str(&exp.meta("sets")).unwrap();
    let v = exp.f32("vector");
    for (dev_name, device) in devices() {
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        for (i, features) in sets.iter().enumerate() {
            for (mode, key) in [(EditMode::Keep, "keep"), (EditMode::Remove, "remove")] {
                let edit = FeatureEdit { features: features.clone(), mode };
                let got = pollster::block_on(sae.edit(&v, &edit)).unwrap();
                let want = exp.f32(&format!("{key}.{i}"));
                let d = max_abs_diff(&got, &want);
                assert!(d <= 1e-5, "{} on {dev_name}: differs by {d}", edit.label());
            }
        }
        let e = pollster::block_on(sae.edit(&v, &FeatureEdit { features: vec![1 << 20], mode: EditMode::Keep }));
        assert!(e.unwrap_err().to_string().contains("feature 1048576 does not exist"));
        let e = pollster::block_on(sae.edit(&v, &FeatureEdit { features: vec![], mode: EditMode::Remove }));
        assert!(e.unwrap_err().to_string().contains("an edit needs at least one feature"));
    }
    assert_eq!(parse_features("12, #345 7").unwrap(), vec![12, 345, 7]);
    assert!(parse_features("12, x").unwrap_err().to_string().contains("\"x\" is not a feature number"));
}

/// Gradient pursuit, signed and non-negative, against an independent float64 implementation
/// (scripts/make_decomposition_fixtures.py) on a decoder whose rows are not orthogonal, so every line-search
/// step is a real one: the coefficients and the fit after each k.
#[test]
fn gradient_pursuit_matches_an_independent_reference() {
    let exp = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors"));
    let ks: Vec<usize> = serde_json::from_str(&exp.meta("ks")).unwrap();
    let v = exp.f32("vector");
    for (dev_name, device) in devices() {
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        for (signed, name) in [(true, "signed"), (false, "nonneg")] {
            let got = pollster::block_on(sae.gradient_pursuit(&v, &ks, signed, &|| Ok(()))).unwrap();
            for (k, d) in got {
                let coefs = exp.f32(&format!("pursuit.{name}.k{k}.coefs"));
                let fit = exp.f32(&format!("pursuit.{name}.k{k}.fit"));
                let (dc, df) = (max_abs_diff(&d.coefs, &coefs), max_abs_diff(&d.vector, &fit));
                assert!(dc <= 1e-4 && df <= 1e-5, "{name} k = {k} on {dev_name}: coefs differ by {dc}, fit by {df}");
                assert_eq!(d.active(), coefs.iter().filter(|c| **c != 0.0).count(), "{name} k = {k}: support");
            }
        }
    }
}

/// Signed projections and anti-aligned partners on an untied SAE (W_enc ≠ W_decᵀ), against sae-lens's encoding
/// and float64 projections (scripts/make_decomposition_fixtures.py): encoder and decoder projections,
/// pre-activations, activations, the negative share, each negative feature's partner and cosine, and what each
/// pair fires on over positive and negative prompts.
#[test]
fn signed_projections_match_the_reference_on_an_untied_sae() {
    use steerlab::analysis::projections::{partner_activations, signed_projections};
    use steerlab::model::weights::HostTensor;
    let exp = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors"));
    let top: usize = serde_json::from_str(&exp.meta("top")).unwrap();
    let v = exp.f32("vector");
    let [encoder, decoder, pre, acts] = ["encoder", "decoder", "pre", "acts"].map(|k| exp.f32(&format!("proj.{k}")));
    for (dev_name, device) in devices() {
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        let p = pollster::block_on(signed_projections(&sae, &v, top)).unwrap();
        assert_eq!(p.top.len(), top);
        for r in &p.top {
            let f = r.feature;
            let got = [r.encoder, r.decoder, r.pre_activation, r.activation];
            let want = [encoder[f], decoder[f], pre[f], acts[f]];
            assert!(max_abs_diff(&got, &want) <= 1e-5, "feature {f} on {dev_name}: {got:?} vs {want:?}");
            assert_eq!(r.dropped, acts[f] == 0.0);
        }
        // The top rows are the largest |decoder projection|.
        let mut by_size: Vec<usize> = (0..decoder.len()).collect();
        by_size.sort_by(|&a, &b| decoder[b].abs().total_cmp(&decoder[a].abs()));
        assert_eq!(p.top.iter().map(|r| r.feature).collect::<Vec<_>>(), by_size[..top]);
        let share = exp.f32("proj.negative_share")[0];
        assert!((p.negative_share - share).abs() <= 1e-5, "negative share on {dev_name}");
        let features: Vec<u32> = p.partners.iter().map(|q| q.feature as u32).collect();
        let partners: Vec<u32> = p.partners.iter().map(|q| q.partner as u32).collect();
        assert_eq!(features, exp.u32("proj.partner_features"), "negative features on {dev_name}");
        assert_eq!(partners, exp.u32("proj.partners"), "partners on {dev_name}");
        let cosines: Vec<f32> = p.partners.iter().map(|q| q.cosine).collect();
        assert!(max_abs_diff(&cosines, &exp.f32("proj.partner_cosines")) <= 1e-5);
        for q in &p.partners {
            assert!((q.partner_activation - acts[q.partner]).abs() <= 1e-5 && q.fires == (acts[q.partner] > 0.0));
        }
        // What each pair fires on in real activations: probes rows 2-3 stand for positive prompts, 4-5 negative.
        let probes = Expected::from_file(&sae_dir("standard").join("expected.safetensors")).f32("probes");
        let rows =
            |r: std::ops::Range<usize>| HostTensor::new(vec![r.len(), 32], probes[r.start * 32..r.end * 32].to_vec());
        let mut p = p;
        pollster::block_on(partner_activations(&sae, &mut p, &rows(2..4), &rows(4..6))).unwrap();
        let on =
            |q: &steerlab::analysis::projections::Partner| [q.on_positive.unwrap(), q.on_negative.unwrap()].concat();
        let got: Vec<f32> = p.partners.iter().flat_map(on).collect();
        let (pos, neg) = (exp.f32("proj.partner_on_positive"), exp.f32("proj.partner_on_negative"));
        let want: Vec<f32> = pos.chunks(2).zip(neg.chunks(2)).flat_map(|(a, b)| [a, b].concat()).collect();
        assert!(max_abs_diff(&got, &want) <= 1e-5, "partner activations on prompts, {dev_name}");
    }
}

/// The default-component strips' extra marks (Mayne et al.'s Fig. 3): b_enc[f], and the feature's activation on
/// the vector and on the rescaled vector, against sae-lens (scripts/make_decomposition_fixtures.py).
#[test]
fn default_components_carry_bias_and_activations() {
    use steerlab::analysis::corpus::CorpusStats;
    use steerlab::analysis::defaults::default_components;
    use steerlab::model::weights::HostTensor;
    let exp = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors"));
    let scale: f32 = serde_json::from_str(&exp.meta("rescale")).unwrap();
    let v = exp.f32("vector");
    let [bias, acts, rescaled] = ["b_enc", "acts", "acts_rescaled"].map(|k| exp.f32(&format!("proj.{k}")));
    // Features that fire on the vector, on the rescaled vector only, and on neither.
    let fires = |a: &[f32], f: usize| a[f] > 0.0;
    let pick = |want: &dyn Fn(usize) -> bool| (0..acts.len()).find(|&f| want(f)).unwrap();
    let features = [
        pick(&|f| fires(&acts, f)),
        pick(&|f| !fires(&acts, f) && fires(&rescaled, f)),
        pick(&|f| !fires(&acts, f) && !fires(&rescaled, f)),
    ];
    let corpus = CorpusStats::of_rows(&HostTensor::new(vec![1, v.len()], v.clone()), 200);
    for (dev_name, device) in devices() {
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        let d = pollster::block_on(default_components(&sae, &features, &corpus, None, None, &v, scale)).unwrap();
        for c in &d {
            let f = c.feature;
            let got = [c.bias, c.activation, c.rescaled_activation];
            let want = [bias[f], acts[f], rescaled[f]];
            assert!(max_abs_diff(&got, &want) <= 1e-5, "feature {f} on {dev_name}: {got:?} vs {want:?}");
            assert_eq!(c.scale, scale);
        }
    }
}

/// Vectors against encode(0) (Mayne et al.'s Table 1): the cosine of their encodings with encode(0) and the share
/// of top features they share, against sae-lens's encodings (scripts/make_decomposition_fixtures.py).
#[test]
fn vectors_against_encode_zero_match_sae_lens() {
    use steerlab::analysis::bias::vectors_vs_zero;
    let exp = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors"));
    let (scale, top): (f32, usize) =
        (serde_json::from_str(&exp.meta("rescale")).unwrap(), serde_json::from_str(&exp.meta("top")).unwrap());
    let v = exp.f32("vector");
    let vectors = [("v".to_string(), v.clone()), ("rescaled".to_string(), v.iter().map(|x| x * scale).collect())];
    let (cos, overlap) = (exp.f32("proj.cos_zero"), exp.f32("proj.overlap_zero"));
    for (dev_name, device) in devices() {
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        let rows = pollster::block_on(vectors_vs_zero(&sae, &vectors, top)).unwrap();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.name, vectors[i].0);
            assert!(
                (r.cosine_with_zero - cos[i]).abs() <= 1e-5,
                "{} on {dev_name}: {} vs {}",
                r.name,
                r.cosine_with_zero,
                cos[i]
            );
            assert_eq!(r.top_k_overlap, overlap[i], "{} on {dev_name}", r.name);
        }
        assert!(rows[0].cosine_with_zero > rows[1].cosine_with_zero, "a longer vector moves away from encode(0)");
    }
}

/// The diagnostics give the same numbers on every device (gradient pursuit's scatter and argmax included).
#[test]
fn decompose_agrees_across_devices() {
    use steerlab::analysis::{DecomposeOptions, decompose};
    use steerlab::steer::builtin::{CORPUS, corpus_passages};
    let corpus = corpus_passages(CORPUS);
    let sv = Expected::load("gpt2-tiny").f32("caa.blocks.1.hook_resid_pre");
    use steerlab::sae::edit::{EditMode, FeatureEdit};
    let edits = [EditMode::Keep, EditMode::Remove].map(|mode| FeatureEdit { features: vec![3, 7], mode });
    let opts = DecomposeOptions {
        corpus: &corpus[..4],
        pairs: None,
        eval: None,
        multipliers: &[],
        ks: &[1, 4, 16],
        top: 8,
        edits: &edits,
    };
    let mut results = Vec::new();
    for (dev_name, device) in devices() {
        let model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
        let sae = Sae::from_dir(&sae_dir("jumprelu"), &device).unwrap();
        results.push((dev_name, pollster::block_on(decompose(&model, &sae, &sv, &opts)).unwrap()));
    }
    let (_, cpu) = &results[0];
    assert_eq!(cpu.table.len(), 2 + 2 + 3 + 1 + 6);
    // The edits split the vector into orthogonal parts: ‖kept‖² + ‖removed‖² = ‖SV‖².
    let (kept, removed) = (&cpu.table[1], &cpu.table[2]);
    assert_eq!((kept.method.as_str(), kept.features), ("SV restricted to features 3, 7", Some(2)));
    assert_eq!(removed.method, "SV minus features 3, 7");
    let sv_norm = cpu.table[0].norm;
    let split = (kept.norm.powi(2) + removed.norm.powi(2)).sqrt();
    assert!((split - sv_norm).abs() <= 1e-4 * sv_norm, "{split} vs {sv_norm}");
    for (dev_name, d) in &results[1..] {
        let nums = |d: &steerlab::analysis::Decomposition| -> Vec<f32> {
            d.table.iter().flat_map(|r| [r.norm, r.cosine]).chain(d.bias.cosine_with_zero.clone()).collect()
        };
        let diff = max_abs_diff(&nums(d), &nums(cpu));
        assert!(diff < 1e-3, "{dev_name}: diagnostics differ from the CPU's by {diff}");
        let feats =
            |d: &steerlab::analysis::Decomposition| d.projections.top.iter().map(|p| p.feature).collect::<Vec<_>>();
        assert_eq!(feats(d), feats(cpu), "{dev_name}: different top projections");
        let active = |d: &steerlab::analysis::Decomposition| d.table.iter().map(|r| r.features).collect::<Vec<_>>();
        assert_eq!(active(d), active(cpu), "{dev_name}: different feature counts");
    }
}

/// Logit lens, output and input scores (Arad et al. 2025) against the paper's method run with transformers and
/// sae-lens (scripts/make_feature_fixtures.py), for three settings of lens size and amplification.
#[test]
fn feature_scores_match_the_papers_method() {
    use steerlab::analysis::features::{ScoreOptions, feature_scores};
    use steerlab::steer::builtin::{CORPUS, corpus_passages};
    let corpus = corpus_passages(CORPUS);
    let features: Vec<usize> = (0..8).collect();
    // The standard SAE in three settings; two that normalise their input (the amplified feature is scaled back
    // as decoding it does) in one.
    for (sae_name, (dev_name, device)) in ["standard", "standard-constant-norm", "jumprelu-layer-norm"]
        .into_iter()
        .flat_map(|s| devices().into_iter().map(move |d| (s, d)))
    {
        let exp = Expected::from_file(&sae_dir(sae_name).join("scores.safetensors"));
        let variants: serde_json::Value = serde_json::from_str(&exp.meta("variants")).unwrap();
        let dev_name = format!("{sae_name} on {dev_name}");
        let model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
        let sae = Sae::from_dir(&sae_dir(sae_name), &device).unwrap();
        for (prefix, v) in variants.as_object().unwrap() {
            let opts = ScoreOptions {
                prompt: &exp.meta("prompt"),
                lens_k: v[0].as_u64().unwrap() as usize,
                amplification: v[1].as_f64().unwrap() as f32,
                corpus: &corpus,
                max_examples: 100,
            };
            let mut got = pollster::block_on(feature_scores(&model, &sae, &features, &opts)).unwrap();
            got.sort_by_key(|s| s.feature);
            let at = |name: &str| format!("{prefix}{name}");
            if prefix.is_empty() {
                let lens: Vec<u32> = got.iter().flat_map(|s| s.lens.iter().map(|t| t.id)).collect();
                assert_eq!(lens, exp.u32("lens_ids"), "logit-lens tokens on {dev_name}");
            }
            let scores: Vec<f32> = got.iter().map(|s| s.output_score).collect();
            let d = rel_diff(&scores, &exp.f32(&at("output_score")));
            assert!(d <= 1e-3, "{prefix}output scores on {dev_name} differ by {d} (relative)");
            for (s, &want) in got.iter().zip(&exp.u32(&at("output_rank"))) {
                let slack = 2.max(want as usize / 100);
                assert!(
                    s.output_rank.abs_diff(want as usize) <= slack,
                    "{prefix}rank of {}: {} vs {want}",
                    s.feature,
                    s.output_rank
                );
            }
            let examples: Vec<usize> = got.iter().map(|s| s.examples).collect();
            assert_eq!(examples, exp.u32(&at("examples")).iter().map(|&e| e as usize).collect::<Vec<_>>());
            let input: Vec<f32> = got.iter().map(|s| s.input_score.unwrap_or(f32::NAN)).collect();
            let want = exp.f32(&at("input_score"));
            assert!(
                input.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-6 || (a.is_nan() && b.is_nan())),
                "{prefix}input scores {input:?} vs {want:?}"
            );
        }
    }
}

/// Side-effect predictors, measurements and the predictors' rank correlations (our own formulation after Duan
/// 2026) against the same computed with transformers and sae-lens (scripts/make_side_effect_fixtures.py).
#[test]
fn side_effects_match_the_reference() {
    let exp = Expected::from_file(&sae_dir("standard").join("side_effects.safetensors"));
    let features: Vec<usize> = serde_json::from_str(&exp.meta("features")).unwrap();
    let prompts: Vec<String> = serde_json::from_str(&exp.meta("prompts")).unwrap();
    let strength: f32 = serde_json::from_str(&exp.meta("strength")).unwrap();
    let lens_k: usize = serde_json::from_str(&exp.meta("lens_k")).unwrap();
    for (dev_name, device) in devices() {
        let model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        // The engine's Features request over the built-in corpus, whose input scores' pass also feeds the side
        // effects.
        let mut engine = steerlab::engine::Engine::default();
        engine.set_model(model);
        engine.set_sae(sae).unwrap();
        let request = steerlab::engine::Request::Features {
            features: features.clone(),
            promoting: None,
            count: 0,
            amplification: 10.0,
            lens_k,
            strength: Some(strength),
            prompt: None,
            corpus: None,
            prompts: Some(prompts.join("\n")),
        };
        let response = pollster::block_on(engine.handle(request, steerlab::engine::never(), &mut |_| {})).unwrap();
        let steerlab::engine::Response::Features { side_effects: se, .. } = response else { panic!() };
        assert_eq!(se.strength, strength);
        let column = |get: fn(&steerlab::analysis::side_effects::SideEffectRow) -> f32| -> Vec<f32> {
            se.rows.iter().map(get).collect()
        };
        let columns: [(&str, Vec<f32>, f32); 10] = [
            ("max_cos", column(|r| r.predictors.max_decoder_cosine), 1e-5),
            ("neighbours", column(|r| r.predictors.neighbours as f32), 0.0),
            ("firing_rate", column(|r| r.predictors.firing_rate), 1e-6),
            ("mean_act", column(|r| r.predictors.mean_activation), 1e-4),
            ("coact", column(|r| r.predictors.max_coactivation), 1e-6),
            ("footprint", column(|r| r.predictors.logit_footprint), 1e-4),
            ("effect_mean", column(|r| r.measured.effect_mean), 1e-3),
            ("effect_std", column(|r| r.measured.effect_std), 1e-3),
            ("collateral", column(|r| r.measured.collateral_spread), 1e-4),
            ("downstream", column(|r| r.measured.downstream_spread), 1e-5),
        ];
        for (name, got, tol) in columns {
            let want = exp.f32(name);
            let d = rel_diff(&got, &want);
            assert!(d <= tol, "{name} on {dev_name}: {got:?} vs {want:?} ({d})");
        }
        let want = exp.f32("checks");
        for (c, want) in se.checks.iter().zip(want.chunks(3)) {
            for (got, &w) in [c.vs_instability, c.vs_collateral, c.vs_downstream].into_iter().zip(want) {
                match got {
                    Some(g) => assert!((g - w).abs() <= 1e-4, "{} on {dev_name}: {g} vs {w}", c.predictor),
                    None => assert!(w.is_nan(), "{} on {dev_name}: undefined vs {w}", c.predictor),
                }
            }
        }
    }
}

/// Arad et al.'s scores across every feature of the SAE, how often both are high, and the steering success
/// (judged by text) of the top features by each score, against the same computed with transformers and sae-lens
/// (scripts/make_population_fixtures.py).
#[test]
fn feature_population_matches_the_reference() {
    use steerlab::analysis::population::{GROUPS, Population};
    use steerlab::engine::{Engine, Request, Response};
    let exp = Expected::from_file(&sae_dir("standard").join("population.safetensors"));
    let prompts: Vec<String> = serde_json::from_str(&exp.meta("prompts")).unwrap();
    let strengths: Vec<f32> = serde_json::from_str(&exp.meta("strengths")).unwrap();
    let top: usize = exp.meta("top").parse().unwrap();
    let close = |a: f32, b: f32, tol: f32| (a - b).abs() <= tol * b.abs().max(1.0);
    for (dev_name, device) in devices() {
        let mut engine = Engine::default();
        engine.set_model(Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap());
        engine.set_sae(Sae::from_dir(&sae_dir("standard"), &device).unwrap()).unwrap();
        let request = Request::Population {
            sample: 10_000, // more than d_sae: every feature
            seed: 1,
            top,
            strengths: strengths.clone(),
            prompts: Some(prompts.join("\n")),
            corpus: None,
            amplification: 10.0,
            lens_k: 20,
            max_new_tokens: exp.meta("max_new_tokens").parse().unwrap(),
        };
        let Response::Population { population: p } =
            pollster::block_on(engine.handle(request, steerlab::engine::never(), &mut |_| {})).unwrap()
        else {
            panic!("a population response")
        };
        let p: Population = p;
        assert_eq!(p.points.iter().map(|x| x.feature).collect::<Vec<_>>(), (0..p.d_sae).collect::<Vec<_>>());
        let outputs: Vec<f32> = p.points.iter().map(|x| x.output_score).collect();
        let d = rel_diff(&outputs, &exp.f32("output_score"));
        assert!(d <= 1e-3, "output scores on {dev_name} differ by {d}");
        let inputs = exp.f32("input_score");
        assert!(p.points.iter().zip(&inputs).all(|(x, &w)| match x.input_score {
            Some(i) => (i - w).abs() <= 1e-6,
            None => w.is_nan(),
        }));

        let c = &p.cooccurrence;
        assert_eq!(c.scored, inputs.iter().filter(|v| !v.is_nan()).count());
        assert!(close(c.spearman.unwrap(), exp.f32("spearman")[0], 1e-4), "spearman {:?}", c.spearman);
        let q = exp.f32("q75");
        assert!(close(c.output_q75, q[0], 1e-3) && close(c.input_q75, q[1], 1e-6), "q75 {c:?} vs {q:?}");
        let shares = [c.high_output, c.high_input, c.high_both, c.expected_both];
        assert_eq!(shares.to_vec(), exp.f32("shares"), "shares above the 75th percentile on {dev_name}");
        assert!(close(p.median_norm, exp.f32("median_norm")[0], 1e-5));
        assert!(close(p.unsteered_coherence, exp.f32("unsteered_coherence")[0], 1e-4));

        // The groups: top by output, top by input, then random features of the sample.
        assert_eq!(p.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), GROUPS);
        let ids = |g: usize| p.groups[g].features.iter().map(|f| f.feature as u32).collect::<Vec<_>>();
        assert_eq!(ids(0), exp.u32("top_output"), "top features by output score on {dev_name}");
        assert_eq!(ids(1), exp.u32("top_input"), "top features by input score on {dev_name}");
        let random = ids(2);
        assert_eq!(random.len(), top);
        assert!(random.iter().all(|&f| (f as usize) < p.d_sae));
        let (concept, coherence) = (exp.f32("concept"), exp.f32("coherence"));
        let (success, base) = (exp.f32("success"), exp.f32("unsteered_concept"));
        let s = strengths.len();
        for g in &p.groups {
            for f in &g.features {
                let i = f.feature;
                assert!(close(f.unsteered_concept, base[i], 1e-5), "unsteered concept of #{i}");
                for (j, st) in f.strengths.iter().enumerate() {
                    assert!(close(st.strength, strengths[j] * p.median_norm, 1e-6));
                    assert!(close(st.concept, concept[i * s + j], 1e-5), "concept of #{i} at {j} on {dev_name}");
                    assert!(close(st.coherence, coherence[i * s + j], 1e-3), "coherence of #{i} at {j}");
                }
                assert!(close(f.success, success[i], 1e-3), "success of #{i}: {} vs {}", f.success, success[i]);
            }
            let mean = g.features.iter().map(|f| success[f.feature]).sum::<f32>() / g.features.len() as f32;
            assert!(close(g.mean_success, mean, 1e-3), "{} mean success", g.name);
        }
    }
}

/// An ActAdd-shaped vector through the SAE, row by row and summed, against sae-lens's encodings
/// (scripts/make_decomposition_fixtures.py): rows [v, (s − 1)·v] sum to s·v; every row is edited on its own
/// (torch's pseudo-inverse projection, linear in the row).
#[test]
fn actadd_rows_are_read_and_edited_row_by_row() {
    use steerlab::analysis::actadd::{edit_rows, position_features};
    use steerlab::sae::edit::{EditMode, FeatureEdit};
    let exp = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors"));
    let (scale, top): (f32, usize) =
        (serde_json::from_str(&exp.meta("rescale")).unwrap(), serde_json::from_str(&exp.meta("top")).unwrap());
    let v = exp.f32("vector");
    let rows: Vec<f32> = v.iter().copied().chain(v.iter().map(|x| x * (scale - 1.0))).collect();
    let (cos, overlap) = (exp.f32("proj.cos_zero"), exp.f32("proj.overlap_zero"));
    let sets: Vec<Vec<usize>> = serde_json::from_str(&exp.meta("sets")).unwrap();
    for (dev_name, device) in devices() {
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        let ps = pollster::block_on(position_features(&sae, &rows, 2, top)).unwrap();
        assert_eq!(ps.iter().map(|p| p.position).collect::<Vec<_>>(), vec![None, Some(0), Some(1)]);
        // The sum is the rescaled vector, position 0 the vector itself.
        for (p, i) in [(&ps[0], 1), (&ps[1], 0)] {
            assert!((p.cosine_with_zero - cos[i]).abs() <= 1e-5, "{:?} on {dev_name}", p.position);
            assert_eq!(p.top_k_overlap, overlap[i], "{:?} on {dev_name}", p.position);
            assert!(p.features.len() <= top && !p.features.is_empty());
        }
        let doubled: Vec<f32> = v.iter().copied().chain(v.iter().map(|x| 2.0 * x)).collect();
        let edit = FeatureEdit { features: sets[0].clone(), mode: EditMode::Keep };
        let got = pollster::block_on(edit_rows(&sae, &doubled, 2, &edit)).unwrap();
        let want = exp.f32("keep.0");
        let want: Vec<f32> = want.iter().copied().chain(want.iter().map(|x| 2.0 * x)).collect();
        let d = max_abs_diff(&got, &want);
        assert!(d <= 2e-5, "rows edited on {dev_name} differ by {d}");
        let e = pollster::block_on(position_features(&sae, &rows[1..], 2, top)).unwrap_err();
        assert!(e.to_string().contains("needs 64 values, but it has 63"), "{e}");
    }
}

/// The steerability table (Mayne et al.'s decompositions, feature edits and gradient pursuit) against the same
/// rows built with sae-lens and float64 references and measured with transformers (scripts/make_table_fixtures.py).
#[test]
fn steerability_table_matches_the_reference() {
    use steerlab::analysis::{DecomposeOptions, decompose};
    use steerlab::sae::edit::{EditMode, FeatureEdit};
    use steerlab::steer::builtin::{CORPUS, corpus_passages};
    use steerlab::steer::dataset::Dataset;
    use steerlab::steer::propensity::Probes;
    let exp = Expected::from_file(&sae_dir("standard").join("table.safetensors"));
    let methods: Vec<String> = serde_json::from_str(&exp.meta("methods")).unwrap();
    let mults: Vec<f32> = serde_json::from_str(&exp.meta("multipliers")).unwrap();
    let ks: Vec<usize> = serde_json::from_str(&exp.meta("ks")).unwrap();
    let set: Vec<usize> = serde_json::from_str(&exp.meta("set")).unwrap();
    let v = Expected::from_file(&sae_dir("standard").join("decompositions.safetensors")).f32("vector");
    let want = exp.f32("steerability");
    let corpus = corpus_passages(CORPUS);
    let items = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ab.jsonl"));
    let items = Dataset::parse(&items.unwrap(), "ab.jsonl").unwrap();
    let edits = [EditMode::Keep, EditMode::Remove].map(|mode| FeatureEdit { features: set.clone(), mode });
    for (dev_name, device) in devices() {
        let model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        let probes = Probes::prepare(&model, &items).unwrap();
        let opts = DecomposeOptions {
            corpus: &corpus,
            pairs: None,
            eval: Some(&probes),
            multipliers: &mults,
            ks: &ks,
            top: 8,
            edits: &edits,
        };
        let d = pollster::block_on(decompose(&model, &sae, &v, &opts)).unwrap();
        assert_eq!(d.table.iter().map(|r| r.method.clone()).collect::<Vec<_>>(), methods, "rows on {dev_name}");
        for (i, row) in d.table.iter().enumerate() {
            let dv = max_abs_diff(&row.vector, &exp.f32(&format!("row.{i}")));
            assert!(dv <= 1e-4, "{} on {dev_name}: its vector differs by {dv}", row.method);
            let s = row.steerability.unwrap();
            assert!((s - want[i]).abs() <= 2e-4, "{} on {dev_name}: steerability {s} vs {}", row.method, want[i]);
        }
    }
}

/// Feature dashboards and the text search against transformers + sae-lens (scripts/make_dashboard_fixtures.py):
/// the same top passages and their strongest tokens, histogram, logit lens both ways and decoder neighbours.
#[test]
fn dashboards_match_transformers_and_sae_lens() {
    use steerlab::analysis::dashboard::{DashboardOptions, feature_dashboards, features_on_text};
    use steerlab::steer::builtin::{CORPUS, corpus_passages};
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sae_dir("standard").join("dashboards.json")).unwrap()).unwrap();
    let num = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    let int = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
    let corpus = corpus_passages(CORPUS);
    let features: Vec<usize> = (0..int(&exp["n"])).collect();
    let (k, bins) = (int(&exp["k"]), int(&exp["bins"]));
    for (dev_name, device) in devices() {
        let model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
        let sae = Sae::from_dir(&sae_dir("standard"), &device).unwrap();
        let opts = DashboardOptions { corpus: &corpus, passages: int(&exp["passages"]), bins, k };
        let got = pollster::block_on(feature_dashboards(&model, &sae, &features, &opts)).unwrap();
        for (d, want) in got.iter().zip(exp["features"].as_array().unwrap()) {
            let at = format!("feature {} on {dev_name}", d.feature);
            let passages = want["passages"].as_array().unwrap();
            assert_eq!(d.passages.len(), passages.len(), "{at}: passages");
            for (p, w) in d.passages.iter().zip(passages) {
                assert_eq!(p.passage, int(&w[0]), "{at}: passage order");
                assert!((p.max - num(&w[1])).abs() <= 1e-4 * num(&w[1]).max(1.0), "{at}: max {} vs {}", p.max, w[1]);
                assert_eq!(p.start + p.at, int(&w[2]), "{at}: strongest token of passage {}", p.passage);
                assert_eq!(p.acts[p.at], p.max);
                assert_eq!(p.tokens.len(), p.acts.len());
            }
            let h = &want["histogram"];
            assert_eq!((d.histogram.fired, d.histogram.tokens), (int(&h["fired"]), int(&h["tokens"])), "{at}");
            let counts: Vec<usize> = h["counts"].as_array().unwrap().iter().map(int).collect();
            // Activations a hair from a bin edge may fall either side of it.
            let moved: usize = d.histogram.counts.iter().zip(&counts).map(|(&a, &b)| (a as usize).abs_diff(b)).sum();
            assert!(moved <= 2, "{at}: histogram {:?} vs {counts:?}", d.histogram.counts);
            if let Some(top) = d.histogram.edges.last() {
                assert!((top - num(&h["top"])).abs() <= 1e-4 * top.max(1.0), "{at}: top edge");
            }
            let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| int(x) as u32).collect::<Vec<_>>();
            assert_eq!(d.promoted.iter().map(|t| t.id).collect::<Vec<_>>(), ids(&want["promoted"]), "{at}: promoted");
            assert_eq!(d.suppressed.iter().map(|t| t.id).collect::<Vec<_>>(), ids(&want["suppressed"]), "{at}");
            for (n, w) in d.neighbours.iter().zip(want["neighbours"].as_array().unwrap()) {
                assert_eq!(n.feature, int(&w[0]), "{at}: neighbours");
                assert!((n.cosine - num(&w[1])).abs() <= 1e-5, "{at}: cosine");
            }
        }

        let text = pollster::block_on(features_on_text(&model, &sae, exp["text"].as_str().unwrap(), k)).unwrap();
        let per_token = exp["per_token"].as_array().unwrap();
        assert_eq!(text.tokens.len(), per_token.len(), "search tokens on {dev_name}");
        for (t, w) in text.tokens.iter().zip(per_token) {
            let want: Vec<usize> = w.as_array().unwrap().iter().map(|x| int(&x[0])).collect();
            assert_eq!(t.features.iter().map(|f| f.feature).collect::<Vec<_>>(), want, "{:?} on {dev_name}", t.text);
        }
        for (f, w) in text.top.iter().zip(exp["top"].as_array().unwrap()) {
            assert_eq!((f.feature, f.token), (int(&w[0]), int(&w[2])), "search top on {dev_name}");
            assert!((f.act - num(&w[1])).abs() <= 1e-4 * num(&w[1]).max(1.0));
        }
        assert_eq!(text.top.len(), exp["top"].as_array().unwrap().len());
    }
}
