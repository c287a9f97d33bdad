//! `steerlab serve`: the engine over HTTP on 127.0.0.1, for the browser lab to run heavier models than a tab can.
//! The API is the engine's own request/response types (`steerlab::engine`), the ones the lab's Web Worker runs:
//!
//! - `GET /v1/info`: the helper's version, device, limits, the models and SAEs it can load, and what is loaded.
//! - `POST /v1/load` `{"model": NAME}` or `{"sae": NAME}`: loads one of those, by name.
//! - `POST /v1/run` with an engine `Request`: answers with lines of JSON (`application/x-ndjson`):
//!   `{"event": Event}` while it runs (generated text streams this way), then `{"reply": Reply}`.
//!
//! Each needs the pairing token (`guard.rs`); bad input gets a 4xx with `{"error": "..."}`.

mod conns;
mod guard;
mod jobs;
pub mod library;
mod limits;
pub mod loadtest;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use clap::Args;
use conns::ConnLimits;
use guard::Guard;
use jobs::{Jobs, Work};
use library::Kind;
use limits::Limits;
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::engine::Request;
use steerlab::{Error, Result};

#[derive(Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 7878)]
    port: u16,
    /// Folder of models and SAEs (hub layout folders, searched 8 levels down). Default: the Hugging Face cache.
    #[arg(long)]
    models: Option<PathBuf>,
    /// cpu, wgpu or cuda (builds with `--features cuda`). Default: CUDA in such builds, else wgpu (Vulkan, Metal,
    /// DX12), falling back to the CPU when there is no adapter.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// A web page origin allowed to use the helper, e.g. https://lab.example.org. Repeatable. The lab served by
    /// `bash scripts/lab.sh` (http://127.0.0.1:8080, http://localhost:8080) is always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Jobs open at once (running or queued); more are refused with 429.
    #[arg(long, default_value_t = 4)]
    max_jobs: usize,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    conns: ConnLimits,
}

struct App {
    jobs: Jobs,
    library: Arc<library::Library>,
    device: String,
    limits: Limits,
    conns: ConnLimits,
}

/// An error answer: `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({ "error": message.into() }).to_string())
        .into_response()
}

pub fn run(args: ServeArgs) -> Result<()> {
    if args.max_jobs == 0 {
        return Err(Error::invalid("--max-jobs must be at least 1"));
    }
    let fetch_hint = "download one with `steerlab fetch openai-community/gpt2-xl` (or another hub repo)";
    let root = match (args.models, library::hub_cache()) {
        (Some(r), _) if r.is_dir() => r,
        (Some(r), _) => return Err(Error::invalid(format!("the models folder {} does not exist", r.display()))),
        (None, Some(r)) if r.is_dir() => r,
        (None, Some(r)) => {
            return Err(Error::invalid(format!(
                "no models yet: the Hugging Face cache {} does not exist; {fetch_hint}, or pass --models DIR",
                r.display()
            )));
        }
        (None, None) => return Err(Error::invalid("no models folder: pass --models DIR")),
    };
    let library = Arc::new(library::Library::new(root.clone()));
    let found = library.entries(std::time::Duration::MAX);
    let models = found.iter().filter(|e| e.kind == Kind::Model).count();
    let (device, device_name) = pick_device(args.device)?;
    let mut origins = vec!["http://127.0.0.1:8080".to_string(), "http://localhost:8080".to_string()];
    origins.extend(args.allow_origins.iter().map(|o| o.trim_end_matches('/').to_string()));
    let mut conn_limits = args.conns;
    conn_limits.max_connections = conns::connection_room(conn_limits.max_connections.max(1));
    // Timers as well as I/O: hyper's header timeout and the idle and accept back-off clocks run on them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Device(format!("cannot start the server runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| Error::invalid(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
        let port = listener.local_addr().map_err(|e| Error::invalid(e.to_string()))?.port();
        let guard = Arc::new(Guard { port, origins, token: guard::new_token().map_err(Error::Device)? });
        let app = Arc::new(App {
            jobs: Jobs::start(device, args.max_jobs)?,
            library,
            device: device_name.clone(),
            limits: args.limits,
            conns: conn_limits.clone(),
        });
        let routes = Router::new()
            .route("/v1/info", get(info))
            .route("/v1/load", post(load))
            .route("/v1/run", post(run_request))
            .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint: see GET /v1/info") })
            .with_state(app.clone())
            .layer(DefaultBodyLimit::max(app.limits.max_body_bytes))
            .layer(middleware::from_fn_with_state(guard.clone(), guard::check));
        println!("steerlab helper on http://127.0.0.1:{port} ({device_name}), models from {}", root.display());
        println!("pairing token: {}", guard.token);
        println!("allowed origins: {}", guard.origins.join(", "));
        println!("{models} models and {} SAEs there", found.len() - models);
        if models == 0 {
            println!("note: no model there yet; {fetch_hint}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        conns::serve(listener, routes, conn_limits).await;
        Ok(())
    })
}

/// The device asked for, else the first that works of CUDA (in builds with it), wgpu and the CPU.
fn pick_device(choice: Option<DeviceChoice>) -> Result<(steerlab::device::Device, String)> {
    let name = |c: DeviceChoice| format!("{c:?}").to_lowercase();
    if let Some(c) = choice {
        return Ok((pollster::block_on(init_device(c))?, name(c)));
    }
    let order =
        if cfg!(feature = "cuda") { vec![DeviceChoice::Cuda, DeviceChoice::Wgpu] } else { vec![DeviceChoice::Wgpu] };
    for c in order {
        match pollster::block_on(init_device(c)) {
            Ok(d) => return Ok((d, name(c))),
            Err(e) => eprintln!("note: {e}; trying the next device"),
        }
    }
    eprintln!("note: running on the CPU");
    Ok((pollster::block_on(init_device(DeviceChoice::Cpu))?, "cpu".into()))
}

/// The models folder's entries, from a scan at most `max_age` old (scans run off the runtime's threads).
async fn entries(app: &App, max_age: std::time::Duration) -> Arc<Vec<library::Entry>> {
    let library = app.library.clone();
    tokio::task::spawn_blocking(move || library.entries(max_age)).await.unwrap_or_default()
}

async fn info(State(app): State<Arc<App>>) -> Response {
    let entries = entries(&app, std::time::Duration::from_secs(5)).await;
    let (models, saes): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.kind == Kind::Model);
    let body = json!({
        "name": "steerlab",
        "version": env!("CARGO_PKG_VERSION"),
        "device": app.device,
        "max_jobs": app.jobs.max_jobs,
        "limits": app.limits,
        "connections": app.conns,
        "models": models,
        "saes": saes,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Parses a JSON body, turning each way it can be wrong into a clear 4xx: its status and message.
fn parse<T: serde::de::DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<T, (StatusCode, String)> {
    let body = body.map_err(|r| {
        let status = r.status();
        (
            status,
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                "the request body is too large".into()
            } else {
                r.body_text()
            },
        )
    })?;
    serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, format!("not a valid request: {e}")))
}

/// Queues `work` and streams its lines back, or says the helper is busy.
fn stream(app: &App, work: Work) -> Response {
    let Some(rx) = app.jobs.submit(work) else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("the helper is busy with {} jobs: try again when one has finished", app.jobs.max_jobs),
        );
    };
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, std::convert::Infallible>(line + "\n"), rx))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    model: Option<String>,
    sae: Option<String>,
}

async fn load(State(app): State<Arc<App>>, body: std::result::Result<Bytes, BytesRejection>) -> Response {
    let body: LoadBody = match parse(body) {
        Ok(b) => b,
        Err((status, why)) => return error(status, why),
    };
    let (kind, name) = match (body.model, body.sae) {
        (Some(m), None) => (Kind::Model, m),
        (None, Some(s)) => (Kind::Sae, s),
        _ => return error(StatusCode::BAD_REQUEST, "send {\"model\": NAME} or {\"sae\": NAME}, one of them"),
    };
    // A name not in a recent scan may have just been fetched: look again, once, with a fresh scan.
    let mut found = entries(&app, std::time::Duration::from_secs(5)).await;
    if !found.iter().any(|e| e.kind == kind && e.name == name) {
        found = entries(&app, std::time::Duration::from_secs(1)).await;
    }
    let mut entry = found.iter().find(|e| e.kind == kind && e.name == name).cloned();
    // An SAE may also be named by its SAELens id, found by its release's repository and folder in the hub cache.
    if entry.is_none()
        && kind == Kind::Sae
        && let Ok((release, sae)) = steerlab::sae::releases::resolve(&name)
    {
        let same = |e: &&library::Entry| {
            steerlab::sae::releases::by_cache_dir(&e.dir)
                .is_some_and(|(r, s)| r.repo == release.repo && s.path == sae.path)
        };
        entry = found.iter().filter(|e| e.kind == Kind::Sae).find(same).cloned();
        if entry.is_none() {
            let why = format!(
                "the SAELens SAE {name} ({} in {}) is not in this helper's models folder: run `steerlab fetch {name}` \
                 on its machine",
                sae.path, release.repo
            );
            return error(StatusCode::NOT_FOUND, why);
        }
    }
    let Some(entry) = entry else {
        let what = if kind == Kind::Model { "model" } else { "SAE" };
        return error(StatusCode::NOT_FOUND, format!("no {what} named \"{name}\" here: GET /v1/info lists them"));
    };
    stream(
        &app,
        match kind {
            Kind::Model => Work::LoadModel { name, dir: entry.dir },
            Kind::Sae => Work::LoadSae { name, dir: entry.dir },
        },
    )
}

async fn run_request(State(app): State<Arc<App>>, body: std::result::Result<Bytes, BytesRejection>) -> Response {
    let req: Request = match parse(body) {
        Ok(r) => r,
        Err((status, why)) => return error(status, why),
    };
    if let Err(why) = app.limits.check(&req) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    stream(&app, Work::Run(req))
}
