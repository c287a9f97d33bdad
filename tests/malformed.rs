//! Every parser on arbitrary and mutated bytes: safetensors, npz, model and SAE configs, shard indexes, datasets,
//! permalinks, tokenizer files and the NDJSON protocol's messages. Each input must give Ok or a clear Err — never
//! a panic, an abort or a huge allocation. The address space is capped (8 GiB) for the whole run, so an
//! allocation sized from a crafted field aborts the test instead of passing unseen.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use steerlab::engine::{Engine, Event, Reply, Request, never};
use steerlab::experiment::Experiment;
use steerlab::model::config::ModelConfig;
use steerlab::model::weights::{SafetensorsWeights, shard_files};
use steerlab::npz::NpzWeights;
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
