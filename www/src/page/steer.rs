//! Steering: a CAA vector from a built-in dataset or typed pairs at a layer, generation with and without it side
//! by side (streaming), and steerability sweeps over multipliers and layers on the held-out third of the vector's
//! own dataset (A/B items by their answers' logit difference, pairs by their texts' log-probability difference).

use super::bridge::{self, Lab, Msg};
use super::export;
use super::widgets::{Plot, stop_button};
use leptos::prelude::*;
use steerlab::engine::{DatasetRef, Event, Part, Reply, Request, Response, Steering};
use steerlab::model::generate::GenerateOptions;
use steerlab::steer::dataset::Dataset;
use steerlab::steer::propensity::{LayerSweepRow, Measure, SteerabilityCurve};
use steerlab_www::plot::{Series, line_chart};

/// Built-in datasets the page offers: (file, label). Each trains on two thirds and is measured on the rest.
pub const DATASETS: [(&str, &str); 4] = [
    ("love-hate.jsonl", "love vs hate (pairs)"),
    ("anger-calm.jsonl", "anger vs calm (pairs)"),
    ("wedding.jsonl", "weddings (pairs)"),
    ("corrigibility-ab.json", "corrigibility (A/B items)"),
];
const TYPED: &str = "typed";
pub const MULTIPLIERS: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

/// A computed steering vector.
#[derive(Clone, PartialEq)]
pub struct Vector {
    pub hook: String,
    pub values: Vec<f32>,
    pub count: usize,
    /// What it was computed from, and the held-out part of the same data its steerability is measured on.
    pub train: DatasetRef,
    pub eval: DatasetRef,
}

/// A layer sweep's rows and the data its vectors were built from and measured on.
#[derive(Clone, PartialEq)]
pub struct LayerSweep {
    pub rows: Vec<LayerSweepRow>,
    pub train: DatasetRef,
    pub eval: DatasetRef,
}

/// The experiment being run: what a permalink saves.
#[derive(Clone, Copy)]
pub struct Exp {
    pub prompt: RwSignal<String>,
    /// A built-in file name, or `typed`.
    pub dataset: RwSignal<String>,
    pub typed: RwSignal<String>,
    pub layer: RwSignal<usize>,
    pub multiplier: RwSignal<f32>,
    pub vector: RwSignal<Option<Vector>>,
    /// The generated continuations, unsteered and steered.
    pub plain: RwSignal<String>,
    pub steered: RwSignal<String>,
    /// The last multiplier sweep and SAE decomposition of the vector, and the last layer sweep.
    pub curve: RwSignal<Option<SteerabilityCurve>>,
    pub layers: RwSignal<Option<LayerSweep>>,
    /// Feature edits the diagnostics add as table rows: features to keep only, and to remove (typed ids).
    pub keep: RwSignal<String>,
    pub remove: RwSignal<String>,
    pub decomposition: RwSignal<Option<steerlab::analysis::Decomposition>>,
    /// The chosen real dataset's sets, once downloaded (`super::remote`).
    pub remote: RwSignal<Option<super::remote::RemoteSets>>,
}

impl Exp {
    /// Every dataset trains on two thirds and is measured on the held-out third (every third record), so the
    /// numbers below come from data the vector never saw, of its own behaviour.
    fn part(&self, part: Part) -> DatasetRef {
        // A real dataset comes as two sets: the generate set builds the vector, the test set measures it.
        if let Some(b) = super::remote::chosen(self)
            && let Some(r) = self.remote.get_untracked().filter(|r| r.name == b.name)
        {
            let (set, text) = if part == Part::Test { ("test", r.test) } else { ("generate", r.train) };
            return DatasetRef::Inline { name: format!("{} (Rimsky et al.'s {set} set)", b.name), text, part: None };
        }
        match self.dataset.get_untracked().as_str() {
            TYPED => {
                let text = self.typed.get_untracked();
                let name = if Dataset::holds_ab_items(&text) { "your A/B items" } else { "your pairs" };
                DatasetRef::Inline { name: name.into(), text, part: Some(part) }
            }
            f => DatasetRef::BuiltIn { file: f.into(), part: Some(part) },
        }
    }

    /// What the vector (and each layer of a layer sweep) is built from.
    pub fn dataset_ref(&self) -> DatasetRef {
        self.part(Part::Train)
    }

    /// What steerability is measured on: the held-out third of the same data.
    pub fn eval_ref(&self) -> DatasetRef {
        self.part(Part::Test)
    }

    /// What a permalink names: a real dataset by name (the link stays short; opening it downloads the sets).
    pub fn link_dataset(&self) -> DatasetRef {
        match super::remote::chosen(self) {
            Some(b) => DatasetRef::built_in(&format!("caa/{}", b.name)),
            None => self.dataset_ref(),
        }
    }

    pub fn set_dataset(&self, d: &DatasetRef) {
        match d {
            DatasetRef::BuiltIn { file, .. }
                if steerlab::steer::remote::behaviour(file).is_ok() && file.starts_with("caa/") =>
            {
                self.dataset.set(file.clone())
            }
            DatasetRef::BuiltIn { file, .. } if DATASETS.iter().any(|(f, _)| f == file) => {
                self.dataset.set(file.clone())
            }
            DatasetRef::BuiltIn { .. } => {}
            DatasetRef::Inline { text, .. } => {
                self.typed.set(text.clone());
                self.dataset.set(TYPED.into());
            }
        }
    }

    pub fn hook(&self) -> String {
        format!("blocks.{}.hook_resid_pre", self.layer.get_untracked())
    }
}

/// Where an SAE reading a block's output sits in a sweep over block inputs: blocks.N.hook_resid_post (Gemma
/// Scope's layer_N) is the same stream as blocks.N+1.hook_resid_pre.
fn resid_post_note(sae_hook: &str) -> Option<String> {
    let n: usize = sae_hook.strip_prefix("blocks.")?.strip_suffix(".hook_resid_post")?.parse().ok()?;
    Some(format!(
        "The sweep adds each vector at blocks.L.hook_resid_pre, a block's input. The loaded SAE reads {sae_hook}, \
         block {n}'s output (Gemma Scope's layer_{n}), which is the same stream as blocks.{}.hook_resid_pre: \
         layer {} here.",
        n + 1,
        n + 1
    ))
}

/// The difference a curve averages, in a plot axis's words.
fn measure_axis(m: Measure) -> &'static str {
    match m {
        Measure::AbLogitDiff => "mean logit diff",
        Measure::PairLogProbDiff => "mean log-prob diff",
    }
}

/// What a steerability number is a slope of, and on what, in a sentence's words.
pub fn measure_words(m: Measure) -> &'static str {
    match m {
        Measure::AbLogitDiff => "logit difference of the matching answer over the other, per unit multiplier",
        Measure::PairLogProbDiff => {
            "log-probability difference of the positive text over the negative, per unit multiplier"
        }
    }
}

/// Names a dataset for notes and plot titles.
pub fn dataset_label(d: &DatasetRef) -> String {
    match d {
        DatasetRef::BuiltIn { file, part: Some(Part::Test) } => format!("the held-out third of {file}"),
        DatasetRef::BuiltIn { file, part: Some(Part::Train) } => format!("the training two thirds of {file}"),
        DatasetRef::BuiltIn { file, .. } => file.clone(),
        DatasetRef::Inline { name, part: Some(Part::Test), .. } => format!("the held-out third of {name}"),
        DatasetRef::Inline { name, part: Some(Part::Train), .. } => format!("the training two thirds of {name}"),
        DatasetRef::Inline { name, .. } => name.clone(),
    }
}

/// Computes the CAA vector of the experiment's dataset at `hook` (default: the chosen layer's
/// hook_resid_pre); `then` runs when it is there.
pub fn compute_vector(exp: Exp, hook: Option<String>, then: impl FnOnce() + 'static) {
    if super::remote::needs_download(&exp) {
        return super::remote::when_ready(exp, move || compute_vector(exp, hook, then));
    }
    exp.vector.set(None);
    let (train, eval) = (exp.dataset_ref(), exp.eval_ref());
    let mut then = Some(then);
    bridge::run(Request::Caa { dataset: train.clone(), hook: hook.unwrap_or_else(|| exp.hook()) }, move |msg| {
        if let Msg::Reply(Reply::Ok(r)) = msg
            && let Response::Vector { hook, values, count, .. } = *r
        {
            exp.vector.set(Some(Vector { hook, values, count, train: train.clone(), eval: eval.clone() }));
            if let Some(t) = then.take() {
                t()
            }
        }
    });
}

/// Generates from the prompt unsteered and (with a vector) steered, streaming into `exp.plain` and `exp.steered`.
pub fn generate(exp: Exp) {
    let steering = exp.vector.get_untracked().map(|v| {
        vec![Steering::Vector { hook: v.hook, values: v.values, rows: None, coef: exp.multiplier.get_untracked() }]
    });
    side_by_side("generate", exp.prompt.get_untracked(), steering, exp.plain, exp.steered);
}

/// Continues `prompt` unsteered into `plain` and, given `steering`, steered into `steered`, both streaming.
/// Generates `prompt` unsteered and steered, side by side, as a job of panel `section`.
pub fn side_by_side(
    section: &'static str,
    prompt: String,
    steering: Option<Vec<Steering>>,
    plain: RwSignal<String>,
    steered: RwSignal<String>,
) {
    let options = GenerateOptions { max_new_tokens: 24, ..Default::default() };
    plain.set(String::new());
    steered.set(String::new());
    // Both continuations decode together, one batch row each.
    let variants = match steering {
        Some(steering) => vec![vec![], steering],
        None => vec![vec![]],
    };
    bridge::run_in(Some(section), Request::GenerateVariants { prompt, variants, options }, move |msg| {
        if let Msg::Event(Event::Texts { texts }) = msg {
            if let Some(t) = texts.first() {
                plain.set(t.clone());
            }
            if let Some(t) = texts.get(1) {
                steered.set(t.clone());
            }
        }
    });
}

/// Propensity on the vector's held-out data against the multiplier.
pub fn sweep_multipliers(exp: Exp) {
    let Some(v) = exp.vector.get_untracked() else { return };
    exp.curve.set(None);
    let req = Request::Steerability { eval: v.eval, hook: v.hook, vector: v.values, multipliers: MULTIPLIERS.to_vec() };
    bridge::run(req, move |msg| {
        if let Msg::Reply(Reply::Ok(r)) = msg
            && let Response::Steerability { curve } = *r
        {
            exp.curve.set(Some(curve));
        }
    });
}

/// CAA vectors at every layer from the dataset's training part, each measured on its held-out part.
pub fn sweep_layers(exp: Exp, n_layers: usize) {
    if super::remote::needs_download(&exp) {
        return super::remote::when_ready(exp, move || sweep_layers(exp, n_layers));
    }
    exp.layers.set(None);
    let (train, eval) = (exp.dataset_ref(), exp.eval_ref());
    let req = Request::LayerSweep {
        train: train.clone(),
        eval: eval.clone(),
        layers: (0..n_layers).collect(),
        multipliers: MULTIPLIERS.to_vec(),
    };
    bridge::run(req, move |msg| {
        if let Msg::Reply(Reply::Ok(r)) = msg
            && let Response::LayerSweep { rows } = *r
        {
            exp.layers.set(Some(LayerSweep { rows, train: train.clone(), eval: eval.clone() }));
        }
    });
}

fn curve_series(label: &str, c: &SteerabilityCurve) -> Series {
    Series {
        label: label.into(),
        points: c.multipliers.iter().zip(&c.mean_logit_diff).map(|(&m, &l)| (m as f64, l as f64)).collect(),
    }
}

fn curve_csv(rows: &[(String, &SteerabilityCurve)]) -> String {
    let mut out = Vec::new();
    for (name, c) in rows {
        for i in 0..c.multipliers.len() {
            let measure = match c.measure {
                Measure::AbLogitDiff => "ab_logit_diff",
                Measure::PairLogProbDiff => "pair_log_prob_diff",
            };
            out.push(vec![
                name.clone(),
                c.hook.clone(),
                measure.into(),
                c.multipliers[i].to_string(),
                c.mean_logit_diff[i].to_string(),
                c.mean_p_matching[i].to_string(),
                c.steerability.to_string(),
            ]);
        }
    }
    let header = ["vector", "hook", "measure", "multiplier", "mean_difference", "mean_p_matching", "steerability"];
    export::csv(&header, &out)
}

#[component]
pub fn SteerView(exp: Exp) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let (plain, steered) = (exp.plain, exp.steered);
    let curve = exp.curve;
    let n_layers = move || lab.model.get().map_or(1, |m| m.n_layers);
    let idle = move || lab.idle();

    let save_vector = move |_| {
        if let Some(v) = exp.vector.get_untracked() {
            let model = lab.model.get_untracked().map(|m| m.label).unwrap_or_default();
            let layer = exp.layer.get_untracked().to_string();
            let meta = [
                ("model", model),
                ("hook", v.hook.clone()),
                ("method", "caa".into()),
                ("dataset", dataset_label(&v.train)),
                ("layer", layer),
            ];
            export::download(
                "steering_vector.safetensors",
                "application/octet-stream",
                &export::vector_file(&v.values, None, &meta),
            );
        }
    };

    // A llama.cpp control vector (GGUF): direction K goes to block K's output, so some hooks have no slot there.
    let save_gguf = move |_| {
        let Some(v) = exp.vector.get_untracked() else { return };
        let n_layers = lab.model.get_untracked().map_or(1, |m| m.n_layers);
        let layer = steerlab::model::hooks::HookPoint::parse(&v.hook, n_layers).and_then(steerlab::gguf::layer_of);
        match layer {
            Ok(k) => {
                let model_hint = lab.model.get_untracked().map(|m| m.label).unwrap_or_default();
                let file = steerlab::gguf::write(&steerlab::gguf::ControlVector {
                    model_hint,
                    directions: vec![(k, v.values)],
                });
                export::download("control_vector.gguf", "application/octet-stream", &file);
            }
            Err(e) => lab.status.set(bridge::Status::Error(e.to_string())),
        }
    };

    view! {
        <section class="panel" aria-label="Steer" id="steer">
            <h2>"1. A steering vector (CAA)"</h2>
            <super::widgets::RandomWeightsNote />
            <p class="explain">"CAA takes the mean, over contrastive pairs, of the residual stream on the positive text \
                minus that on the negative, read at the last token (the answer letter for A/B items)."</p>
            <div class="row">
                <label>"Dataset "
                    <select aria-label="Dataset" on:change=move |ev| exp.dataset.set(event_target_value(&ev))>
                        {DATASETS.iter().map(|(f, label)| {
                            let f = *f;
                            view! { <option value=f selected=move || exp.dataset.get() == f>{*label}</option> }
                        }).collect_view()}
                        <optgroup label="Rimsky et al. 2024 (downloads: generate set builds, test set measures)">
                            {steerlab::steer::remote::CAA_BEHAVIOURS.iter().map(|b| {
                                let value = format!("caa/{}", b.name);
                                let v = value.clone();
                                view! { <option value=value selected=move || exp.dataset.get() == v>{b.label}</option> }
                            }).collect_view()}
                        </optgroup>
                        <option value=TYPED selected=move || exp.dataset.get() == TYPED>"pairs or A/B items I type"</option>
                    </select>
                </label>
                <label>"Layer "
                    <input type="number" aria-label="Layer" min="0" max=move || n_layers().saturating_sub(1)
                        prop:value=move || exp.layer.get()
                        on:input=move |ev| {
                            if let Ok(l) = event_target_value(&ev).parse::<usize>() {
                                exp.layer.set(l.min(n_layers().saturating_sub(1)))
                            }
                        } />
                </label>
                <button on:click=move |_| compute_vector(exp, None, || {}) disabled=move || !idle()>"Compute vector"</button>
                <button class="small" on:click=save_vector disabled=move || exp.vector.get().is_none()>"Save .safetensors"</button>
                <button class="small" on:click=save_gguf disabled=move || exp.vector.get().is_none()
                    title="A llama.cpp control vector (--control-vector)">"Save .gguf"</button>
            </div>
            {move || (exp.dataset.get() == TYPED).then(|| view! {
                <textarea aria-label="Your pairs" rows="4" prop:value=move || exp.typed.get()
                    placeholder=r#"One JSON object a line: pairs {"positive": "I love you", "negative": "I hate you"} or A/B items {"question": "…\n\n(A) …\n(B) …", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}"#
                    on:input=move |ev| exp.typed.set(event_target_value(&ev))></textarea>
            })}
            <p class="note" data-testid="vector">{move || match exp.vector.get() {
                Some(v) => {
                    let norm = v.values.iter().map(|x| x * x).sum::<f32>().sqrt();
                    format!("Vector at {}: mean of {} pairs from {}, norm {norm:.3}.", v.hook, v.count, dataset_label(&v.train))
                }
                None => "No vector yet: generation runs unsteered only.".to_string(),
            }}</p>
        </section>
        <section class="panel" aria-label="Generate" id="generate">
            <h2>"2. Generate with and without it"</h2>
            <div class="row">
                <input type="text" aria-label="Prompt" prop:value=move || exp.prompt.get()
                    on:input=move |ev| exp.prompt.set(event_target_value(&ev)) />
                <label>"Multiplier "
                    <input type="number" aria-label="Multiplier" step="0.5" prop:value=move || exp.multiplier.get()
                        on:input=move |ev| {
                            if let Ok(m) = event_target_value(&ev).parse::<f32>() { exp.multiplier.set(m) }
                        } />
                </label>
                <button on:click=move |_| generate(exp) disabled=move || !idle()>"Generate"</button>
                {stop_button("Stop generating", "generate")}
            </div>
            <div class="columns">
                <div><h3>"Unsteered"</h3><pre class="output" data-testid="plain"><b>{move || exp.prompt.get()}</b>{move || plain.get()}</pre></div>
                <div><h3>{move || format!("Steered (× {})", exp.multiplier.get())}</h3>
                    <pre class="output" data-testid="steered"><b>{move || exp.prompt.get()}</b>{move || steered.get()}</pre></div>
            </div>
            <super::score::ScoreView exp=exp />
            <super::actadd::ActAddView exp=exp />
        </section>
        <section class="panel" aria-label="Steerability" id="steerability">
            <h2>"3. Steerability"</h2>
            <super::widgets::RandomWeightsNote />
            <p class="explain">"Propensity is measured on the held-out third of the vector's own dataset, which the \
                vector never saw. On A/B items it is the mean logit difference between the answer that matches the \
                behaviour and the one that does not; on pairs, how much more likely the model finds the positive text \
                than the negative one (log p(positive) − log p(negative), from the first word where they differ). \
                Steerability is its slope against the multiplier (Tan et al. 2024)."</p>
            <div class="row">
                <button on:click=move |_| sweep_multipliers(exp) disabled=move || !idle() || exp.vector.get().is_none()>"Sweep multipliers"</button>
                <button on:click=move |_| sweep_layers(exp, n_layers()) disabled=move || !idle()>"Sweep layers"</button>
                {stop_button("Stop the sweep", "sweep")}
            </div>
            {move || curve.get().map(|c| {
                let svg = line_chart(&format!("Propensity vs multiplier at {}", c.hook), "multiplier", measure_axis(c.measure),
                    &[curve_series("steering vector", &c)]);
                let csv = curve_csv(&[("steering vector".into(), &c)]);
                view! {
                    <p class="note" data-testid="eval-data">{format!("Steerability {:.3} ({}) on {}, which the vector \
                        was not built from; {:.0}% of items anti-steerable.",
                        c.steerability, measure_words(c.measure),
                        exp.vector.get_untracked().map_or_else(String::new, |v| dataset_label(&v.eval)),
                        100.0 * c.anti_steerable_fraction)}</p>
                    <Plot svg=svg name="steerability".into() />
                    <button class="small" on:click=move |_| export::download("steerability.csv", "text/csv", csv.as_bytes())>"CSV"</button>
                }
            })}
            {move || exp.layers.get().map(|LayerSweep { rows, train: sweep_train, eval: sweep_eval }| {
                let slope = Series { label: "steerability".into(),
                    points: rows.iter().map(|r| (r.layer as f64, r.curve.steerability as f64)).collect() };
                let svg = line_chart("Steerability by layer (CAA at blocks.L.hook_resid_pre)", "layer", "steerability", &[slope]);
                let curves: Vec<Series> = rows.iter().map(|r| curve_series(&format!("L{}", r.layer), &r.curve)).collect();
                let axis = rows.first().map_or("mean logit diff", |r| measure_axis(r.curve.measure));
                let per_layer = line_chart("Propensity vs multiplier, per layer", "multiplier", axis, &curves);
                let named: Vec<(String, &SteerabilityCurve)> = rows.iter().map(|r| (format!("layer {}", r.layer), &r.curve)).collect();
                let csv = curve_csv(&named);
                view! {
                    <p class="note" data-testid="sweep-data">{format!("Each layer's vector is built from {} and \
                        measured on {}, as the vector above is.", dataset_label(&sweep_train), dataset_label(&sweep_eval))}</p>
                    {lab.sae.get().and_then(|(_, hook)| resid_post_note(&hook)).map(|t| view! { <p class="note" data-testid="sweep-hooks">{t}</p> })}
                    <Plot svg=svg name="steerability-by-layer".into() />
                    <Plot svg=per_layer name="propensity-per-layer".into() />
                    <button class="small" on:click=move |_| export::download("layer-sweep.csv", "text/csv", csv.as_bytes())>"CSV"</button>
                }
            })}
        </section>
    }
}
