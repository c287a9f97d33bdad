//! The `steerlab` binary end to end: trace output against transformers' reference, steering from a
//! file, generation, and clear errors for bad input.

mod common;

use common::*;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use steerlab::steer::vector::SteeringVector;

fn steerlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steerlab")).args(args).output().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steerlab-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tensor_f32(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap_or_else(|_| panic!("trace has no {name}"));
    (t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_sv(dir: &Path, values: Vec<f32>) -> String {
    let sv = SteeringVector { values, rows: None, metadata: Default::default() };
    let path = dir.join("sv.safetensors");
    std::fs::write(&path, sv.to_safetensors().unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn trace_matches_transformers_with_and_without_steering() {
    for name in ["gpt2-tiny", "pythia-tiny-f16-parallel"] {
        let exp = Expected::load(name);
        let dir = scratch(name);
        let prompt = &exp.prompts()[2];
        let model = model_dir(name).display().to_string();
        let out = dir.join("trace.safetensors").display().to_string();
        let o = steerlab(&["trace", "--model", &model, "--prompt", prompt, "--out", &out]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tokens = st.tensor("tokens").unwrap();
        assert_eq!(tokens.dtype(), safetensors::Dtype::I64);
        let tokens: Vec<i64> =
            tokens.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(tokens, exp.i64("p2.tokens"));
        let (shape, logits) = tensor_f32(&st, "logits");
        assert_eq!(shape[0], tokens.len());
        assert!(max_abs_diff(&pick_cols(&logits, shape[1], &exp.i64("logit_ids")), &exp.f32("p2.logits")) <= 1e-3);
        let n_layers = 3;
        for l in 0..n_layers {
            let key = format!("blocks.{l}.hook_resid_pre");
            let (shape, got) = tensor_f32(&st, &key);
            assert_eq!(shape, vec![tokens.len(), 32]);
            assert!(rel_diff(&got, &exp.f32(&format!("p2.{key}"))) <= 1e-4, "{name} {key}");
        }
        let (_, post) = tensor_f32(&st, "blocks.2.hook_resid_post");
        assert!(rel_diff(&post, &exp.f32("p2.blocks.2.hook_resid_post")) <= 1e-4);

        let sv = write_sv(&dir, exp.f32("steering_vector"));
        let hook = exp.meta("steer_hook");
        let coef = exp.meta("steer_coef");
        let o = steerlab(&[
            "trace", "--model", &model, "--prompt", prompt, "--out", &out, "--steer", &sv, "--hook", &hook, "--coef",
            &coef,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        let (shape, logits) = tensor_f32(&SafeTensors::deserialize(&bytes).unwrap(), "logits");
        let d = max_abs_diff(&pick_cols(&logits, shape[1], &exp.i64("logit_ids")), &exp.f32("p2.steered.logits"));
        assert!(d <= 1e-3, "{name}: steered logits differ by {d}");
    }
}

#[test]
fn generate_prints_the_greedy_continuation() {
    let exp = Expected::load("gpt2-tiny");
    let prompt = &exp.prompts()[0];
    let model = model_dir("gpt2-tiny").display().to_string();
    let o = steerlab(&["generate", "--model", &model, "--prompt", prompt, "--max-new-tokens", "8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tok = steerlab::tokenizer::Tokenizer::from_bytes(
        &std::fs::read(model_dir("gpt2-tiny").join("tokenizer.json")).unwrap(),
        "t",
    )
    .unwrap();
    let want = format!("{prompt}{}\n", tok.decode(&exp.u32("p0.greedy")).unwrap());
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
}

/// steer-score: per strength, the concept share and coherence of greedy continuations, with every generation's
/// token ids in the JSON; strength 0 is the plain greedy continuation (transformers' tokens); features steer too.
#[test]
fn steer_score_lists_each_strength_with_its_generations() {
    let dir = scratch("steer-score");
    let exp = Expected::load("gpt2-tiny");
    let prompt = &exp.prompts()[0];
    let model = model_dir("gpt2-tiny").display().to_string();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let sv = dir.join("sv.safetensors").display().to_string();
    let pairs = fixtures.join("pairs.jsonl").display().to_string();
    let o = steerlab(&["caa", "--model", &model, "--pairs", &pairs, "--hook", "blocks.1.hook_resid_pre", "--out", &sv]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (prompts, concept, out) = (dir.join("prompts.txt"), dir.join("concept.txt"), dir.join("score.json"));
    std::fs::write(&prompts, format!("{prompt}\n\nThe weather today is\n")).unwrap();
    std::fs::write(&concept, "# wedding words\nwedding\nBride\n").unwrap();
    let paths = [prompts.to_str().unwrap(), concept.to_str().unwrap(), out.to_str().unwrap()];
    let common = ["--prompts", paths[0], "--concept", paths[1], "--strengths", "0,8", "--max-new-tokens", "8"];
    let o =
        steerlab(&[&["steer-score", "--model", &model, "--vector", &sv], &common[..], &["--json", paths[2]]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mean log p per generated token"));
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let strengths = j["strengths"].as_array().unwrap();
    assert_eq!(strengths.len(), 2);
    for s in strengths {
        let coherence = s["coherence"].as_f64().unwrap();
        assert!(coherence < 0.0 && coherence.is_finite(), "{s}");
        assert!((0.0..=1.0).contains(&s["concept"].as_f64().unwrap()));
        let gens = s["generations"].as_array().unwrap();
        assert_eq!(gens.len(), 2, "blank lines are not prompts");
        assert!(gens.iter().all(|g| g["prompt_tokens"].as_array().unwrap().len() > 1 && g["tokens"].is_array()));
    }
    let plain: Vec<u32> = serde_json::from_value(strengths[0]["generations"][0]["tokens"].clone()).unwrap();
    assert_eq!(plain, exp.u32("p0.greedy")[..plain.len()], "strength 0 is the unsteered greedy continuation");
    assert_ne!(strengths[0]["generations"], strengths[1]["generations"], "strength 8 changed nothing");

    let sae = fixtures.join("saes/standard").display().to_string();
    let o = steerlab(&[&["steer-score", "--model", &model, "--sae", &sae, "--feature", "3:4"], &common[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&concept, "two words\n").unwrap();
    let o = steerlab(&[&["steer-score", "--model", &model, "--vector", &sv], &common[..]].concat());
    assert!(stderr(&o).contains("concept word 1: \"two words\" is not one word"), "{}", stderr(&o));
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = scratch("bad");
    let good = model_dir("gpt2-tiny");
    let out = dir.join("t.safetensors").display().to_string();
    let run = |model: &Path, extra: &[&str]| {
        let m = model.display().to_string();
        let mut args = vec!["trace", "--model", &m, "--prompt", "hi", "--out", &out];
        args.extend_from_slice(extra);
        let o = steerlab(&args);
        assert!(!o.status.success());
        stderr(&o)
    };
    // A corrupt copy of the model: truncated weights, then an unknown model_type.
    let bad = dir.join("model");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(good.join(f), bad.join(f)).unwrap();
    }
    let weights = std::fs::read(good.join("model.safetensors")).unwrap();
    std::fs::write(bad.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    let e = run(&bad, &[]);
    assert!(e.contains("model.safetensors: not a valid safetensors file"), "{e}");
    std::fs::write(bad.join("model.safetensors"), &weights).unwrap();
    let config = std::fs::read_to_string(good.join("config.json")).unwrap();
    std::fs::write(bad.join("config.json"), config.replace("\"n_embd\": 32", "\"n_embd\": 64")).unwrap();
    let e = run(&bad, &[]);
    assert!(e.contains("model.safetensors: tensor `h.0.ln_1.weight`: shape [32], expected [64]"), "{e}");
    std::fs::write(bad.join("config.json"), &config).unwrap();
    std::fs::write(bad.join("tokenizer.json"), "{\"version\": ").unwrap();
    let e = run(&bad, &[]);
    assert!(e.contains("tokenizer.json: not a valid tokenizer.json"), "{e}");
    std::fs::write(bad.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let e = run(&bad, &[]);
    assert!(e.contains("unsupported model_type \"llama\""), "{e}");

    let e = run(&dir.join("nowhere"), &[]);
    assert!(e.contains("nowhere/config.json"), "{e}");

    let sv = write_sv(&dir, vec![1.0; 7]);
    let e = run(&good, &["--steer", &sv, "--hook", "blocks.0.hook_resid_pre"]);
    assert!(e.contains("steering vector has 7 dims but") && e.contains("d_model = 32"), "{e}");
    let sv = write_sv(&dir, vec![1.0; 32]);
    let e = run(&good, &["--steer", &sv, "--hook", "blocks.9.hook_resid_pre"]);
    assert!(e.contains("unknown hook `blocks.9.hook_resid_pre`"), "{e}");

    let long = "word ".repeat(100);
    let m = good.display().to_string();
    let o = steerlab(&["trace", "--model", &m, "--prompt", &long, "--out", &out]);
    assert!(
        stderr(&o).contains("sequence too long: 101 tokens, but the model's context is 64 tokens"),
        "{}",
        stderr(&o)
    );

    // An absurd bench request is refused before any model is built.
    for rows in ["0", "65"] {
        let o = steerlab(&["bench", "--rows", rows, "--python", "/nonexistent"]);
        assert!(!o.status.success() && stderr(&o).contains("--rows in 1..=64"), "{}", stderr(&o));
    }
}

#[test]
fn caa_matches_transformers_and_refuses_empty_datasets() {
    let dir = scratch("caa");
    let pairs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pairs.jsonl");
    for name in ["gpt2-tiny", "pythia-tiny-f16-parallel"] {
        let exp = Expected::load(name);
        let out = dir.join(format!("{name}.safetensors"));
        let model = model_dir(name).display().to_string();
        let args = ["caa", "--model", &model, "--pairs", pairs.to_str().unwrap(), "--hook", "blocks.1.hook_resid_pre"];
        let o = steerlab(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let sv = SteeringVector::from_safetensors(&std::fs::read(&out).unwrap(), "sv").unwrap();
        let d = rel_diff(&sv.values, &exp.f32("caa.blocks.1.hook_resid_pre"));
        assert!(d <= 1e-4, "{name}: CAA vector differs by {d} (relative)");
        assert_eq!(sv.metadata["count"], "3");
        assert_eq!(sv.metadata["hook"], "blocks.1.hook_resid_pre");
        assert_eq!(sv.metadata["method"], "caa");
    }
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let model = model_dir("gpt2-tiny").display().to_string();
    let o = steerlab(&[
        "caa",
        "--model",
        &model,
        "--pairs",
        empty.to_str().unwrap(),
        "--hook",
        "blocks.1.hook_resid_pre",
        "--out",
        "/dev/null",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no contrastive pairs: the dataset is empty"), "{}", stderr(&o));
}

#[test]
fn steerability_and_decompose_tell_the_same_story() {
    let dir = scratch("decompose");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ab = fixtures.join("ab.jsonl").display().to_string();
    let pairs_other = fixtures.join("pairs.jsonl").display().to_string();
    let sae = fixtures.join("saes/standard").display().to_string();
    let model = model_dir("gpt2-tiny").display().to_string();
    let sv = dir.join("sv.safetensors").display().to_string();
    let o = steerlab(&["caa", "--model", &model, "--pairs", &ab, "--hook", "blocks.1.hook_resid_pre", "--out", &sv]);
    assert!(o.status.success(), "{}", stderr(&o));

    let json = |path: &Path| -> serde_json::Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let curve = dir.join("curve.json");
    let mults = "--multipliers=-2,0,2";
    let o = steerlab(
        &["steerability", "--model", &model, "--eval", &ab, "--vector", &sv, mults, "--json"]
            .into_iter()
            .chain([curve.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("blocks.1.hook_resid_pre"));
    let steerability = json(&curve)["curves"][0]["curve"]["steerability"].as_f64().unwrap();

    let out = dir.join("decompose.json");
    let args = ["decompose", "--model", &model, "--sae", &sae, "--vector", &sv, "--eval", &ab, "--pairs", &ab, mults];
    let edits = ["--keep", "3,7", "--remove", "3, 7", "--compare", &pairs_other];
    let o = steerlab(&[&args[..], &edits, &["--ks", "1,4", "--json", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for heading in ["1. Norms", "2. Encoder bias", "3. Default components", "4. Signed projections", "5. Steerability"]
    {
        assert!(stdout.contains(heading), "{stdout}");
    }
    let d = json(&out);
    let table = d["table"].as_array().unwrap();
    assert_eq!(table[0]["method"], "steering vector");
    assert!((table[0]["cosine"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    assert!((table[0]["steerability"].as_f64().unwrap() - steerability).abs() < 1e-6);
    // Given the pairs, each partner pair says what it fires on over their positive and negative prompts.
    let partners = d["projections"]["partners"].as_array().unwrap();
    assert!(!partners.is_empty() && partners.iter().all(|q| q["on_positive"].as_array().is_some_and(|a| a.len() == 2)));
    let vs_zero = d["vectors_vs_zero"].as_array().unwrap();
    assert_eq!((vs_zero.len(), &vs_zero[1]["name"]), (2, &serde_json::json!(pairs_other)));
    assert!(stdout.contains("Vectors against encode(0)"), "{stdout}");
    // vector, 2 edits, reconstruction, 2 top-k subsets, bias-corrected, 2 × 2 gradient pursuits
    assert_eq!(table.len(), 11);
    assert_eq!(
        (&table[1]["method"], &table[1]["edit"]),
        (&serde_json::json!("SV restricted to features 3, 7"), &serde_json::json!("keep"))
    );
    assert_eq!(
        (&table[2]["method"], &table[2]["edit"]),
        (&serde_json::json!("SV minus features 3, 7"), &serde_json::json!("remove"))
    );
    // The two edits split the vector into orthogonal parts.
    let n = |i: usize| table[i]["norm"].as_f64().unwrap();
    assert!(((n(1).powi(2) + n(2).powi(2)).sqrt() - n(0)).abs() < 1e-4 * n(0));
    let o = steerlab(&[&args[..], &["--keep", "3,x"]].concat());
    assert!(stderr(&o).contains("\"x\" is not a feature number"), "{}", stderr(&o));
    let pursuit = table.iter().find(|r| r["method"] == "gradient pursuit (signed), k = 4").unwrap();
    assert!(pursuit["features"].as_u64().unwrap() <= 4);
    // The CAA vector is ~20x shorter than the activations the SAE was built for: its encoding is encode(0)'s.
    assert!(d["norms"]["median_over_vector"].as_f64().unwrap() > 5.0);
    assert!(d["bias"]["cosine_with_zero"][0].as_f64().unwrap() > 0.9);
    assert!(d["defaults"][0]["positive"]["values"].as_array().unwrap().len() == 4);

    // A vector read at another hook, and contrastive pairs given as A/B items, are refused clearly.
    let other = dir.join("other.safetensors").display().to_string();
    let pairs = fixtures.join("pairs.jsonl").display().to_string();
    let o =
        steerlab(&["caa", "--model", &model, "--pairs", &pairs, "--hook", "blocks.0.hook_resid_pre", "--out", &other]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = steerlab(&["decompose", "--model", &model, "--sae", &sae, "--vector", &other]);
    assert!(
        stderr(&o).contains("read at blocks.0.hook_resid_pre, but the SAE reads blocks.1.hook_resid_pre"),
        "{}",
        stderr(&o)
    );
    // Pairs as held-out data are measured by their texts' log-probability difference.
    let o = steerlab(&["steerability", "--model", &model, "--vector", &sv, "--eval", &pairs]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("log-probability difference (positive − negative text) against the multiplier, over 3 pairs"),
        "{out}"
    );
}

/// ActAdd vectors steer the first positions with their hook from the file; SAE features steer with their decoder
/// rows × strength, which the trace shows exactly at the SAE's hook.
#[test]
fn actadd_and_feature_steering() {
    let dir = scratch("actadd");
    let model = model_dir("gpt2-tiny").display().to_string();
    let sv = dir.join("actadd.safetensors").display().to_string();
    let o = steerlab(&["actadd", "--model", &model, "--positive", "Love", "--negative", "Hate you"]);
    assert!(!o.status.success(), "--hook and --out are required");
    let hook = "blocks.1.hook_resid_pre";
    let o = steerlab(&[
        "actadd",
        "--model",
        &model,
        "--positive",
        "Love",
        "--negative",
        "Hate you",
        "--hook",
        hook,
        "--out",
        &sv,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = SteeringVector::from_safetensors(&std::fs::read(&sv).unwrap(), "actadd").unwrap();
    let k = v.rows.expect("an ActAdd vector is position-aligned");
    assert_eq!((v.values.len(), v.hook()), (k * 32, Some(hook)));

    // decompose takes it summed over its positions, and sets each position's row against encode(0).
    let sae = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes/standard");
    let out = dir.join("actadd-decompose.json");
    let (sae, out_s) = (sae.display().to_string(), out.display().to_string());
    let o = steerlab(&["decompose", "--model", &model, "--sae", &sae, "--vector", &sv, "--ks", "1", "--json", &out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("An ActAdd vector of {k} positions")));
    let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = d["vectors_vs_zero"].as_array().unwrap();
    assert_eq!(rows.len(), 1 + k);
    let summed: Vec<f32> = (0..32).map(|j| (0..k).map(|i| v.values[i * 32 + j]).sum()).collect();
    let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((rows[0]["norm"].as_f64().unwrap() as f32 - norm(&summed)).abs() < 1e-5);
    assert!((d["vector_norm"].as_f64().unwrap() as f32 - norm(&summed)).abs() < 1e-5);
    assert!((rows[1]["norm"].as_f64().unwrap() as f32 - norm(&v.values[..32])).abs() < 1e-5);

    let trace = |extra: &[&str]| {
        let out = dir.join("t.safetensors").display().to_string();
        let mut args = vec!["trace", "--model", &model, "--prompt", "I think that you are", "--out", &out];
        args.extend_from_slice(extra);
        let o = steerlab(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        tensor_f32(&SafeTensors::deserialize(&bytes).unwrap(), hook).1
    };
    let plain = trace(&[]);
    let d = 32;
    let steered = trace(&["--steer", &sv, "--coef", "2"]);
    let delta: Vec<f32> = steered.iter().zip(&plain).map(|(a, b)| a - b).collect();
    let want: Vec<f32> = v.values.iter().map(|x| 2.0 * x).collect();
    assert!(max_abs_diff(&delta[..k * d], &want) <= 1e-4, "row i of the ActAdd vector lands on position i");
    assert!(delta[k * d..].iter().all(|x| x.abs() <= 1e-5), "later positions are not steered at the hook");

    let sae_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes/standard");
    let sae = sae_dir.display().to_string();
    let bytes = std::fs::read(sae_dir.join("sae_weights.safetensors")).unwrap();
    let (_, w_dec) = tensor_f32(&SafeTensors::deserialize(&bytes).unwrap(), "W_dec");

    // edit-vector: every ActAdd row without features 3 and 7 is orthogonal to their decoder rows, and the kept
    // and removed parts add up to the row.
    let edited = |flag: &str| {
        let out = dir.join(format!("edited{flag}.safetensors")).display().to_string();
        let o = steerlab(&["edit-vector", "--sae", &sae, "--vector", &sv, flag, "3,7", "--out", &out]);
        assert!(o.status.success(), "{}", stderr(&o));
        let e = SteeringVector::from_safetensors(&std::fs::read(&out).unwrap(), "edited").unwrap();
        assert_eq!(e.rows, Some(k));
        (e.values, out)
    };
    let ((removed, removed_file), (kept, _)) = (edited("--remove"), edited("--keep"));
    for (r, row) in removed.chunks(d).enumerate() {
        for f in [3, 7] {
            let dot: f32 = row.iter().zip(&w_dec[f * d..(f + 1) * d]).map(|(a, b)| a * b).sum();
            assert!(dot.abs() <= 1e-4, "row {r} still has feature {f}'s direction ({dot})");
        }
    }
    let sum: Vec<f32> = removed.iter().zip(&kept).map(|(a, b)| a + b).collect();
    assert!(max_abs_diff(&sum, &v.values) <= 1e-4, "kept + removed is the vector");
    let steered = trace(&["--steer", &removed_file]);
    assert_eq!(steered.len(), plain.len());
    let o = steerlab(&["edit-vector", "--sae", &sae, "--vector", &sv, "--remove", "96", "--out", "/dev/null"]);
    assert!(stderr(&o).contains("feature 96 does not exist"), "{}", stderr(&o));
    let steered = trace(&["--sae", &sae, "--feature", "3:5", "--feature", "7:-1.5"]);
    for (p, (s, b)) in steered.chunks(d).zip(plain.chunks(d)).enumerate() {
        let want: Vec<f32> = (0..d).map(|i| 5.0 * w_dec[3 * d + i] - 1.5 * w_dec[7 * d + i]).collect();
        let got: Vec<f32> = s.iter().zip(b).map(|(a, b)| a - b).collect();
        assert!(max_abs_diff(&got, &want) <= 1e-4, "position {p}: feature steering adds the decoder rows");
    }
    for (bad, msg) in
        [("3", "expected INDEX:STRENGTH"), ("96:1", "feature 96 does not exist: this SAE has 96 features")]
    {
        let o = steerlab(&[
            "trace",
            "--model",
            &model,
            "--prompt",
            "Hi",
            "--out",
            "/dev/null",
            "--sae",
            &sae,
            "--feature",
            bad,
        ]);
        assert!(stderr(&o).contains(msg), "{}", stderr(&o));
    }
}

/// `steerlab features` scores features, measures their side effects, writes JSON, and names bad requests.
#[test]
fn features_scores_and_side_effects() {
    let dir = scratch("features");
    let model = model_dir("gpt2-tiny").display().to_string();
    let sae = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes/standard").display().to_string();
    let json = dir.join("f.json").display().to_string();
    let base = ["features", "--model", model.as_str(), "--sae", sae.as_str()];
    let run = |extra: &[&str]| steerlab(&[&base[..], extra].concat());
    let o = run(&["--features", "0,1,2", "--strength", "2", "--json", &json]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("best output score first") && out.contains("How each predictor ranked"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let scores = v["scores"].as_array().unwrap();
    let out_scores: Vec<f64> = scores.iter().map(|s| s["output_score"].as_f64().unwrap()).collect();
    assert!(out_scores.windows(2).all(|w| w[0] >= w[1]), "ranked by output score: {out_scores:?}");
    assert_eq!(scores[0]["lens"].as_array().unwrap().len(), 20);
    let side = &v["side_effects"];
    assert_eq!((side["strength"].as_f64(), side["rows"].as_array().unwrap().len()), (Some(2.0), 3));
    for row in side["rows"].as_array().unwrap() {
        let spread = row["measured"]["collateral_spread"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&spread), "{row}");
    }
    assert_eq!(side["checks"].as_array().unwrap().len(), 6);

    let o = run(&["--promoting", " the", "--count", "3", "--lens-k", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (extra, msg) in [
        (&["--features", "0,96"][..], "feature 96 does not exist"),
        (&["--promoting", "two words"], "\"two words\" is 2 tokens"),
        (&[][..], "--features"),
    ] {
        let o = run(extra);
        assert!(!o.status.success() && stderr(&o).contains(msg), "{extra:?}: {}", stderr(&o));
    }
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let o = run(&["--features", "0", "--prompts", empty.to_str().unwrap()]);
    assert!(stderr(&o).contains("empty.txt: no non-empty line"), "{}", stderr(&o));
}

/// `steerlab population` scores a sample of features at each SAE given, compares the groups' steering, writes
/// one JSON entry per layer, and names bad requests.
#[test]
fn population_at_several_layers() {
    let dir = scratch("population");
    let model = model_dir("gpt2-tiny").display().to_string();
    let saes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes");
    let (standard, topk) = (saes.join("standard").display().to_string(), saes.join("topk").display().to_string());
    let json = dir.join("p.json").display().to_string();
    let prompts = dir.join("prompts.txt");
    std::fs::write(&prompts, "I think that\nMy friend\n").unwrap();
    let p = prompts.to_str().unwrap();
    let base = ["population", "--model", model.as_str(), "--prompts", p, "--max-new-tokens", "4"];
    let run = |extra: &[&str]| steerlab(&[&base[..], extra].concat());
    let o = run(&["--sae", &standard, "--sae", &topk, "--sample", "40", "--top", "2", "--json", &json]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("Feature population at blocks.1.hook_resid_pre").count(), 2, "{out}");
    assert!(out.contains("40 of 96 features scored") && out.contains("mean success: by output score"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layers = v.as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for p in layers {
        assert_eq!(p["points"].as_array().unwrap().len(), 40);
        let groups = p["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 3);
        // The output group is the sample's top two by output score.
        let mut scores: Vec<f64> =
            p["points"].as_array().unwrap().iter().map(|x| x["output_score"].as_f64().unwrap()).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        let top: Vec<f64> =
            groups[0]["features"].as_array().unwrap().iter().map(|f| f["output_score"].as_f64().unwrap()).collect();
        assert_eq!(top, scores[..2].to_vec());
        for g in groups {
            for f in g["features"].as_array().unwrap() {
                assert_eq!(f["strengths"].as_array().unwrap().len(), 3);
                assert!((0.0..=1.0).contains(&f["success"].as_f64().unwrap()), "{f}");
            }
        }
    }
    // Scores only.
    let o = run(&["--sae", &standard, "--sample", "5", "--top", "0"]);
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("mean success"), "{}", stderr(&o));
    for (extra, msg) in [
        (&["--sae", &standard, "--sample", "0"][..], "sample at least one feature"),
        (&["--sae", &standard, "--strengths", "0,1"], "non-zero finite multiples"),
        (&["--sample", "3"], "--sae"),
    ] {
        let o = run(extra);
        assert!(!o.status.success() && stderr(&o).contains(msg), "{extra:?}: {}", stderr(&o));
    }
}

/// GGUF control vectors: `export` writes the very bytes that the gguf package read back with the right names and
/// values (scripts/make_gguf_fixtures.py), and `import` reads what repeng's writer wrote.
#[test]
fn gguf_control_vectors_match_the_gguf_package() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf");
    let dir = scratch("gguf");
    let path = |p: &Path| p.display().to_string();
    let (vector, out) = (path(&fx.join("vector.safetensors")), path(&dir.join("sv.gguf")));
    let o = steerlab(&["export", "--vector", &vector, "--format", "gguf", "--out", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("blocks.3.hook_resid_pre is llama.cpp's layer 2"));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(fx.join("steerlab.gguf")).unwrap());

    let repeng = path(&fx.join("repeng.gguf"));
    let sv = path(&dir.join("layer4.safetensors"));
    let o = steerlab(&["import", &repeng, "--out", &sv]);
    assert!(stderr(&o).contains("it holds layers 1, 2, 4: pick one with --layer"), "{}", stderr(&o));
    let o = steerlab(&["import", &repeng, "--layer", "3", "--out", &sv]);
    assert!(stderr(&o).contains("it has no layer 3"), "{}", stderr(&o));
    let o = steerlab(&["import", &repeng, "--layer", "4", "--out", &sv]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = SteeringVector::from_safetensors(&std::fs::read(&sv).unwrap(), "layer4").unwrap();
    let bytes = std::fs::read(fx.join("directions.safetensors")).unwrap();
    let (_, want) = tensor_f32(&SafeTensors::deserialize(&bytes).unwrap(), "direction.4");
    assert_eq!((&got.values, got.hook()), (&want, Some("blocks.4.hook_resid_post")));
    assert_eq!(got.metadata.get("model").map(String::as_str), Some("gpt2"));

    // What llama.cpp has no slot for, and what is not a control vector, say so.
    let o = steerlab(&["export", "--vector", &vector, "--hook", "blocks.1.hook_resid_pre", "--out", &out]);
    assert!(stderr(&o).contains("cannot be a llama.cpp control vector"), "{}", stderr(&o));
    let o = steerlab(&["import", &vector, "--out", &sv]);
    assert!(stderr(&o).contains("not a GGUF control vector: no GGUF magic"), "{}", stderr(&o));
}
