//! The page's end of the engine worker: it sends requests and loads, routes each request's events and reply to
//! the handler that asked, and keeps the lab's shared state (device, what is loaded, download progress) in signals.

use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use steerlab::engine::{Event, Reply, Request};
use steerlab_www::{FromWorker, Kind, Source, ToWorker};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

#[derive(Clone, PartialEq)]
pub enum Status {
    Info(String),
    Warn(String),
    Error(String),
}

/// What a request's handler receives: its events, then its reply.
pub enum Msg {
    Event(Event),
    Reply(Reply),
}

/// The long job the page is running: which panel started it (its Stop is the one enabled), what it is, since
/// when, and how far its current stage is.
#[derive(Clone, PartialEq)]
pub struct Job {
    token: u64,
    pub section: &'static str,
    pub what: &'static str,
    pub started_ms: f64,
    /// (stage, rows done, rows in the stage, when the stage started)
    pub stage: Option<(String, usize, usize, f64)>,
}

impl Job {
    /// The panel and wording of `request`; None for requests too short to show (status).
    fn of(request: &Request) -> Option<(&'static str, &'static str)> {
        Some(match request {
            Request::Status => return None,
            Request::Caa { .. } | Request::ActAdd { .. } => ("vector", "Computing the steering vector"),
            Request::Generate { .. } | Request::GenerateVariants { .. } => ("generate", "Generating"),
            Request::Steerability { .. } => ("sweep", "Sweeping multipliers"),
            Request::LayerSweep { .. } => ("sweep", "Sweeping layers (a vector per layer)"),
            Request::Decompose { .. } => ("decompose", "Running the diagnostics"),
            Request::Features { .. } => ("features", "Scoring features"),
            Request::Population { .. } => ("population", "Scoring a population of features"),
            Request::PositionFeatures { .. } | Request::EditVector { .. } => {
                ("actadd", "Reading the vector's features")
            }
            Request::SteerScore { .. } => ("score", "Scoring generations"),
            Request::VectorsVsZero { .. } => ("decompose", "Comparing the behaviours' vectors with encode(0)"),
            Request::Dashboards { .. } => ("dashboard", "Building the feature dashboard"),
            Request::SearchFeatures { .. } => ("dashboard", "Finding the features active on the text"),
        })
    }

    /// "Running the diagnostics: A/B items × vectors × multipliers 1,200 of 3,600 · 42 s · about 80 s left".
    pub fn describe(&self, now_ms: f64) -> String {
        let elapsed = (now_ms - self.started_ms) / 1000.0;
        let mut text = format!("{}: {:.0} s", self.what, elapsed);
        if let Some((stage, done, total, since)) = &self.stage {
            text = format!("{}: {stage}, {done} of {total} · {:.0} s", self.what, elapsed);
            let stage_s = (now_ms - since) / 1000.0;
            if *done > 0 && done < total && stage_s > 1.0 {
                let left = stage_s / *done as f64 * (total - done) as f64;
                text += &format!(" · about {left:.0} s left in this stage");
            }
        }
        text
    }
}

/// One file's download, for the progress bars.
#[derive(Clone, PartialEq)]
pub struct FileProgress {
    pub file: String,
    pub loaded: u64,
    pub total: Option<u64>,
    pub cached: bool,
    pub started_ms: f64,
}

/// A loaded model: its catalogue id (or `local`), the hub revision it came from, label and layer count.
#[derive(Clone, PartialEq)]
pub struct LoadedModel {
    pub id: String,
    pub revision: Option<String>,
    pub label: String,
    pub n_layers: usize,
}

/// The lab's shared state, provided as context to every view.
#[derive(Clone, Copy)]
pub struct Lab {
    pub status: RwSignal<Status>,
    /// (device, is the CPU fallback, why it was chosen)
    pub device: RwSignal<Option<(String, bool, String)>>,
    pub model: RwSignal<Option<LoadedModel>>,
    /// (label, hook) of the loaded SAE.
    pub sae: RwSignal<Option<(String, String)>>,
    /// Requests in flight.
    pub busy: RwSignal<usize>,
    /// The load in flight: its id and what it loads.
    pub loading: RwSignal<Option<(u32, Kind)>>,
    pub progress: RwSignal<Vec<FileProgress>>,
    /// The native helper the page is paired with, and whether the loaded model lives there (then requests run on
    /// the helper rather than in the worker).
    pub helper: RwSignal<Option<super::helper::Helper>>,
    pub remote: RwSignal<bool>,
    /// The long job running, if any.
    pub job: RwSignal<Option<Job>>,
}

impl Lab {
    pub fn idle(&self) -> bool {
        self.model.get().is_some() && self.busy.get() == 0 && self.loading.get().is_none()
    }
}

/// One file's bar in the load in flight, added or moved on.
pub fn show_progress(lab: Lab, file: String, loaded: u64, total: Option<u64>, cached: bool) {
    lab.progress.update(|p| {
        let now = js_sys::Date::now();
        match p.iter_mut().find(|f| f.file == file) {
            Some(f) => (f.loaded, f.total, f.cached) = (loaded, total, cached),
            None => p.push(FileProgress { file, loaded, total, cached, started_ms: now }),
        }
    })
}

type Handler = Box<dyn FnMut(Msg)>;
type Listeners = (Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(web_sys::ErrorEvent)>);
type OnLoaded = Box<dyn FnOnce(&Lab, Result<(), String>)>;
type Outgoing = (ToWorker, Vec<web_sys::File>);

struct Bridge {
    /// The engine worker, replaced by a fresh one when it crashes.
    worker: RefCell<Worker>,
    /// Which worker is current: events of a crashed one, still queued, are dropped.
    generation: Cell<u32>,
    /// The current worker's message and error listeners, kept alive as long as it is.
    listeners: RefCell<Option<Listeners>>,
    /// A fresh worker is starting after a crash: the status keeps saying what happened until it is ready.
    restarted: Cell<bool>,
    /// The current worker has said something, so its wasm listens: until then messages wait in `outbox` (a
    /// worker drops what arrives before its wasm has set `onmessage`).
    ready: Cell<bool>,
    outbox: RefCell<Vec<Outgoing>>,
    next_id: Cell<u32>,
    pending: RefCell<HashMap<u32, Handler>>,
    /// What a finished load should do next (a follow-up such as loading the model's SAE).
    on_loaded: RefCell<Option<OnLoaded>>,
    /// The catalogue id and revision of the model being loaded.
    loading_model: RefCell<(String, Option<String>)>,
    lab: Lab,
}

thread_local! {
    static BRIDGE: RefCell<Option<Rc<Bridge>>> = const { RefCell::new(None) };
}

fn bridge() -> Rc<Bridge> {
    BRIDGE.with(|b| b.borrow().clone()).expect("the bridge starts before any view")
}

/// The lab's state, for code that runs outside a component (event handlers, callbacks).
pub fn lab() -> Lab {
    bridge().lab
}

/// Sends `msg` to the current worker, or keeps it until that worker listens.
fn send(b: &Bridge, msg: ToWorker, files: Vec<web_sys::File>) {
    match b.ready.get() {
        true => post(&b.worker.borrow(), &msg, &files),
        false => b.outbox.borrow_mut().push((msg, files)),
    }
}

fn post(worker: &Worker, msg: &ToWorker, files: &[web_sys::File]) {
    let json = JsValue::from_str(&serde_json::to_string(msg).expect("messages serialise"));
    let _ = if files.is_empty() {
        worker.post_message(&json)
    } else {
        let arr = js_sys::Array::of1(&json);
        files.iter().for_each(|f| {
            arr.push(f);
        });
        worker.post_message(&arr)
    };
}

/// Starts the worker and the lab's state; an error when the browser cannot run a Web Worker.
pub fn start() -> Result<Lab, String> {
    let worker = new_worker()?;
    let lab = Lab {
        status: RwSignal::new(Status::Info("Starting the engine worker…".into())),
        device: RwSignal::new(None),
        model: RwSignal::new(None),
        sae: RwSignal::new(None),
        busy: RwSignal::new(0),
        loading: RwSignal::new(None),
        progress: RwSignal::new(Vec::new()),
        helper: RwSignal::new(None),
        remote: RwSignal::new(false),
        job: RwSignal::new(None),
    };
    let b = Rc::new(Bridge {
        worker: RefCell::new(worker),
        generation: Cell::new(0),
        listeners: RefCell::default(),
        restarted: Cell::new(false),
        ready: Cell::new(false),
        outbox: RefCell::default(),
        next_id: Cell::new(1),
        pending: RefCell::default(),
        on_loaded: RefCell::default(),
        loading_model: RefCell::default(),
        lab,
    });
    listen(&b);
    BRIDGE.with(|slot| *slot.borrow_mut() = Some(b));
    Ok(lab)
}

/// A worker for the learner's engine device and weights: `?device=` and `?precision=` in the page's URL, else the
/// ones chosen before (Engine device, Weights).
fn new_worker() -> Result<Worker, String> {
    let choice = super::models::current_device();
    let precision = super::models::current_precision().name();
    Worker::new(&format!("./worker_loader.js?device={}&precision={precision}", choice.name()))
        .map_err(|e| format!("This browser cannot start a Web Worker: {e:?}"))
}

/// Routes the current worker's messages to `receive`, and its crash (a panic's last message, or an uncaught error:
/// an abort such as running out of memory sends nothing first) to `engine_lost`.
fn listen(b: &Bridge) {
    let (lab, generation) = (b.lab, b.generation.get());
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let Some(text) = ev.data().as_string() else { return };
        let b = bridge();
        if b.generation.get() != generation {
            return;
        }
        if !b.ready.replace(true) {
            let waiting = std::mem::take(&mut *b.outbox.borrow_mut());
            for (msg, files) in waiting {
                post(&b.worker.borrow(), &msg, &files);
            }
        }
        match serde_json::from_str::<FromWorker>(&text) {
            Ok(msg) => receive(generation, msg),
            Err(e) => lab.status.set(Status::Error(format!("The worker said something unexpected: {e}"))),
        }
    });
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
        // Handled here, not reported again as the page's own error.
        ev.prevent_default();
        engine_lost(generation, ev.message());
    });
    let worker = b.worker.borrow();
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // A crashed worker's listeners are the ones running this very call: they are let go, not dropped under
    // themselves (two closures a crash).
    if let Some(old) = b.listeners.borrow_mut().replace((on_message, on_error)) {
        std::mem::forget(old);
    }
}

/// The worker `generation` crashed with `error`: a fresh worker takes its place, then what was waiting on the old
/// one ends with the error, as if the worker had replied so (a handler that sends a follow-up reaches the fresh
/// worker). The page keeps its own state (vectors, tables, plots); the models and SAE the worker held must be
/// loaded again. A worker that fails before it has a device (its script or wasm will not load here) is not
/// restarted, which would only fail again.
fn engine_lost(generation: u32, error: String) {
    let b = bridge();
    if b.generation.get() != generation {
        return;
    }
    let lab = b.lab;
    b.generation.set(generation + 1);
    b.worker.borrow().terminate();
    b.outbox.borrow_mut().clear();
    let device = lab.device.get_untracked();
    let hint = match &device {
        Some((_, true, _)) => "",
        _ => " If it happens again, choose the CPU under Engine device.",
    };
    let what = format!("The engine stopped: {error}");
    lab.progress.set(Vec::new());
    lab.device.set(None);
    // A model on the paired helper lives on, and its requests never went through the worker.
    if !lab.remote.get_untracked() {
        lab.model.set(None);
        lab.sae.set(None);
    }
    let status = match device.is_some().then(new_worker) {
        None => format!("The engine could not start: {error}.{hint}"),
        Some(Ok(worker)) => {
            *b.worker.borrow_mut() = worker;
            b.ready.set(false);
            b.restarted.set(true);
            listen(&b);
            format!(
                "{what}. A fresh engine has started: load a model to go on (your vectors and results are kept).{hint}"
            )
        }
        Some(Err(e)) => format!("{what}, and a fresh engine could not start: {e}"),
    };
    let pending: Vec<u32> = b.pending.borrow().keys().copied().collect();
    for id in pending {
        receive(generation + 1, FromWorker::Reply { id, reply: Reply::Error(what.clone()) });
    }
    if let Some((_, kind)) = lab.loading.get_untracked() {
        receive(generation + 1, FromWorker::LoadFailed { kind, error: what });
    }
    lab.status.set(Status::Error(status));
}

fn receive(generation: u32, msg: FromWorker) {
    let b = bridge();
    let lab = b.lab;
    match msg {
        FromWorker::Device { device, fallback, why } => {
            if !b.restarted.replace(false) {
                lab.status.set(match fallback {
                    true => Status::Warn(format!("The engine runs on {device}: {why}.")),
                    false => Status::Info(format!("The engine runs on {device}.")),
                });
            }
            lab.device.set(Some((device, fallback, why)));
        }
        FromWorker::Status { text } if !b.restarted.get() => lab.status.set(Status::Info(text)),
        FromWorker::Status { .. } => {}
        FromWorker::Failed { error } => lab.status.set(Status::Error(error)),
        FromWorker::Crashed { error } => engine_lost(generation, error),
        FromWorker::Progress { file, loaded, total, cached } => show_progress(lab, file, loaded, total, cached),
        FromWorker::Loaded { kind, label, n_layers, hook } => {
            lab.loading.set(None);
            match (kind, hook) {
                (Kind::Sae, Some(hook)) => lab.sae.set(Some((label.clone(), hook))),
                _ => {
                    // A new model drops an SAE that no longer fits (the worker did the same).
                    lab.sae.set(None);
                    lab.remote.set(false);
                    let (id, revision) = b.loading_model.borrow().clone();
                    lab.model.set(Some(LoadedModel { id, revision, label: label.clone(), n_layers }));
                }
            }
            lab.status.set(Status::Info(format!("Loaded {label}.")));
            // Taken out first: the follow-up may start another load.
            let next = b.on_loaded.borrow_mut().take();
            if let Some(next) = next {
                next(&lab, Ok(()));
            }
        }
        FromWorker::LoadFailed { kind, error } => {
            lab.loading.set(None);
            let what = if kind == Kind::Model { "model" } else { "SAE" };
            lab.status.set(if error == "cancelled" {
                Status::Info("Download stopped.".into())
            } else {
                Status::Error(format!("The {what} could not be loaded: {error}"))
            });
            let next = b.on_loaded.borrow_mut().take();
            if let Some(next) = next {
                next(&lab, Err(error));
            }
        }
        FromWorker::Event { id, event } => {
            // Take the handler out while it runs: it may send requests of its own.
            let handler = b.pending.borrow_mut().remove(&id);
            if let Some(mut h) = handler {
                h(Msg::Event(event));
                b.pending.borrow_mut().insert(id, h);
            }
        }
        FromWorker::Reply { id, reply } => {
            let handler = b.pending.borrow_mut().remove(&id);
            lab.busy.update(|n| *n = n.saturating_sub(1));
            if let Reply::Error(e) = &reply {
                lab.status.set(if e == "cancelled" {
                    Status::Info("Stopped.".into())
                } else {
                    Status::Error(e.clone())
                });
            }
            if let Some(mut h) = handler {
                h(Msg::Reply(reply));
            }
        }
    }
}

fn next_id(b: &Bridge) -> u32 {
    let id = b.next_id.get();
    b.next_id.set(id + 1);
    id
}

/// Runs `request`; `handler` gets its events and its reply. The request becomes the page's running job (its
/// panel's Stop enabled, its progress shown) until its reply.
pub fn run(request: Request, handler: impl FnMut(Msg) + 'static) {
    run_in(None, request, handler)
}

/// As `run`, shown as a job of panel `section` rather than the request's own (generation from the features panel).
pub fn run_in(section: Option<&'static str>, request: Request, mut handler: impl FnMut(Msg) + 'static) {
    let b = bridge();
    let lab = b.lab;
    let token = next_id(&b) as u64;
    if let Some((own, what)) = Job::of(&request) {
        let section = section.unwrap_or(own);
        lab.job.set(Some(Job { token, section, what, started_ms: js_sys::Date::now(), stage: None }));
    }
    let mine = move |j: &Option<Job>| j.as_ref().is_some_and(|j| j.token == token);
    let handler = move |msg: Msg| {
        match &msg {
            Msg::Event(Event::Progress { stage, done, total }) => lab.job.update(|j| {
                if let Some(j) = j.as_mut().filter(|j| j.token == token) {
                    let since = match &j.stage {
                        Some((s, _, _, since)) if s == stage => *since,
                        _ => js_sys::Date::now(),
                    };
                    j.stage = Some((stage.clone(), *done, *total, since));
                }
            }),
            Msg::Reply(_) if mine(&lab.job.get_untracked()) => lab.job.set(None),
            _ => {}
        }
        handler(msg)
    };
    if lab.remote.get_untracked() {
        return super::helper::run(lab, request, handler);
    }
    let id = next_id(&b);
    b.pending.borrow_mut().insert(id, Box::new(handler));
    b.lab.busy.update(|n| *n += 1);
    send(&b, ToWorker::Run { id, request }, Vec::new());
}

/// Loads a model or an SAE; `then` runs once it is loaded (or failed). `id` names a catalogue model.
pub fn load(
    kind: Kind,
    id: &str,
    label: String,
    source: Source,
    config_overrides: Option<String>,
    files: Vec<web_sys::File>,
    then: impl FnOnce(&Lab, Result<(), String>) + 'static,
) {
    let b = bridge();
    let load_id = next_id(&b);
    b.lab.progress.set(Vec::new());
    b.lab.loading.set(Some((load_id, kind)));
    b.lab.status.set(Status::Info(format!("Loading {label}…")));
    if kind == Kind::Model {
        let revision = match &source {
            Source::Hub { revision, .. } => Some(revision.clone()),
            _ => None,
        };
        *b.loading_model.borrow_mut() = (id.to_string(), revision);
    }
    *b.on_loaded.borrow_mut() = Some(Box::new(then));
    send(&b, ToWorker::Load { id: load_id, kind, label, source, config_overrides }, files);
}

/// Stops every request in flight and the load, at their next step.
pub fn cancel_all() {
    super::helper::cancel_all();
    let b = bridge();
    let mut ids: Vec<u32> = b.pending.borrow().keys().copied().collect();
    ids.extend(b.lab.loading.get_untracked().map(|l| l.0));
    for id in ids {
        send(&b, ToWorker::Cancel { id }, Vec::new());
    }
}
