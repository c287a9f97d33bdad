//! The engine's request/response API (what the browser's worker and the helper call) gives the same answers as
//! the functions it wraps, streams generated text, stops when cancelled, and answers bad requests with errors.

mod common;

use common::*;
use serde_json::{Value, json};
use std::cell::Cell;
use std::rc::Rc;
use steerlab::engine::{Engine, Event};
use steerlab::model::Model;
use steerlab::sae::Sae;

fn engine() -> Engine {
    let cpu = burn::tensor::Device::flex();
    let mut e = Engine::default();
    e.set_model(Model::from_dir(&model_dir("gpt2-tiny"), &cpu).unwrap());
    let sae = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes/standard");
    e.set_sae(Sae::from_dir(&sae, &cpu).unwrap()).unwrap();
    e
}

/// Sends `request` as JSON; returns the reply and the events.
fn ask(e: &Engine, request: Value) -> (Value, Vec<Event>) {
    ask_cancelling(e, request, usize::MAX)
}

/// Like `ask`, cancelling after `after` events.
fn ask_cancelling(e: &Engine, request: Value, after: usize) -> (Value, Vec<Event>) {
    let cancel = Rc::new(Cell::new(false));
    let stop = cancel.clone();
    let mut events = Vec::new();
    let reply = pollster::block_on(e.handle_json(&request.to_string(), Rc::new(move || stop.get()), &mut |ev| {
        events.push(ev);
        if events.len() >= after {
            cancel.set(true);
        }
    }));
    (serde_json::from_str(&reply).unwrap(), events)
}

/// The A/B items fixture: its text, and an inline dataset of it.
fn ab_fixture() -> (String, Value) {
    let ab = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ab.jsonl"))
        .unwrap();
    let eval = json!({"from": "inline", "name": "ab.jsonl", "text": ab});
    (ab, eval)
}

fn ok(reply: &Value) -> &Value {
    reply.get("ok").unwrap_or_else(|| panic!("expected a reply, got {reply}"))
}

fn error(reply: &Value) -> String {
    reply["error"].as_str().unwrap_or_else(|| panic!("expected an error, got {reply}")).to_string()
}

#[test]
fn status_generate_and_cancel() {
    let e = engine();
    let (r, _) = ask(&e, json!({"op": "status"}));
    assert_eq!(ok(&r)["model"]["config"]["d_model"], 32);
    assert_eq!(ok(&r)["sae"]["config"]["hook_name"], "blocks.1.hook_resid_pre");

    let exp = Expected::load("gpt2-tiny");
    let (r, events) = ask(&e, json!({"op": "generate", "prompt": exp.prompts()[0], "options": {"max_new_tokens": 6}}));
    let tokens: Vec<u32> = serde_json::from_value(ok(&r)["tokens"].clone()).unwrap();
    assert_eq!(tokens.len(), 6);
    let Some(Event::Text { text }) = events.last() else { panic!("no streamed text") };
    assert_eq!(text, ok(&r)["text"].as_str().unwrap(), "the last event holds the whole continuation");

    let steer = json!([{"kind": "features", "features": [[3, 40.0]]}]);
    let (r, _) =
        ask(&e, json!({"op": "generate", "prompt": "Hi", "steering": steer, "options": {"max_new_tokens": 4}}));
    assert!(ok(&r)["tokens"].as_array().unwrap().len() == 4);

    let (r, events) =
        ask_cancelling(&e, json!({"op": "generate", "prompt": "Hi", "options": {"max_new_tokens": 20}}), 2);
    assert_eq!((error(&r), events.len()), ("cancelled".to_string(), 2));
}

#[test]
fn caa_and_steerability_match_the_functions() {
    use steerlab::steer::caa::caa_vector;
    use steerlab::steer::dataset::Dataset;
    use steerlab::steer::propensity::{Probes, steerability};
    let e = engine();
    let model = e.model.as_ref().unwrap();
    let hook = "blocks.1.hook_resid_pre";
    let (r, _) =
        ask(&e, json!({"op": "caa", "dataset": {"from": "built_in", "file": "love-hate.jsonl"}, "hook": hook}));
    let values: Vec<f32> = serde_json::from_value(ok(&r)["values"].clone()).unwrap();
    let text = include_str!("../static/datasets/love-hate.jsonl");
    let pairs = Dataset::parse(text, "love-hate").unwrap().pairs().unwrap();
    assert_eq!(values, pollster::block_on(caa_vector(model, &pairs, hook)).unwrap());

    let (ab, eval) = ab_fixture();
    let req =
        json!({"op": "steerability", "eval": eval, "hook": hook, "vector": values, "multipliers": [-1.0, 0.0, 1.0]});
    let (r, _) = ask(&e, req);
    let probes = Probes::prepare(model, &Dataset::parse(&ab, "ab").unwrap()).unwrap();
    let want = pollster::block_on(steerability(model, &probes, hook, &values, &[-1.0, 0.0, 1.0])).unwrap();
    assert_eq!(ok(&r)["curve"]["steerability"].as_f64().unwrap() as f32, want.steerability);

    let req =
        json!({"op": "decompose", "vector": values, "eval": eval, "multipliers": [-1.0, 1.0], "ks": [1, 4], "top": 5});
    let (r, _) = ask(&e, req);
    let table = ok(&r)["decomposition"]["table"].as_array().unwrap();
    assert!(table.iter().any(|row| row["method"].as_str().unwrap().contains("gradient pursuit")), "{table:?}");

    let (r, _) = ask(&e, json!({"op": "features", "features": [0, 5], "strength": 2.0}));
    assert_eq!(ok(&r)["scores"].as_array().unwrap().len(), 2);
    assert_eq!(ok(&r)["side_effects"]["rows"].as_array().unwrap().len(), 2);
}

/// Variants decoded together as one batch equal each generated alone (greedy, and sampled with a seed): the
/// unsteered row, a vector-steered row and a feature-steered row; every step streams all rows' texts.
#[test]
fn variants_decode_together_as_they_would_alone() {
    let e = engine();
    let d = e.model.as_ref().unwrap().cfg().d_model;
    // Not constant across dims: layer norm would centre a constant away.
    let values: Vec<f32> = (0..d).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
    let vector =
        json!([{"kind": "vector", "hook": "blocks.1.hook_resid_pre", "values": values, "rows": null, "coef": 3.0}]);
    let features = json!([{"kind": "features", "features": [[3, 40.0]]}]);
    for options in [
        json!({"max_new_tokens": 8}),
        json!({"max_new_tokens": 8, "sampling": {"temperature": 0.9, "top_k": 20, "seed": 5}}),
    ] {
        let variants = json!([[], vector, features]);
        let (r, events) = ask(
            &e,
            json!({"op": "generate_variants", "prompt": "I think that", "variants": variants, "options": options}),
        );
        let texts = ok(&r)["texts"].as_array().unwrap().clone();
        assert_eq!(texts.len(), 3);
        let Some(Event::Texts { texts: last }) = events.last() else { panic!("no streamed texts") };
        assert_eq!(serde_json::to_value(last).unwrap(), Value::Array(texts.clone()));
        for (i, steering) in [json!([]), vector.clone(), features.clone()].into_iter().enumerate() {
            let (alone, _) =
                ask(&e, json!({"op": "generate", "prompt": "I think that", "steering": steering, "options": options}));
            assert_eq!(ok(&alone)["text"], texts[i], "variant {i} with {options}");
        }
        assert_ne!(texts[0], texts[1], "steering changed nothing");
    }
    let (r, _) = ask(&e, json!({"op": "generate_variants", "prompt": "Hi", "variants": []}));
    assert_eq!(error(&r), "no variants to generate");
}

/// Sends `request` with a `stop` that says stop from its `after`-th question on; returns the reply and how often
/// it was asked.
fn ask_stopping_after(e: &Engine, request: Value, after: usize) -> (Value, usize) {
    let asked = Rc::new(Cell::new(0));
    let count = asked.clone();
    let stop = Rc::new(move || {
        count.set(count.get() + 1);
        count.get() >= after
    });
    let reply = pollster::block_on(e.handle_json(&request.to_string(), stop, &mut |_| {}));
    (serde_json::from_str(&reply).unwrap(), asked.get())
}

#[test]
fn sweeps_diagnostics_and_scores_stop_at_the_next_forward_pass() {
    let mut e = engine();
    // Batches are cut into chunks that fit the device; a one-byte budget makes every row its own pass, so each
    // request has many chunks to stop between.
    e.model.as_mut().unwrap().limits.budget_bytes = 1;
    let hook = "blocks.1.hook_resid_pre";
    let (_, eval) = ab_fixture();
    let train = json!({"from": "built_in", "file": "love-hate.jsonl"});
    let vector = vec![0.1f32; e.model.as_ref().unwrap().cfg().d_model];
    let requests = [
        json!({"op": "caa", "dataset": train, "hook": hook}),
        json!({"op": "steerability", "eval": eval, "hook": hook, "vector": vector, "multipliers": [-1.0, 0.0, 1.0]}),
        json!({"op": "layer_sweep", "train": train, "eval": eval, "layers": [0, 1], "multipliers": [-1.0, 1.0]}),
        json!({"op": "decompose", "vector": vector, "eval": eval, "multipliers": [-1.0, 1.0], "ks": [1, 4], "top": 5}),
        json!({"op": "features", "features": [0, 5], "strength": 2.0}),
    ];
    for req in requests {
        // Run whole, it asks many times; told to stop at the third question, it stops there.
        let (whole, asked) = ask_stopping_after(&e, req.clone(), usize::MAX);
        ok(&whole);
        assert!(asked > 3, "{req}: asked only {asked} times");
        let (stopped, asked) = ask_stopping_after(&e, req.clone(), 3);
        assert_eq!((error(&stopped), asked), ("cancelled".to_string(), 3), "{req}");
    }
    // The engine serves on after a stopped request.
    let (r, _) = ask(&e, json!({"op": "status"}));
    ok(&r);
}

#[test]
fn bad_requests_get_clear_errors() {
    let e = engine();
    let (r, _) = ask(&e, json!({"op": "fly"}));
    assert!(error(&r).starts_with("not a valid request: unknown variant `fly`"), "{r}");
    let reply = pollster::block_on(e.handle_json("{not json", steerlab::engine::never(), &mut |_| {}));
    assert!(reply.contains("not a valid request"), "{reply}");
    let (r, _) = ask(
        &e,
        json!({"op": "caa", "dataset": {"from": "built_in", "file": "nope.jsonl"}, "hook": "blocks.0.hook_resid_pre"}),
    );
    assert!(error(&r).contains("no built-in dataset \"nope.jsonl\" (there are: corrigibility-ab.json"), "{r}");
    let same = r#"{"positive": "I love it", "negative": "I love it"}"#;
    let eval = json!({"from": "inline", "name": "typed", "text": format!("{same}\n{same}")});
    let (r, _) = ask(
        &e,
        json!({"op": "steerability", "eval": eval, "hook": "blocks.0.hook_resid_pre", "vector": [0.0], "multipliers": [0.0, 1.0]}),
    );
    assert!(error(&r).contains("pair 1: the positive and negative texts are the same tokens"), "{r}");
    let values = vec![0.0f32; 64];
    let actadd = json!({"kind": "vector", "hook": "blocks.0.hook_resid_pre", "values": values, "rows": 2, "coef": 1.0});
    let (r, _) = ask(
        &e,
        json!({"op": "steer_score", "steering": actadd, "prompts": "Hi", "concept": "love", "strengths": [0.0, 1.0]}),
    );
    assert!(error(&r).contains("a position-aligned (ActAdd) vector has one row per position"), "{r}");
    let (r, _) = ask(
        &e,
        json!({"op": "generate", "prompt": "Hi", "steering": [{"kind": "vector", "hook": "blocks.0.hook_resid_pre", "values": [1.0, 2.0], "rows": null, "coef": 1.0}]}),
    );
    assert!(error(&r).contains("steering vector has 2 dims"), "{r}");
    // A feature id past what a device index holds (i32) is refused like any missing feature, not handed to burn.
    let (r, _) = ask(&e, json!({"op": "features", "features": [0, 1u64 << 32], "corpus": "The cat sat on the mat."}));
    assert_eq!(error(&r), "feature 4294967296 does not exist: this SAE has 96 features");
    // Steering too strong for f32 overflows to NaN, which JSON cannot carry (serde_json writes null, which the
    // page cannot read as a number): the reply is an error, not a message the page cannot read.
    let (_, eval) = ab_fixture();
    let (r, _) = ask(
        &e,
        json!({"op": "steerability", "eval": eval, "hook": "blocks.1.hook_resid_pre", "vector": vec![1e19f32; 32], "multipliers": [-1e19, 1e19]}),
    );
    assert!(error(&r).starts_with("a result came out NaN or infinite"), "{r}");

    let empty = Engine::default();
    let (r, _) = ask(&empty, json!({"op": "generate", "prompt": "Hi"}));
    assert_eq!(error(&r), "no model is loaded");
    let (r, _) = ask(&empty, json!({"op": "status"}));
    assert_eq!(ok(&r)["model"], Value::Null);
}

/// Every view of the lab runs on Gemma-2 (a sharded checkpoint) with a Gemma Scope JumpReLU SAE, as the helper
/// serves them: prompts start with <bos>, and single-token lookups do not count it.
#[test]
fn every_view_runs_on_gemma2_with_gemma_scope() {
    let cpu = burn::tensor::Device::flex();
    let mut e = Engine::default();
    e.set_model(Model::from_dir(&model_dir("gemma2-tiny"), &cpu).unwrap());
    let sae = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/saes/gemma-scope-res/layer_1/width_96/average_l0_9");
    e.set_sae(Sae::from_dir(&sae, &cpu).unwrap()).unwrap();
    let hook = "blocks.1.hook_resid_post";
    assert_eq!(e.model.as_ref().unwrap().encode("Hello", false).unwrap()[0], 2, "<bos> first");

    let (r, _) = ask(&e, json!({"op": "status"}));
    assert_eq!(
        (ok(&r)["model"]["config"]["arch"].as_str(), ok(&r)["sae"]["config"]["hook_name"].as_str()),
        (Some("gemma2"), Some(hook))
    );
    let (r, _) =
        ask(&e, json!({"op": "caa", "dataset": {"from": "built_in", "file": "love-hate.jsonl"}, "hook": hook}));
    let values: Vec<f32> = serde_json::from_value(ok(&r)["values"].clone()).unwrap();
    assert_eq!(values.len(), 32);
    assert!(values.iter().any(|v| *v != 0.0));

    let (_, eval) = ab_fixture();
    let req =
        json!({"op": "steerability", "eval": eval, "hook": hook, "vector": values, "multipliers": [-2.0, 0.0, 2.0]});
    let (r, _) = ask(&e, req);
    assert!(ok(&r)["curve"]["steerability"].as_f64().unwrap().is_finite(), "{r}");

    let req =
        json!({"op": "decompose", "vector": values, "eval": eval, "multipliers": [-1.0, 1.0], "ks": [1, 4], "top": 5});
    let (r, _) = ask(&e, req);
    assert!(ok(&r)["decomposition"]["table"].as_array().unwrap().len() > 2, "{r}");

    let (r, _) = ask(&e, json!({"op": "features", "promoting": " the", "count": 3, "strength": 2.0}));
    assert_eq!(ok(&r)["scores"].as_array().unwrap().len(), 3, "{r}");

    let steer = json!([{"kind": "vector", "hook": hook, "values": values, "rows": null, "coef": 4.0}]);
    let (r, events) =
        ask(&e, json!({"op": "generate", "prompt": "Hello", "steering": steer, "options": {"max_new_tokens": 5}}));
    assert_eq!(ok(&r)["tokens"].as_array().unwrap().len(), 5);
    assert!(!events.is_empty());

    let (r, _) =
        ask(&e, json!({"op": "act_add", "positive": "Love", "negative": "Hate", "hook": hook, "prepend_bos": false}));
    assert!(ok(&r)["values"].as_array().is_some_and(|v| !v.is_empty()), "{r}");
}

#[test]
fn flows_report_their_progress_by_stage() {
    let e = engine();
    let (_, eval) = ab_fixture();
    let vector = vec![0.1f32; 32];
    let request: steerlab::engine::Request = serde_json::from_value(json!({
        "op": "steerability", "eval": eval, "hook": "blocks.1.hook_resid_pre", "vector": vector,
        "multipliers": [-2.0, 0.0, 2.0]
    }))
    .unwrap();
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = seen.clone();
    let progress: steerlab::model::Progress =
        Rc::new(move |stage: &str, done, total| sink.borrow_mut().push((stage.to_string(), done, total)));
    let reply = pollster::block_on(e.handle_reporting(request, steerlab::engine::never(), Some(progress), &mut |_| {}));
    reply.unwrap();
    let seen = seen.borrow();
    assert!(seen.len() >= 2, "{seen:?}");
    let items = steerlab::steer::dataset::parse_ab_items(&ab_fixture().0, "ab").unwrap().len();
    // Every item unsteered, then once per non-zero multiplier.
    assert!(seen.iter().all(|(s, _, t)| s == "A/B items × vectors × multipliers" && *t == items * 3), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1) && seen[0].1 == 0 && seen.last().unwrap().1 < items * 3);
}
