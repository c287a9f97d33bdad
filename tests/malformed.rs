//! Every parser on arbitrary and mutated bytes: safetensors, npz, model and SAE configs, shard indexes, datasets,
//! permalinks, tokenizer files and the NDJSON protocol's messages (to an empty engine, and requests of every kind
//! to one with a model and an SAE loaded). Each input must give Ok or a clear Err — never a panic, an abort or a
//! huge allocation. The address space is capped (8 GiB) for the whole run, so an
//! allocation sized from a crafted field aborts the test instead of passing unseen.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use steerlab::engine::{Engine, Event, Reply, Request, never};
use steerlab::experiment::Experiment;
use steerlab::model::Model;
use steerlab::model::config::ModelConfig;
use steerlab::model::weights::{SafetensorsWeights, shard_files};
use steerlab::npz::NpzWeights;
use steerlab::sae::Sae;
use steerlab::sae::config::{SaeConfig, sparsify_config};
use steerlab::steer::dataset::{Dataset, parse_ab_items, parse_pairs};
use steerlab::tokenizer::Tokenizer;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)).unwrap()
}

fn fixture_dir(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

fn cap_address_space() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        unsafe {
            let lim = libc::rlimit { rlim_cur: 8 << 30, rlim_max: libc::RLIM_INFINITY };
            let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_AS, &mut now) == 0 && now.rlim_cur > lim.rlim_cur {
                libc::setrlimit(libc::RLIMIT_AS, &libc::rlimit { rlim_max: now.rlim_max, ..lim });
            }
        }
    });
}

/// A seed with some bytes overwritten, a run of bytes repeated, and maybe cut short: what a damaged download, a
/// bad disk or a hand-edited file looks like.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = seed.len().max(1);
    (
        prop::collection::vec((0..n, any::<u8>()), 0..8),
        prop::option::of((0..n, 0..n, 0..4usize)),
        prop::option::of(0..n),
    )
        .prop_map(move |(writes, splice, cut)| {
            let mut b = seed.clone();
            for (at, v) in writes {
                if at < b.len() {
                    b[at] = v;
                }
            }
            if let Some((from, len, times)) = splice {
                let run: Vec<u8> = b[from.min(b.len())..(from + len % 64).min(b.len())].to_vec();
                let at = from.min(b.len());
                for _ in 0..times {
                    b.splice(at..at, run.iter().copied());
                }
            }
            if let Some(cut) = cut {
                b.truncate(cut);
            }
            b
        })
}

/// Text with numbers swapped for extreme ones (what a corrupt or hostile config would hold) and bytes changed.
fn mutated_json(seed: &str) -> impl Strategy<Value = String> {
    let seed = seed.to_string();
    let extremes =
        ["0", "-1", "1e308", "18446744073709551615", "1000000000000", "4611686018427387904", "null", "\"x\""];
    (prop::collection::vec((0..64usize, 0..extremes.len()), 0..4), mutated(seed.clone().into_bytes())).prop_map(
        move |(swaps, bytes)| {
            // Replace the i-th number of the seed with an extreme value, or else take the byte-mutated text.
            let mut text = seed.clone();
            for (i, e) in &swaps {
                let numbers: Vec<(usize, usize)> = number_spans(&text);
                if let Some(&(a, b)) = numbers.get(i % numbers.len().max(1)) {
                    text.replace_range(a..b, extremes[*e]);
                }
            }
            if swaps.is_empty() { String::from_utf8_lossy(&bytes).into_owned() } else { text }
        },
    )
}

fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Parses `bytes` as safetensors and reads every tensor it lists.
fn read_safetensors(bytes: &[u8]) {
    if let Ok(w) = SafetensorsWeights::parse(bytes, "f.safetensors", &[])
        && let Ok((_, meta)) = safetensors::SafeTensors::read_metadata(bytes)
    {
        for name in meta.tensors().keys() {
            let _ = w.get_any(name);
        }
    }
}

fn read_npz(bytes: &[u8]) {
    if let Ok(w) = NpzWeights::parse(bytes, "p.npz") {
        for name in w.names() {
            let _ = w.get_any(&name);
        }
    }
}

fn errors_are_clear(e: steerlab::Error) {
    assert!(!e.to_string().trim().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn safetensors_files(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutated(fixture("saes/standard/sae_weights.safetensors")),
    ]) {
        cap_address_space();
        read_safetensors(&bytes);
    }

    #[test]
    fn gguf_control_vectors(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutated(fixture("gguf/repeng.gguf")),
        mutated(fixture("gguf/steerlab.gguf")),
    ]) {
        cap_address_space();
        if let Err(e) = steerlab::gguf::read(&bytes, "cv.gguf") {
            errors_are_clear(e);
        }
    }

    #[test]
    fn npz_archives(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutated(fixture("saes/gemma-scope-res/layer_1/width_96/average_l0_9/params.npz")),
        mutated(fixture("saes/gemma-scope-res/layer_1/width_96/compressed/params.npz")),
    ]) {
        cap_address_space();
        read_npz(&bytes);
    }

    #[test]
    fn model_configs(text in prop_oneof![
        any::<String>(),
        mutated_json(&String::from_utf8(fixture("models/gpt2-tiny/config.json")).unwrap()),
        mutated_json(&String::from_utf8(fixture("models/gemma2-tiny/config.json")).unwrap()),
        mutated_json(&String::from_utf8(fixture("models/pythia-tiny-f32-sequential/config.json")).unwrap()),
    ]) {
        cap_address_space();
        if let Err(e) = ModelConfig::from_json(&text, "config.json") {
            errors_are_clear(e);
        }
        let _ = shard_files(&text, "model.safetensors.index.json");
    }

    #[test]
    fn sae_configs(text in prop_oneof![
        any::<String>(),
        mutated_json(&String::from_utf8(fixture("saes/standard/cfg.json")).unwrap()),
        mutated_json(r#"{"expansion_factor":32,"num_latents":0,"k":32,"d_in":512,"multi_topk":false}"#),
    ]) {
        cap_address_space();
        if let Ok(cfg) = SaeConfig::from_json(&text, "cfg.json") {
            prop_assert!(cfg.d_in.checked_mul(cfg.d_sae).is_some());
        }
        let _ = sparsify_config(&text, "cfg.json", "layers.3");
    }

    #[test]
    fn datasets(text in prop_oneof![
        any::<String>(),
        mutated_json("{\"positive\": \"I love it\", \"negative\": \"I hate it\"}\n{\"positive\": \"a\", \"negative\": \"b\"}\n"),
        mutated_json(r#"[{"question":"Q?\n (A) yes\n (B) no","answer_matching_behavior":"(A)","answer_not_matching_behavior":" (B)"}]"#),
    ]) {
        cap_address_space();
        if let Ok(d) = Dataset::parse(&text, "d.jsonl") {
            let _ = d.pairs();
        }
        let _ = parse_pairs(&text, "d.jsonl");
        if let Ok(items) = parse_ab_items(&text, "d.json") {
            for item in items {
                let _ = item.letters();
                let _ = item.pair();
            }
        }
    }

    #[test]
    fn permalinks(text in prop_oneof![
        any::<String>(),
        "x[0-9]{1,3}\\.[A-Za-z0-9_-]{0,200}".prop_map(String::from),
        mutated(Experiment::default().to_fragment().into_bytes()).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        cap_address_space();
        match Experiment::from_fragment(&text) {
            Ok(e) => { let _ = e.to_fragment(); }
            Err(e) => errors_are_clear(e),
        }
    }

    #[test]
    fn protocol_messages(text in prop_oneof![
        any::<String>(),
        mutated_json(r#"{"op":"generate","prompt":"Hi","options":{"max_new_tokens":4},"steering":[{"kind":"features","features":[[1,2.0]]}]}"#),
        mutated_json(r#"{"op":"decompose","vector":[0.1,0.2],"multipliers":[-1,1],"ks":[1,4],"top":8}"#),
        mutated_json(r#"{"reply":{"ok":{"kind":"generated","text":"x","tokens":[1,2]}}}"#),
        mutated_json(r#"{"event":{"kind":"texts","texts":["a","b"]}}"#),
    ]) {
        cap_address_space();
        let _ = serde_json::from_str::<Request>(&text);
        let _ = serde_json::from_str::<Reply>(&text);
        let _ = serde_json::from_str::<Event>(&text);
        // The engine answers any line with a reply line, with no model loaded (so nothing runs for long).
        let line = pollster::block_on(Engine::default().handle_json(&text, never(), &mut |_| {}));
        prop_assert!(serde_json::from_str::<Reply>(&line).is_ok(), "{line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tokenizer_files(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        mutated(fixture("models/gemma2-tiny/tokenizer.json")),
    ]) {
        cap_address_space();
        if let Ok(t) = Tokenizer::from_bytes(&bytes, "tokenizer.json")
            && let Ok(ids) = t.encode("Hello, world")
        {
            let _ = t.decode(&ids);
        }
    }
}

/// One request of each kind the engine serves, valid for the tiny GPT-2 (d_model 32, 3 layers, 64 positions) and
/// its 96-feature SAE at blocks.1.hook_resid_pre.
fn request_seeds() -> Vec<serde_json::Value> {
    use serde_json::json;
    let v: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
    let rows2: Vec<f32> = (0..64).map(|i| (i as f32 * 0.21).cos()).collect();
    let ab = r#"{"question": "Is the sky blue?\n (A) Yes\n (B) No", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}"#;
    let eval = json!({"from": "inline", "name": "ab.jsonl", "text": format!("{ab}\n{ab}")});
    let pairs = json!({"from": "built_in", "file": "love-hate.jsonl"});
    let hook = "blocks.1.hook_resid_pre";
    let vector = json!({"kind": "vector", "hook": hook, "values": v, "rows": null, "coef": 2.0});
    let features = json!({"kind": "features", "features": [[1, 2.0], [5, -3.0]]});
    let corpus = "The cat sat on the mat.\nA dog ran far away.";
    vec![
        json!({"op": "generate", "prompt": "Hi there", "steering": [vector, features], "options": {"max_new_tokens": 4, "sampling": {"temperature": 0.8, "top_k": 5, "seed": 3}, "stop_at_eos": true}}),
        json!({"op": "generate_variants", "prompt": "I think", "variants": [[], [vector], [features]], "options": {"max_new_tokens": 3}}),
        json!({"op": "generate", "prompt": "Hi", "steering": [{"kind": "vector", "hook": hook, "values": rows2, "rows": 2, "coef": 1.0}], "options": {"max_new_tokens": 3}}),
        json!({"op": "caa", "dataset": eval, "hook": "blocks.2.hook_resid_mid"}),
        json!({"op": "act_add", "positive": "Love", "negative": "Hate", "hook": hook, "prepend_bos": true}),
        json!({"op": "steerability", "eval": eval, "hook": hook, "vector": v, "multipliers": [-1.0, 0.0, 1.0]}),
        json!({"op": "layer_sweep", "train": eval, "eval": eval, "layers": [0, 2], "multipliers": [-1.0, 1.0]}),
        json!({"op": "decompose", "vector": v, "eval": eval, "corpus": corpus, "multipliers": [-1.0, 1.0], "ks": [1, 4], "top": 5, "edits": [{"features": [1, 2], "mode": "keep"}]}),
        json!({"op": "vectors_vs_zero", "datasets": [pairs, eval], "top": 4}),
        json!({"op": "position_features", "values": rows2, "rows": 2, "top": 3}),
        json!({"op": "edit_vector", "values": rows2, "rows": 2, "edit": {"features": [1, 7], "mode": "remove"}}),
        json!({"op": "steer_score", "steering": features, "prompts": "I went\nShe said", "concept": "love", "strengths": [0.0, 4.0], "max_new_tokens": 3}),
        json!({"op": "population", "sample": 6, "seed": 2, "top": 1, "strengths": [1.0], "prompts": "I went", "corpus": corpus, "lens_k": 5, "max_new_tokens": 2}),
        json!({"op": "features", "features": [0, 5], "strength": 2.0, "prompt": "Hello", "corpus": corpus, "prompts": "I went home\nWe saw it"}),
        json!({"op": "dashboards", "features": [0, 3], "corpus": corpus, "passages": 3, "k": 4}),
        json!({"op": "search_features", "text": "I love the rain", "top": 5}),
    ]
}

/// A request with some numbers swapped for extreme ones (feature ids past what a device index holds, sizes past
/// any SAE, vocabulary or context, non-finite-making floats), lists emptied or repeated, texts emptied or
/// replaced, and fields dropped.
fn mutate_request(v: &mut serde_json::Value, r: &mut rand::rngs::StdRng, depth: usize) {
    use rand::RngExt;
    use serde_json::{Value, json};
    const NUMBERS: &[f64] =
        &[0.0, -1.0, 1.0, 31.0, 32.0, 64.0, 95.0, 96.0, 2147483648.0, 4294967296.0, 1e19, 1e30, -1e38, 3.4e38];
    match v {
        Value::Number(_) if r.random_bool(0.25) => {
            let x = NUMBERS[r.random_range(0..NUMBERS.len())];
            *v = if (0.0..1.8e19).contains(&x) { json!(x as u64) } else { json!(x) };
        }
        Value::String(s) if r.random_bool(0.08) => {
            *s = ["", "\n\n", "\u{0}\u{fffd}é漢🙂", "blocks.99.hook_resid_pre", "ln_final.hook_normalized"]
                [r.random_range(0..5)]
            .to_string();
        }
        Value::Array(a) => {
            a.iter_mut().for_each(|x| mutate_request(x, r, depth + 1));
            if r.random_bool(0.06) {
                a.clear();
            } else if r.random_bool(0.06) && !a.is_empty() {
                let x = a[r.random_range(0..a.len())].clone();
                a.extend(std::iter::repeat_n(x, r.random_range(1..40)));
            }
        }
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if depth > 0 && r.random_bool(0.04) {
                    o.remove(&k);
                } else if let Some(x) = o.get_mut(&k) {
                    mutate_request(x, r, depth + 1);
                }
            }
        }
        _ => {}
    }
}

thread_local! {
    /// The engine the requests go to, loaded once (it is not `Send`, and proptest runs its cases on one thread).
    static LOADED: Engine = {
        let cpu = burn::tensor::Device::flex();
        let mut e = Engine::default();
        e.set_model(Model::from_dir(&fixture_dir("models/gpt2-tiny"), &cpu).unwrap());
        e.set_sae(Sae::from_dir(&fixture_dir("saes/standard"), &cpu).unwrap()).unwrap();
        e
    };
}

/// The seeds themselves are answered, so the mutated requests reach the flows rather than stopping at a check.
#[test]
fn request_seeds_are_answered() {
    for request in request_seeds() {
        let line = LOADED.with(|e| pollster::block_on(e.handle_json(&request.to_string(), never(), &mut |_| {})));
        assert!(matches!(serde_json::from_str::<Reply>(&line), Ok(Reply::Ok(_))), "{request} -> {line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated requests of every kind reach the flows of a loaded engine and each gets a reply, never a panic.
    /// (A feature id of 2^31 or more once panicked in burn's index conversion, not in a check.) A request that
    /// runs long is stopped after a few seconds: the helper's limits refuse such sizes before they run.
    #[test]
    fn requests_to_a_loaded_engine(seed in 0..request_seeds().len(), noise in any::<u64>()) {
        use rand::SeedableRng;
        cap_address_space();
        let mut request = request_seeds().swap_remove(seed);
        mutate_request(&mut request, &mut rand::rngs::StdRng::seed_from_u64(noise), 0);
        let text = request.to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let stop: steerlab::model::Stop = std::rc::Rc::new(move || std::time::Instant::now() > deadline);
        let line = LOADED.with(|e| pollster::block_on(e.handle_json(&text, stop, &mut |_| {})));
        let reply = serde_json::from_str::<Reply>(&line);
        prop_assert!(reply.is_ok(), "{text} -> {line}");
        if let Ok(Reply::Error(e)) = reply {
            prop_assert!(!e.trim().is_empty() && !e.contains("panicked"), "{text} -> {e}");
        }
    }
}

/// The CLI on malformed files: a clear message and exit status 1, never a panic (101) or an abort (134).
#[test]
fn cli_commands_on_malformed_files_exit_1() {
    let dir = std::env::temp_dir().join(format!("steerlab-malformed-{}", std::process::id()));
    let made = std::cell::Cell::new(0);
    let model = |files: &[(&str, Vec<u8>)]| -> PathBuf {
        made.set(made.get() + 1);
        let d = dir.join(format!("m{}", made.get()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (name, bytes) in files {
            std::fs::write(d.join(name), bytes).unwrap();
        }
        d
    };
    let tok = fixture("models/gpt2-tiny/tokenizer.json");
    let weights = fixture("models/gpt2-tiny/model.safetensors");
    let cfg = String::from_utf8(fixture("models/gpt2-tiny/config.json")).unwrap();
    let deep = cfg.replace("\"n_layer\": 3", "\"n_layer\": 1000000000000");
    assert_ne!(deep, cfg);
    let cases: Vec<(Vec<String>, PathBuf, &str)> = vec![
        (
            vec![],
            model(&[
                ("config.json", deep.into_bytes()),
                ("tokenizer.json", tok.clone()),
                ("model.safetensors", weights.clone()),
            ]),
            "is over the limit of 512",
        ),
        (
            vec![],
            model(&[
                ("config.json", cfg.clone().into_bytes()),
                ("tokenizer.json", tok.clone()),
                ("model.safetensors", weights[..weights.len() / 2].to_vec()),
            ]),
            "not a valid safetensors file",
        ),
        (
            vec![],
            model(&[
                ("config.json", b"{".to_vec()),
                ("tokenizer.json", tok.clone()),
                ("model.safetensors", weights.clone()),
            ]),
            "not valid JSON",
        ),
        (
            vec![],
            model(&[
                ("config.json", cfg.clone().into_bytes()),
                ("tokenizer.json", b"PK\x05\x06".to_vec()),
                ("model.safetensors", weights.clone()),
            ]),
            "tokenizer.json",
        ),
    ];
    for (extra, dir, says) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_steerlab"))
            .args(["generate", "--model"])
            .arg(&dir)
            .args(["--prompt", "Hi", "--max-new-tokens", "2", "--device", "cpu"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", dir.display());
        assert!(err.contains(says), "expected \"{says}\" in: {err}");
    }
    // Other commands' input files: a pairs file that is not JSONL, a steering-vector file that is not
    // safetensors, a vector file of the wrong tensor, and a vectors file to encode that is cut short.
    let gpt2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/gpt2-tiny");
    let file = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let pairs = file("pairs.jsonl", b"{\"positive\": \"a\", \"negative\n");
    let garbage = file("garbage.safetensors", &[0xff; 64]);
    let wrong = file("wrong.safetensors", &fixture("saes/standard/sae_weights.safetensors"));
    let cut = file("cut.safetensors", &fixture("saes/standard/sae_weights.safetensors")[..300]);
    let out = dir.join("out.safetensors");
    let runs: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![
                "caa".into(),
                "--model".into(),
                gpt2.clone().into(),
                "--pairs".into(),
                pairs.into(),
                "--hook".into(),
                "blocks.1.hook_resid_pre".into(),
                "--out".into(),
                out.clone().into(),
            ],
            "pairs.jsonl: line 1",
        ),
        (
            vec![
                "generate".into(),
                "--model".into(),
                gpt2.clone().into(),
                "--prompt".into(),
                "Hi".into(),
                "--steer".into(),
                garbage.into(),
            ],
            "not a valid safetensors file",
        ),
        (
            vec![
                "generate".into(),
                "--model".into(),
                gpt2.clone().into(),
                "--prompt".into(),
                "Hi".into(),
                "--steer".into(),
                wrong.into(),
            ],
            "steering_vector",
        ),
        (
            vec![
                "sae-encode".into(),
                "--sae".into(),
                fixture_dir("saes/standard").into(),
                "--input".into(),
                cut.into(),
                "--tensor".into(),
                "W_dec".into(),
                "--out".into(),
                out.into(),
            ],
            "not a valid safetensors file",
        ),
    ];
    for (args, says) in runs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_steerlab")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "expected \"{says}\" in: {err}");
    }

    // An SAE whose params.npz is an empty archive record, then one cut short.
    let sae_dir = dir.join("gemma-scope-res/layer_1/width_96/x");
    std::fs::create_dir_all(&sae_dir).unwrap();
    for (bytes, says) in [
        (b"PK\x05\x06".to_vec(), "truncated end-of-central-directory"),
        (fixture("saes/gemma-scope-res/layer_1/width_96/average_l0_9/params.npz")[..4000].to_vec(), "npz"),
    ] {
        std::fs::write(sae_dir.join("params.npz"), &bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_steerlab"))
            .args(["sae-encode", "--sae"])
            .arg(&sae_dir)
            .arg("--input")
            .arg(dir.join("absent.safetensors"))
            .args(["--tensor", "v", "--out"])
            .arg(dir.join("out.safetensors"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(says), "expected \"{says}\" in: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
