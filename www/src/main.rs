//! The browser lab's page. All compute happens in the engine worker (src/bin/worker.rs); the page sends it
//! requests and renders what comes back: here, a CAA vector from a built-in dataset and generation with and
//! without it, side by side, streaming.

use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use steerlab::engine::{DatasetRef, Event, Reply, Request, Response, Steering};
use steerlab::experiment::Experiment;
use steerlab::model::generate::GenerateOptions;
use steerlab_www::{FromWorker, ToWorker};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

/// Built-in contrastive-pair datasets the page offers.
const PAIR_DATASETS: [&str; 3] = ["love-hate.jsonl", "anger-calm.jsonl", "wedding.jsonl"];

#[derive(Clone, PartialEq)]
enum Status {
    Info(String),
    Warn(String),
    Error(String),
}

/// Where a request's results go.
#[derive(Clone, Copy)]
enum Slot {
    Plain,
    Steered,
    Vector,
}

/// The page's end of the worker: sends requests, routes events and replies to their slots.
#[derive(Clone)]
struct Bridge {
    worker: Rc<Worker>,
    next_id: Rc<Cell<u32>>,
    pending: Rc<RefCell<HashMap<u32, Slot>>>,
}

impl Bridge {
    fn send(&self, msg: &ToWorker) {
        let json = serde_json::to_string(msg).expect("messages serialise");
        let _ = self.worker.post_message(&JsValue::from_str(&json));
    }

    fn run(&self, slot: Slot, request: Request) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.pending.borrow_mut().insert(id, slot);
        self.send(&ToWorker::Run { id, request });
    }

    fn cancel_all(&self) {
        for &id in self.pending.borrow().keys() {
            self.send(&ToWorker::Cancel { id });
        }
    }
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    // A permalink in the URL fragment restores its experiment; a bad one says why and the defaults stay.
    let hash = window().location().hash().unwrap_or_default();
    let (start, link_error) = match hash.trim_start_matches('#') {
        "" => (Experiment::default(), None),
        h => match Experiment::from_fragment(h) {
            Ok(e) => (e, None),
            Err(e) => (Experiment::default(), Some(e.to_string())),
        },
    };
    let start_layer = start.hook.split('.').nth(1).and_then(|l| l.parse::<usize>().ok());
    let start_dataset = match &start.dataset {
        DatasetRef::BuiltIn { file } if PAIR_DATASETS.contains(&file.as_str()) => file.clone(),
        _ => PAIR_DATASETS[0].to_string(),
    };
    let (link_note, set_link_note) = signal(link_error.map(|e| format!("The link could not be opened: {e}.")));
    let (status, set_status) = signal(Status::Info("Starting the engine worker…".into()));
    let (ready, set_ready) = signal(false);
    let (busy, set_busy) = signal(0usize);
    let (n_layers, set_n_layers) = signal(1usize);
    let (prompt, set_prompt) = signal(start.prompt.clone());
    let (dataset, set_dataset) = signal(start_dataset);
    let (layer, set_layer) = signal(start_layer.unwrap_or(1));
    let (multiplier, set_multiplier) = signal(start.multiplier);
    let (vector, set_vector) = signal(None::<(String, Vec<f32>, usize)>);
    let (plain, set_plain) = signal(String::new());
    let (steered, set_steered) = signal(String::new());

    let worker = match Worker::new("./worker_loader.js") {
        Ok(w) => Rc::new(w),
        Err(e) => {
            let msg = format!("This browser cannot start a Web Worker: {e:?}");
            return view! { <main><h1>"steerlab"</h1><p class="status error">{msg}</p></main> }.into_any();
        }
    };
    let bridge = Bridge { worker, next_id: Rc::new(Cell::new(1)), pending: Rc::default() };

    let pending = bridge.pending.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let Some(text) = ev.data().as_string() else { return };
        let msg = match serde_json::from_str::<FromWorker>(&text) {
            Ok(m) => m,
            Err(e) => return set_status.set(Status::Error(format!("The worker said something unexpected: {e}"))),
        };
        match msg {
            FromWorker::Status { text } => set_status.set(Status::Info(text)),
            FromWorker::Failed { error } => set_status.set(Status::Error(error)),
            FromWorker::Ready { device, fallback, model, n_layers } => {
                set_n_layers.set(n_layers);
                if start_layer.is_none_or(|l| l >= n_layers) {
                    set_layer.set(n_layers / 2);
                }
                set_ready.set(true);
                let text = format!("Running {model} on {device}.");
                set_status.set(if fallback {
                    Status::Warn(format!("{text} This is slower than a GPU."))
                } else {
                    Status::Info(text)
                });
            }
            FromWorker::Event { id, event: Event::Text { text } } => match pending.borrow().get(&id) {
                Some(Slot::Plain) => set_plain.set(text),
                Some(Slot::Steered) => set_steered.set(text),
                _ => {}
            },
            FromWorker::Reply { id, reply } => {
                let slot = pending.borrow_mut().remove(&id);
                set_busy.update(|b| *b = b.saturating_sub(1));
                match (slot, reply) {
                    (Some(Slot::Vector), Reply::Ok(r)) => {
                        if let Response::Vector { hook, values, count, .. } = *r {
                            set_vector.set(Some((hook, values, count)));
                        }
                    }
                    (_, Reply::Error(e)) if e == "cancelled" => set_status.set(Status::Info("Stopped.".into())),
                    (_, Reply::Error(e)) => set_status.set(Status::Error(e)),
                    _ => {}
                }
            }
        }
    });
    bridge.worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();

    let b = bridge.clone();
    let compute_vector = move |_| {
        set_busy.update(|n| *n += 1);
        set_vector.set(None);
        let hook = format!("blocks.{}.hook_resid_pre", layer.get_untracked());
        b.run(Slot::Vector, Request::Caa { dataset: DatasetRef::BuiltIn { file: dataset.get_untracked() }, hook });
    };
    let b = bridge.clone();
    let generate = move |_| {
        let options = GenerateOptions { max_new_tokens: 24, ..Default::default() };
        set_plain.set(String::new());
        set_steered.set(String::new());
        let p = prompt.get_untracked();
        set_busy.update(|n| *n += 1);
        b.run(Slot::Plain, Request::Generate { prompt: p.clone(), steering: vec![], options: options.clone() });
        if let Some((hook, values, _)) = vector.get_untracked() {
            let steering = vec![Steering::Vector { hook, values, rows: None, coef: multiplier.get_untracked() }];
            set_busy.update(|n| *n += 1);
            b.run(Slot::Steered, Request::Generate { prompt: p, steering, options });
        }
    };
    let b = bridge.clone();
    let stop = move |_| b.cancel_all();
    let idle = move || ready.get() && busy.get() == 0;
    let share = move |_| {
        let e = Experiment {
            dataset: DatasetRef::BuiltIn { file: dataset.get_untracked() },
            hook: format!("blocks.{}.hook_resid_pre", layer.get_untracked()),
            multiplier: multiplier.get_untracked(),
            prompt: prompt.get_untracked(),
            ..Experiment::default()
        };
        let fragment = e.to_fragment();
        let _ = window().location().set_hash(&fragment);
        set_link_note.set(Some(format!("Link to this experiment: {}", window().location().href().unwrap_or_default())));
    };

    view! {
        <main>
            <h1>"steerlab"</h1>
            <p class="tagline">"Steering vectors and sparse autoencoders, on your own GPU."</p>
            {move || {
                let (class, text) = match status.get() {
                    Status::Info(t) => ("status", t),
                    Status::Warn(t) => ("status warn", t),
                    Status::Error(t) => ("status error", t),
                };
                view! { <p class=class role="status">{text}</p> }
            }}
            <section>
                <h2>"1. A steering vector (CAA)"</h2>
                <div class="row">
                    <label>"Dataset "
                        <select on:change=move |ev| set_dataset.set(event_target_value(&ev))>
                            {PAIR_DATASETS
                                .iter()
                                .map(|d| view! { <option value=*d selected=move || dataset.get() == *d>{*d}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label>"Layer "
                        <input type="number" min="0" max=move || n_layers.get().saturating_sub(1)
                            prop:value=move || layer.get()
                            on:input=move |ev| {
                                if let Ok(l) = event_target_value(&ev).parse::<usize>() {
                                    set_layer.set(l.min(n_layers.get_untracked().saturating_sub(1)))
                                }
                            } />
                    </label>
                    <button on:click=compute_vector disabled=move || !idle()>"Compute vector"</button>
                </div>
                <p class="note">{move || match vector.get() {
                    Some((hook, v, count)) => {
                        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                        format!("Vector at {hook}: mean of {count} pairs, norm {norm:.3}.")
                    }
                    None => "No vector yet: generation runs unsteered only.".to_string(),
                }}</p>
            </section>
            <section>
                <h2>"2. Generate with and without it"</h2>
                <div class="row">
                    <input type="text" aria-label="Prompt" prop:value=move || prompt.get()
                        on:input=move |ev| set_prompt.set(event_target_value(&ev)) />
                    <label>"Multiplier "
                        <input type="number" step="0.5" prop:value=move || multiplier.get()
                            on:input=move |ev| {
                                if let Ok(m) = event_target_value(&ev).parse::<f32>() { set_multiplier.set(m) }
                            } />
                    </label>
                    <button on:click=generate disabled=move || !idle()>"Generate"</button>
                    <button on:click=stop disabled=move || busy.get() == 0>"Stop"</button>
                    <button on:click=share>"Share"</button>
                </div>
                {move || link_note.get().map(|t| view! { <p class="note link" data-testid="link">{t}</p> })}
                <div class="columns">
                    <div><h3>"Unsteered"</h3><pre class="output" data-testid="plain"><b>{move || prompt.get()}</b>{move || plain.get()}</pre></div>
                    <div><h3>"Steered"</h3><pre class="output" data-testid="steered"><b>{move || prompt.get()}</b>{move || steered.get()}</pre></div>
                </div>
            </section>
        </main>
    }
    .into_any()
}
