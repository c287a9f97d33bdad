//! The engine's own thread. One GPU serves one job at a time, so jobs queue here; at most `max_jobs` are open
//! (running or waiting) and a request past that is turned away at once rather than left waiting. Each job
//! answers with lines of JSON: events while it runs, then its reply. A client that goes away frees its slot at
//! once, whether its job waits (the job is dropped unrun) or runs (it stops at its next check of `Stop`).

use serde_json::json;
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use steerlab::device::Device;
use steerlab::engine::{Engine, Reply, Request, Response, Stop, never};
use steerlab::model::Model;
use steerlab::sae::Sae;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

pub enum Work {
    Run(Request),
    LoadModel { name: String, dir: PathBuf },
    LoadSae { name: String, dir: PathBuf },
}

/// Taken by whichever comes first: the engine starting the job, or the client leaving while it waits.
type Shared<T> = Arc<Mutex<Option<T>>>;

fn take<T>(shared: &Shared<T>) -> Option<T> {
    shared.lock().unwrap_or_else(|p| p.into_inner()).take()
}

struct Job {
    /// The request, dropped at once if the client leaves before the engine reaches it.
    work: Shared<Work>,
    /// The job's place among `max_jobs`, given back when it ends or when its client leaves, whichever is first.
    slot: Shared<OwnedSemaphorePermit>,
    /// NDJSON lines to the client; closed when the client goes away.
    out: mpsc::UnboundedSender<String>,
    /// Dropped when the job ends, which ends its watcher.
    _done: oneshot::Sender<()>,
}

pub struct Jobs {
    tx: std::sync::mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    pub max_jobs: usize,
}

impl Jobs {
    /// Starts the engine thread on `device`.
    pub fn start(device: Device, max_jobs: usize) -> steerlab::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("steerlab-engine".into())
            .spawn(move || {
                let mut engine = Engine::default();
                for job in rx {
                    run(&mut engine, &device, job);
                }
            })
            .map_err(|e| steerlab::Error::Device(format!("cannot start the engine thread: {e}")))?;
        Ok(Self { tx, slots: Arc::new(Semaphore::new(max_jobs)), max_jobs })
    }

    /// Queues `work`; its lines come out of the receiver. None when `max_jobs` jobs are open already. Must be
    /// called on the runtime: a task watches for the client leaving.
    pub fn submit(&self, work: Work) -> Option<mpsc::UnboundedReceiver<String>> {
        let slot = Arc::new(Mutex::new(Some(self.slots.clone().try_acquire_owned().ok()?)));
        let work = Arc::new(Mutex::new(Some(work)));
        let (out, rx) = mpsc::unbounded_channel();
        let (done, finished) = oneshot::channel();
        let watch = (work.clone(), slot.clone(), out.clone());
        tokio::spawn(async move {
            let (work, slot, out) = watch;
            tokio::select! {
                _ = out.closed() => {
                    take(&work);
                    take(&slot);
                }
                _ = finished => {}
            }
        });
        self.tx.send(Job { work, slot, out, _done: done }).ok()?;
        Some(rx)
    }
}

fn run(engine: &mut Engine, device: &Device, job: Job) {
    let Job { work, slot, out, _done } = job;
    let Some(work) = take(&work) else {
        return; // the client left while it waited
    };
    // A request stops at its next forward pass (or token) once the client has gone away.
    let stop: Stop = {
        let out = out.clone();
        Rc::new(move || out.is_closed())
    };
    let send = |line: String| {
        let _ = out.send(line); // a client that left is seen by `stop`
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
        Work::Run(req) => {
            // A stage's progress as events, at most five lines a second (and always its first).
            let progress: steerlab::model::Progress = {
                let (out, last) = (out.clone(), Cell::new(None::<std::time::Instant>));
                Rc::new(move |stage: &str, done, total| {
                    if done == 0 || last.get().is_none_or(|t| t.elapsed().as_millis() >= 200) {
                        last.set(Some(std::time::Instant::now()));
                        let event = steerlab::engine::Event::Progress { stage: stage.into(), done, total };
                        let _ = out.send(json!({ "event": event }).to_string());
                    }
                })
            };
            let on_event = &mut |event| send(json!({ "event": event }).to_string());
            pollster::block_on(engine.handle_reporting(req, stop, Some(progress), on_event))
        }
        Work::LoadModel { name, dir } => {
            send(json!({ "status": format!("loading {name}") }).to_string());
            // The lab draws these as a progress bar, at most once per percent.
            let last = Cell::new(u64::MAX);
            let report = |read: u64, total: u64| {
                let percent = read * 100 / total.max(1);
                if percent != last.get() {
                    last.set(percent);
                    let file = format!("{name} (weights)");
                    send(json!({ "progress": { "file": file, "loaded": read, "total": total } }).to_string());
                }
            };
            let mut model =
                Model::from_dir_reporting(&dir, device, &report)?.with_precision(crate::precision::current())?;
            model.name = name;
            engine.set_model(model);
            status(engine)
        }
        Work::LoadSae { name, dir } => {
            send(json!({ "status": format!("loading {name}") }).to_string());
            let mut sae = Sae::from_dir(&dir, device)?;
            sae.name = name;
            engine.set_sae(sae)?;
            status(engine)
        }
    }));
    let reply = match result {
        Ok(outcome) => Reply::of(outcome),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Reply::Error(format!("the engine failed on this request (a bug in steerlab): {what}"))
        }
    };
    send(json!({ "reply": reply }).to_string());
    take(&slot);
}

fn status(engine: &Engine) -> steerlab::Result<Response> {
    pollster::block_on(engine.handle(Request::Status, never(), &mut |_| {}))
}
