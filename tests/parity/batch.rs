//! Batched passes equal one-sequence passes (1e-5 relative) on every fixture model, on the CPU and on wgpu:
//! rows of different lengths right-padded together, each row steered its own way (another vector, another
//! multiplier, from another position, ActAdd's aligned rows on some rows only), several hooks captured in one
//! pass, and passes resumed from a captured hook.

use crate::common::*;
use burn::tensor::{Tensor, TensorData};
use steerlab::device::read;
use steerlab::model::Model;
use steerlab::model::batch::{Batch, gather_positions};
use steerlab::model::hooks::{HookPoint, Hooks, Intervention, RowAdd, RowSteering};
use steerlab::model::transformer::Input;
use steerlab::steer::apply::{aligned_intervention, intervention};

const ALL_MODELS: &[&str] = &[
    "gpt2-tiny",
    "gpt2-tiny-bf16-prefixed",
    "pythia-tiny-f16-parallel",
    "pythia-tiny-f32-sequential",
    "gemma2-tiny",
    "gemma2-tiny-layer-types",
];

const PROMPTS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog near the river bank today",
    "Hello",
    "I think that love is",
    "Steering vectors move a model's behaviour, one layer at a time.",
];

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    pollster::block_on(read(t)).unwrap().data
}

/// A deterministic pseudo-random vector of `d` values in [-scale, scale].
fn vector(d: usize, seed: u32, scale: f32) -> Vec<f32> {
    (0..d).map(|i| ((i as f32 * 0.7 + seed as f32 * 1.3).sin()) * scale).collect()
}

/// What each row gets: (vector index, coefficient, from position), or None.
fn row_plan() -> Vec<Option<(usize, f32, usize)>> {
    vec![None, Some((0, 2.0, 0)), Some((1, -1.5, 2)), Some((0, 0.5, 1))]
}

fn check_close(what: &str, got: &[f32], want: &[f32]) {
    let d = rel_diff(got, want);
    assert!(d <= 1e-5, "{what}: batched differs by {d} (relative)");
}

#[test]
fn batched_passes_equal_single_ones() {
    for name in ALL_MODELS {
        for (dev_name, device) in devices() {
            let model = Model::from_dir(&model_dir(name), &device).unwrap();
            let cfg = model.cfg().clone();
            let (d, vocab) = (cfg.d_model, cfg.vocab_size);
            let hook = HookPoint::ResidPre(1.min(cfg.n_layers - 1));
            let captured = [HookPoint::ResidMid(0), HookPoint::ResidPost(cfg.n_layers - 1)];
            let vectors = [vector(d, 1, 0.8), vector(d, 2, 1.1)];
            let aligned = vector(2 * d, 3, 0.6); // two ActAdd rows
            let aligned_rows = [1.0, 0.0, 0.5, 1.0];
            let seqs: Vec<Vec<u32>> = PROMPTS.iter().map(|p| model.encode(p, false).unwrap()).collect();
            let batch = Batch::new(&seqs).unwrap();
            assert!(batch.lens.iter().any(|&l| l < batch.seq), "{name}: the rows must differ in length");

            // Batched: per-row steering, the ActAdd rows on some rows only, two hooks captured.
            let stacked: Vec<f32> = vectors.concat();
            let steering = RowSteering {
                hook,
                vectors: Tensor::from_data(TensorData::new(stacked, [2, d]), &device),
                rows: row_plan()
                    .into_iter()
                    .map(|r| r.map(|(vector, coef, from_pos)| RowAdd { vector, coef, from_pos }))
                    .collect(),
            };
            let actadd = aligned_intervention(&model, &hook.to_string(), &aligned, 1.5, 1).unwrap();
            let mut hooks = Hooks {
                interventions: vec![Intervention { rows: Some(aligned_rows.to_vec()), ..actadd }],
                rows: vec![steering],
                capture: captured.to_vec(),
                ..Default::default()
            };
            let input = Input::Tokens { ids: &batch.ids, rows: batch.rows() };
            let normed = model.run_to(input, &mut hooks, HookPoint::LnFinal).unwrap(); // [rows, seq, d]
            let last = gather_positions(normed.clone(), &batch.last_positions());
            let last_logits = host(model.net.vocab_logits(last.clone()));
            let picked_ids: Vec<u32> = (0..batch.rows() as u32).flat_map(|r| [r + 3, 7 * r + 1]).collect();
            let picked = host(model.net.token_logits(last, &picked_ids, 2));
            let normed = host(normed);
            let caps: Vec<Vec<f32>> = captured.iter().map(|&p| host(hooks.take(p).unwrap())).collect();

            // The padding changes nothing: other ids in the padded positions give the same real positions.
            let mut repadded = batch.clone();
            for (r, &len) in batch.lens.iter().enumerate() {
                repadded.ids[r * batch.seq + len..(r + 1) * batch.seq].fill(5);
            }
            let again = model
                .run_to(
                    Input::Tokens { ids: &repadded.ids, rows: batch.rows() },
                    &mut Hooks::default(),
                    HookPoint::LnFinal,
                )
                .unwrap();
            let plain = model
                .run_to(
                    Input::Tokens { ids: &batch.ids, rows: batch.rows() },
                    &mut Hooks::default(),
                    HookPoint::LnFinal,
                )
                .unwrap();
            let (again, plain) = (host(again), host(plain));

            for (r, tokens) in seqs.iter().enumerate() {
                let what = format!("{name} on {dev_name}, row {r} ({} of {} tokens)", tokens.len(), batch.seq);
                let mut single = steered(&model, r, &hook, &vectors, &aligned, &aligned_rows);
                single.capture = captured.to_vec();
                let want_normed = host(model.run_to(Input::tokens(tokens), &mut single, HookPoint::LnFinal).unwrap());
                let s = tokens.len();
                let row = |x: &[f32]| x[r * batch.seq * d..(r * batch.seq + s) * d].to_vec();
                check_close(&format!("{what}: ln_final"), &row(&normed), &want_normed);
                for (p, cap) in captured.iter().zip(&caps) {
                    check_close(&format!("{what}: {p}"), &row(cap), &host(single.take(*p).unwrap()));
                }
                let want_logits = host(
                    model
                        .next_token_logits(tokens, &mut steered(&model, r, &hook, &vectors, &aligned, &aligned_rows))
                        .unwrap(),
                );
                check_close(&format!("{what}: last logits"), &last_logits[r * vocab..(r + 1) * vocab], &want_logits);
                for j in 0..2 {
                    let id = picked_ids[2 * r + j] as usize;
                    let (got, want) = (picked[2 * r + j], want_logits[id]);
                    assert!(
                        (got - want).abs() <= 1e-5 * want_logits.iter().fold(1.0f32, |m, x| m.max(x.abs())),
                        "{what}: logit of {id}: {got} vs {want}"
                    );
                }
                assert_eq!(row(&again), row(&plain), "{what}: the padding leaked into real positions");
            }
        }
    }
}

/// Row `r`'s steering as one-sequence interventions.
fn steered(model: &Model, r: usize, hook: &HookPoint, vectors: &[Vec<f32>; 2], aligned: &[f32], rows: &[f32]) -> Hooks {
    let mut ivs = Vec::new();
    if let Some((v, coef, from)) = row_plan()[r] {
        ivs.push(intervention(model, &hook.to_string(), &vectors[v], coef, from).unwrap());
    }
    ivs.push(aligned_intervention(model, &hook.to_string(), aligned, 1.5 * rows[r], 1).unwrap());
    Hooks::steering(ivs)
}

/// A pass resumed from a hook's captured activation equals the whole pass, steered at that hook, for
/// resid_pre and resid_post.
#[test]
fn resumed_passes_equal_whole_ones() {
    for name in ["gpt2-tiny", "pythia-tiny-f16-parallel", "gemma2-tiny"] {
        for (dev_name, device) in devices() {
            let model = Model::from_dir(&model_dir(name), &device).unwrap();
            let d = model.cfg().d_model;
            let seqs: Vec<Vec<u32>> = PROMPTS[..3].iter().map(|p| model.encode(p, false).unwrap()).collect();
            let batch = Batch::new(&seqs).unwrap();
            let input = || Input::Tokens { ids: &batch.ids, rows: batch.rows() };
            for hook in [HookPoint::ResidPre(1), HookPoint::ResidPost(0)] {
                let steer = || {
                    let rows = vec![
                        Some(RowAdd { vector: 0, coef: 3.0, from_pos: 0 }),
                        None,
                        Some(RowAdd { vector: 0, coef: -2.0, from_pos: 1 }),
                    ];
                    let vectors = Tensor::from_data(TensorData::new(vector(d, 9, 1.0), [1, d]), &device);
                    Hooks { rows: vec![RowSteering { hook, vectors, rows }], ..Default::default() }
                };
                let whole = host(model.run_to(input(), &mut steer(), HookPoint::LnFinal).unwrap());
                let mut clean = Hooks::capturing([hook]);
                model.run_to(input(), &mut clean, HookPoint::LnFinal).unwrap();
                let x = clean.take(hook).unwrap();
                let resumed =
                    host(model.run_to(Input::Resume { at: hook, x }, &mut steer(), HookPoint::LnFinal).unwrap());
                check_close(&format!("{name} on {dev_name}, resumed at {hook}"), &resumed, &whole);
            }
            let e = model.run_to(
                Input::Resume { at: HookPoint::ResidMid(0), x: Tensor::zeros([1, 2, d], &device) },
                &mut Hooks::default(),
                HookPoint::LnFinal,
            );
            assert!(e.unwrap_err().to_string().contains("cannot be resumed"));
            let x = Tensor::zeros([1, 2, d], &device);
            let e = model.run_to(
                Input::Resume { at: HookPoint::ResidPre(1), x },
                &mut Hooks::default(),
                HookPoint::ResidMid(0),
            );
            assert!(e.unwrap_err().to_string().contains("cannot stop at blocks.0.hook_resid_mid, before it"));
        }
    }
}

/// Bad batches are refused with a clear error, not a panic.
#[test]
fn bad_batches_are_refused() {
    assert!(Batch::new::<Vec<u32>>(&[]).unwrap_err().to_string().contains("empty batch"));
    assert!(Batch::new(&[vec![1u32], vec![]]).unwrap_err().to_string().contains("sequence 2"));
    let device = burn::tensor::Device::flex();
    let model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
    let d = model.cfg().d_model;
    let rows = vec![Some(RowAdd { vector: 0, coef: 1.0, from_pos: 0 })];
    let vectors = Tensor::from_data(TensorData::new(vec![0.0; d], [1, d]), &device);
    let mut hooks =
        Hooks { rows: vec![RowSteering { hook: HookPoint::ResidPre(0), vectors, rows }], ..Default::default() };
    let e = model.run_to(Input::Tokens { ids: &[1, 2, 3, 4], rows: 2 }, &mut hooks, HookPoint::LnFinal).unwrap_err();
    assert!(e.to_string().contains("per-row steering for 1 rows, but the batch has 2"), "{e}");
    let e = model
        .run_to(Input::Tokens { ids: &[1, 2, 3], rows: 2 }, &mut Hooks::default(), HookPoint::LnFinal)
        .unwrap_err();
    assert!(e.to_string().contains("rows of equal length"), "{e}");
}

/// Chunks respect the limits: a small budget cuts a batch into several passes, each at least one row.
#[test]
fn chunks_fit_the_limits() {
    let device = burn::tensor::Device::flex();
    let mut model = Model::from_dir(&model_dir("gpt2-tiny"), &device).unwrap();
    let lens = vec![10, 20, 30, 40, 50];
    assert_eq!(model.chunks(&lens, |_| 0), vec![0..5]);
    model.limits.budget_bytes = 1; // every row alone
    assert_eq!(model.chunks(&lens, |_| 0), vec![0..1, 1..2, 2..3, 3..4, 4..5]);
    model.limits.budget_bytes = 512 << 20;
    model.limits.max_binding_bytes = 3 << 22; // a 4 MiB buffer of the caller's per row: 3 rows a pass
    assert_eq!(model.chunks(&lens, |_| 1 << 22), vec![0..3, 3..5]);
}
