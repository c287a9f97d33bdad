//! Steering: a CAA vector from a built-in dataset or typed pairs at a layer, generation with and without it side
//! by side (streaming), and steerability sweeps over multipliers and layers on held-out A/B items.

use super::bridge::{self, Lab, Msg};
use super::export;
use super::widgets::{Plot, stop_button};
use leptos::prelude::*;
use steerlab::engine::{DatasetRef, Event, Part, Reply, Request, Response, Steering};
use steerlab::model::generate::GenerateOptions;
use steerlab::steer::dataset::Dataset;
use steerlab::steer::propensity::{LayerSweepRow, SteerabilityCurve};
use steerlab_www::plot::{Series, line_chart};

/// Built-in datasets the page offers: (file, label).
pub const DATASETS: [(&str, &str); 4] = [
    ("love-hate.jsonl", "love vs hate (pairs)"),
    ("anger-calm.jsonl", "anger vs calm (pairs)"),
    ("wedding.jsonl", "weddings (pairs)"),
    ("corrigibility-ab.json", "corrigibility (A/B items, training part)"),
];
/// The A/B items steerability is measured on: the held-out part of the built-in corrigibility set.
pub const EVAL_FILE: &str = "corrigibility-ab.json";
const TYPED: &str = "typed";
pub const MULTIPLIERS: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

/// A computed steering vector.
#[derive(Clone, PartialEq)]
pub struct Vector {
    pub hook: String,
    pub values: Vec<f32>,
    pub count: usize,
    /// What it was computed from, and the held-out A/B items its steerability is measured on.
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
    /// The last multiplier sweep and SAE decomposition of the vector.
    pub curve: RwSignal<Option<SteerabilityCurve>>,
    pub decomposition: RwSignal<Option<steerlab::analysis::Decomposition>>,
}

impl Exp {
    /// Typed A/B items train on two thirds and are measured on the held-out third, as the built-in set is.
    fn typed_ab(&self) -> bool {
        self.dataset.get_untracked() == TYPED && Dataset::holds_ab_items(&self.typed.get_untracked())
    }

    fn typed(&self, part: Option<Part>) -> DatasetRef {
        let name = if part.is_some() { "your A/B items" } else { "your pairs" };
        DatasetRef::Inline { name: name.into(), text: self.typed.get_untracked(), part }
    }

    pub fn dataset_ref(&self) -> DatasetRef {
        match self.dataset.get_untracked().as_str() {
            TYPED => self.typed(self.typed_ab().then_some(Part::Train)),
            f if f == EVAL_FILE => DatasetRef::BuiltIn { file: f.into(), part: Some(Part::Train) },
            f => DatasetRef::built_in(f),
        }
    }

    /// The held-out A/B items steerability is measured on: the typed ones when they are A/B items, else the
    /// built-in corrigibility set's.
    pub fn eval_ref(&self) -> DatasetRef {
        if self.typed_ab() { self.typed(Some(Part::Test)) } else { built_in_ab(Part::Test) }
    }

    /// The A/B items a layer sweep trains its CAA vectors on.
    pub fn train_ab_ref(&self) -> DatasetRef {
        if self.typed_ab() { self.typed(Some(Part::Train)) } else { built_in_ab(Part::Train) }
    }

    pub fn set_dataset(&self, d: &DatasetRef) {
        match d {
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

fn built_in_ab(part: Part) -> DatasetRef {
    DatasetRef::BuiltIn { file: EVAL_FILE.into(), part: Some(part) }
}

/// Whether a vector trained on `d` was built from A/B items (the built-in A/B set, or typed items, which are
/// split into parts) rather than from contrastive pairs of another behaviour.
fn trained_on_ab(d: &DatasetRef) -> bool {
    match d {
        DatasetRef::BuiltIn { file, .. } => file == EVAL_FILE,
        DatasetRef::Inline { part, .. } => part.is_some(),
    }
}

/// Said beside a steerability measured on A/B items of another behaviour than the vector's own.
fn mismatch_note(v: &Vector) -> Option<String> {
    (!trained_on_ab(&v.train)).then(|| {
        format!(
            "This vector was built from {}, a different behaviour from the A/B items it is measured on ({}): the \
             slope shows how much it moves those answers, not how well it steers its own behaviour. Build the vector \
             from A/B items (the corrigibility set, or your own typed items) to measure the same behaviour.",
            dataset_label(&v.train),
            dataset_label(&v.eval)
        )
    })
}

/// Names a dataset for notes and plot titles.
pub fn dataset_label(d: &DatasetRef) -> String {
    match d {
        DatasetRef::BuiltIn { file, part: Some(Part::Test) } => format!("held-out items of {file}"),
        DatasetRef::BuiltIn { file, .. } => file.clone(),
        DatasetRef::Inline { name, part: Some(Part::Test), .. } => format!("held-out third of {name}"),
        DatasetRef::Inline { name, .. } => name.clone(),
    }
}

/// Computes the CAA vector of the experiment's dataset at `hook` (default: the chosen layer's
/// hook_resid_pre); `then` runs when it is there.
pub fn compute_vector(exp: Exp, hook: Option<String>, then: impl FnOnce() + 'static) {
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

/// Propensity on the held-out A/B items against the multiplier, for the current vector.
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
            out.push(vec![
                name.clone(),
                c.hook.clone(),
                c.multipliers[i].to_string(),
                c.mean_logit_diff[i].to_string(),
                c.mean_p_matching[i].to_string(),
                c.steerability.to_string(),
            ]);
        }
    }
    export::csv(&["vector", "hook", "multiplier", "mean_logit_diff", "mean_p_matching", "steerability"], &out)
}

#[component]
pub fn SteerView(exp: Exp) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let (plain, steered) = (exp.plain, exp.steered);
    let curve = exp.curve;
    let sweep = RwSignal::new(None::<Vec<LayerSweepRow>>);
    let n_layers = move || lab.model.get().map_or(1, |m| m.n_layers);
    let idle = move || lab.idle();

    let sweep_layers = move |_| {
        sweep.set(None);
        let layers = (0..n_layers()).collect();
        let (train, eval) = (exp.train_ab_ref(), exp.eval_ref());
        let req = Request::LayerSweep { train, eval, layers, multipliers: MULTIPLIERS.to_vec() };
        bridge::run(req, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::LayerSweep { rows } = *r
            {
                sweep.set(Some(rows));
            }
        });
    };
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
        </section>
        <section class="panel" aria-label="Steerability" id="steerability">
            <h2>"3. Steerability"</h2>
            <super::widgets::RandomWeightsNote />
            <p class="explain">"Propensity is the mean logit difference between the answer that matches the behaviour and \
                the one that does not, on held-out A/B items (the held-out third of A/B items you typed, else of the \
                built-in corrigibility set); steerability is its slope against the multiplier (Tan et al. 2024)."</p>
            <div class="row">
                <button on:click=move |_| sweep_multipliers(exp) disabled=move || !idle() || exp.vector.get().is_none()>"Sweep multipliers"</button>
                <button on:click=sweep_layers disabled=move || !idle()>"Sweep layers (CAA from A/B training items)"</button>
                {stop_button("Stop the sweep", "sweep")}
            </div>
            {move || curve.get().map(|c| {
                let svg = line_chart(&format!("Propensity vs multiplier at {}", c.hook), "multiplier", "mean logit diff",
                    &[curve_series("steering vector", &c)]);
                let csv = curve_csv(&[("steering vector".into(), &c)]);
                let mismatch = exp.vector.get_untracked().as_ref().and_then(mismatch_note);
                view! {
                    <p class="note">{format!("Steerability {:.3} (logit diff per unit multiplier) on {}; {:.0}% of items anti-steerable.",
                        c.steerability, exp.vector.get_untracked().map_or_else(String::new, |v| dataset_label(&v.eval)),
                        100.0 * c.anti_steerable_fraction)}</p>
                    {mismatch.map(|m| view! { <p class="note warn-note" data-testid="eval-mismatch">{m}</p> })}
                    <Plot svg=svg name="steerability".into() />
                    <button class="small" on:click=move |_| export::download("steerability.csv", "text/csv", csv.as_bytes())>"CSV"</button>
                }
            })}
            {move || sweep.get().map(|rows| {
                let slope = Series { label: "steerability".into(),
                    points: rows.iter().map(|r| (r.layer as f64, r.curve.steerability as f64)).collect() };
                let svg = line_chart("Steerability by layer (CAA at blocks.L.hook_resid_pre)", "layer", "steerability", &[slope]);
                let curves: Vec<Series> = rows.iter().map(|r| curve_series(&format!("L{}", r.layer), &r.curve)).collect();
                let per_layer = line_chart("Propensity vs multiplier, per layer", "multiplier", "mean logit diff", &curves);
                let named: Vec<(String, &SteerabilityCurve)> = rows.iter().map(|r| (format!("layer {}", r.layer), &r.curve)).collect();
                let csv = curve_csv(&named);
                view! {
                    <p class="note" data-testid="sweep-data">{format!("Each layer's vector is built here from {} and \
                        measured on {} — not from the vector above, whose dataset may be another behaviour.",
                        dataset_label(&exp.train_ab_ref()), dataset_label(&exp.eval_ref()))}</p>
                    <Plot svg=svg name="steerability-by-layer".into() />
                    <Plot svg=per_layer name="propensity-per-layer".into() />
                    <button class="small" on:click=move |_| export::download("layer-sweep.csv", "text/csv", csv.as_bytes())>"CSV"</button>
                }
            })}
        </section>
    }
}
