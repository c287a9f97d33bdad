//! Propensity and steerability against transformers (scripts/make_science_fixtures.py), on the CPU and on wgpu:
//! on A/B items (tests/fixtures/ab.jsonl), answer-letter token ids, the CAA vector read at the answer letter at
//! every layer, and the logit difference under each multiplier; on contrastive pairs (tests/fixtures/pairs.jsonl),
//! each pair's log-probability difference under each multiplier.

use crate::common::*;
use steerlab::model::Model;
use steerlab::steer::dataset::Dataset;
use steerlab::steer::propensity::{Grid, Measure, Probes, grid_scores, layer_sweep, prepare, slope};

fn ab_items() -> Dataset {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ab.jsonl");
    Dataset::parse(&std::fs::read_to_string(&path).unwrap(), "ab.jsonl").unwrap()
}

#[test]
fn layer_sweep_matches_transformers() {
    let Dataset::Ab(items) = ab_items() else { panic!("ab.jsonl holds A/B items") };
    let train = ab_items().pairs().unwrap();
    for (dev_name, device) in devices() {
        for name in MODELS {
            let exp = Expected::from_file(&model_dir(name).join("science.safetensors"));
            let mults: Vec<f32> = serde_json::from_str(&exp.meta("multipliers")).unwrap();
            let model = Model::from_dir(&model_dir(name), &device).unwrap();
            let prompts = prepare(&model, &items).unwrap();
            let ids = |f: fn(&steerlab::steer::propensity::AbPrompt) -> u32| prompts.iter().map(f).collect::<Vec<_>>();
            assert_eq!(ids(|p| p.matching), exp.u32("ab.matching"), "{name}: matching letter ids");
            assert_eq!(ids(|p| p.not_matching), exp.u32("ab.not_matching"), "{name}: other letter ids");

            let layers: Vec<usize> = (0..model.cfg().n_layers).collect();
            let probes = Probes::Ab(prompts);
            let rows = pollster::block_on(layer_sweep(&model, &train, &probes, &layers, &mults)).unwrap();
            for row in rows {
                let hook = row.curve.hook.clone();
                let caa = exp.f32(&format!("ab.caa.{hook}"));
                let norm = caa.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((row.vector_norm - norm).abs() <= 1e-4 * norm, "{name} {hook} on {dev_name}: CAA norm");
                // [multiplier, item] → mean over items per multiplier
                let ld = exp.f32(&format!("ab.logit_diff.{hook}"));
                let want: Vec<f32> = ld.chunks(items.len()).map(|r| r.iter().sum::<f32>() / r.len() as f32).collect();
                let d = max_abs_diff(&row.curve.mean_logit_diff, &want);
                assert!(d <= 1e-3, "{name} {hook} on {dev_name}: mean logit difference differs by {d}");
                let s = slope(&mults, &want);
                assert!((row.curve.steerability - s).abs() <= 1e-3, "{name} {hook} on {dev_name}: steerability");
                // Per item: its own slope (anti-steerable when negative) and p(matching) = sigmoid(logit diff).
                let n = items.len();
                let item_slopes: Vec<f32> =
                    (0..n).map(|i| slope(&mults, &ld.chunks(n).map(|r| r[i]).collect::<Vec<_>>())).collect();
                let anti = item_slopes.iter().filter(|&&s| s < 0.0).count() as f32 / n as f32;
                let borderline = item_slopes.iter().filter(|s| s.abs() < 1e-3).count() as f32 / n as f32;
                let got = row.curve.anti_steerable_fraction;
                assert!(
                    (got - anti).abs() <= borderline,
                    "{name} {hook} on {dev_name}: anti-steerable {got} vs {anti}"
                );
                let p: Vec<f32> =
                    ld.chunks(n).map(|r| r.iter().map(|&d| 1.0 / (1.0 + (-d).exp())).sum::<f32>() / n as f32).collect();
                let d = max_abs_diff(&row.curve.mean_p_matching, &p);
                assert!(d <= 1e-4, "{name} {hook} on {dev_name}: mean p(matching) differs by {d}");
            }
        }
    }
}

/// The pairs measure: log p(positive) − log p(negative) from the first differing token, after BOS, per pair and
/// multiplier, with each layer's A/B CAA vector added at every position.
#[test]
fn pair_log_prob_differences_match_transformers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pairs.jsonl");
    let pairs = Dataset::parse(&std::fs::read_to_string(&path).unwrap(), "pairs.jsonl").unwrap();
    for (dev_name, device) in devices() {
        for name in MODELS {
            let exp = Expected::from_file(&model_dir(name).join("science.safetensors"));
            let mults: Vec<f32> = serde_json::from_str(&exp.meta("multipliers")).unwrap();
            let mut model = Model::from_dir(&model_dir(name), &device).unwrap();
            let probes = Probes::prepare(&model, &pairs).unwrap();
            assert_eq!(probes.measure(), Measure::PairLogProbDiff);
            // All rows in one pass, then every text alone (a pair's two texts in different passes).
            let n_layers = model.cfg().n_layers;
            for (layer, budget) in (0..n_layers).map(|l| (l, None)).chain([(1, Some(1))]) {
                if let Some(b) = budget {
                    model.limits.budget_bytes = b;
                }
                let hook = format!("blocks.{layer}.hook_resid_pre");
                let caa = exp.f32(&format!("ab.caa.{hook}"));
                let grid = Grid {
                    hook: steerlab::model::hooks::HookPoint::ResidPre(layer),
                    vectors: vec![&caa],
                    multipliers: &mults,
                };
                let got = pollster::block_on(grid_scores(&model, &probes, &[grid])).unwrap().remove(0).remove(0);
                let want = exp.f32(&format!("pairs.logprob_diff.{hook}")); // [multiplier, pair]
                for (m, (got, want)) in got.iter().zip(want.chunks(probes.len())).enumerate() {
                    for (i, (g, w)) in got.iter().zip(want).enumerate() {
                        let tol = 2e-3 * w.abs().max(1.0);
                        assert!(
                            (g - w).abs() <= tol,
                            "{name} {hook} on {dev_name}, ×{}, pair {i}: {g} vs {w}",
                            mults[m]
                        );
                    }
                }
            }
        }
    }
}

/// Generation-level scores against transformers: the greedy continuations at each strength (token for token),
/// the concept share of their words, and their coherence (mean log-probability per generated token, unsteered).
#[test]
fn steer_score_matches_transformers() {
    use steerlab::steer::score::{ScoreSpec, steer_score};
    #[derive(serde::Deserialize)]
    struct Spec {
        prompts: Vec<String>,
        strengths: Vec<f32>,
        layer: usize,
        max_new_tokens: usize,
    }
    for (dev_name, device) in devices() {
        for name in MODELS {
            let exp = Expected::from_file(&model_dir(name).join("science.safetensors"));
            let spec: Spec = serde_json::from_str(&exp.meta("score")).unwrap();
            let concept: Vec<String> = serde_json::from_str(&exp.meta("score_concept")).unwrap();
            let model = Model::from_dir(&model_dir(name), &device).unwrap();
            let hook = format!("blocks.{}.hook_resid_pre", spec.layer);
            let direction = exp.f32(&format!("ab.caa.{hook}"));
            let run = ScoreSpec {
                hook: &hook,
                direction: &direction,
                strengths: &spec.strengths,
                prompts: &spec.prompts,
                concept: &concept,
                max_new_tokens: spec.max_new_tokens,
            };
            let got = pollster::block_on(steer_score(&model, &run)).unwrap();
            let (want_concept, want_coherence) = (exp.f32("score.concept"), exp.f32("score.coherence"));
            for (s, score) in got.iter().enumerate() {
                assert_eq!(score.strength, spec.strengths[s]);
                for (p, g) in score.generations.iter().enumerate() {
                    assert_eq!(
                        g.tokens,
                        exp.u32(&format!("score.tokens.{s}.{p}")),
                        "{name} on {dev_name}, ×{s} prompt {p}"
                    );
                }
                assert!((score.concept - want_concept[s]).abs() <= 1e-6, "{name} on {dev_name}: concept at ×{s}");
                let tol = 1e-3 * want_coherence[s].abs().max(1.0);
                assert!(
                    (score.coherence - want_coherence[s]).abs() <= tol,
                    "{name} on {dev_name}: coherence at ×{s}: {} vs {}",
                    score.coherence,
                    want_coherence[s]
                );
            }
        }
    }
}

#[test]
fn built_in_datasets_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/datasets");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "jsonl")) {
            continue;
        }
        let d = Dataset::parse(&std::fs::read_to_string(&path).unwrap(), &path.display().to_string()).unwrap();
        assert!(d.len() >= 8, "{}: only {} records", path.display(), d.len());
        if let Dataset::Ab(items) = &d {
            // Balanced letters, so a steering vector cannot just learn "say A".
            let a = items.iter().filter(|i| i.answer_matching_behavior.contains('A')).count();
            assert_eq!(a * 2, items.len(), "{}: matching answer should be (A) half the time", path.display());
        }
        seen += 1;
    }
    assert_eq!(seen, 4);
}

/// ActAdd: the position-aligned vector of one prompt pair (the shorter padded with spaces) and the steered
/// prompt's logits, against transformers.
#[test]
fn actadd_matches_transformers() {
    use steerlab::model::hooks::Hooks;
    use steerlab::steer::{actadd::actadd_vector, apply::aligned_intervention};
    for (dev_name, device) in devices() {
        for name in MODELS {
            let exp = Expected::from_file(&model_dir(name).join("science.safetensors"));
            let cfg: serde_json::Value = serde_json::from_str(&exp.meta("actadd")).unwrap();
            let text = |k: &str| cfg[k].as_str().unwrap().to_string();
            let hook = format!("blocks.{}.hook_resid_pre", cfg["layer"]);
            let model = Model::from_dir(&model_dir(name), &device).unwrap();
            let v =
                pollster::block_on(actadd_vector(&model, &text("positive"), &text("negative"), &hook, false)).unwrap();
            let want = exp.f32("actadd.vector");
            assert_eq!(v.data.len(), want.len(), "{name}: ActAdd vector size");
            let d = rel_diff(&v.data, &want);
            assert!(d <= 1e-4, "{name} on {dev_name}: ActAdd vector differs by {d} (relative)");

            let coef = cfg["coef"].as_f64().unwrap() as f32;
            let iv = aligned_intervention(&model, &hook, &v.data, coef, 0).unwrap();
            let tokens = model.encode(&text("prompt"), false).unwrap();
            let logits = model.forward(&tokens, &mut Hooks::steering(vec![iv])).unwrap();
            let logits = pollster::block_on(steerlab::device::read(logits)).unwrap();
            let vocab = logits.shape[2];
            let last = &logits.data[logits.data.len() - vocab..];
            let got: Vec<f32> = exp.u32("actadd.top_ids").iter().map(|&i| last[i as usize]).collect();
            let d = max_abs_diff(&got, &exp.f32("actadd.top_logits"));
            assert!(d <= 1e-3, "{name} on {dev_name}: steered logits differ by {d}");
        }
    }
}
