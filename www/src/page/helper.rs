//! The native helper (`steerlab serve`): pairing with its token, loading one of its models or SAEs, and running
//! the lab's requests there instead of in this tab's worker, for models too large for a browser. Its answers
//! stream back as lines of JSON (`{"event": …}`, then `{"reply": …}`).

use super::bridge::{Lab, LoadedModel, Msg, Status};
use leptos::prelude::*;
use std::cell::RefCell;
use steerlab::engine::{Reply, Request, Response};
use steerlab_www::Kind;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{JsFuture, spawn_local};

/// Appended to the names of the model and SAE loaded on the helper, where the page shows them.
pub const ON_HELPER: &str = " (on the helper)";

const URL_KEY: &str = "steerlab.helper";
const TOKEN_KEY: &str = "steerlab.helper-token";
pub const DEFAULT_URL: &str = "http://127.0.0.1:7878";

/// A helper the page is paired with.
#[derive(Clone, PartialEq)]
pub struct Helper {
    pub url: String,
    pub token: String,
    pub device: String,
    pub models: Vec<String>,
    pub saes: Vec<String>,
}

thread_local! {
    /// Requests in flight on the helper, so Stop can abort them.
    static IN_FLIGHT: RefCell<Vec<web_sys::AbortController>> = const { RefCell::new(Vec::new()) };
}

fn js_text(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}

/// Sends one request to the helper and hands each line of its answer to `on_line`; an error names what went
/// wrong (unreachable, refused with its message, or cut off).
async fn call(
    h: &Helper,
    method: &str,
    path: &str,
    body: Option<String>,
    abort: Option<&web_sys::AbortController>,
    mut on_line: impl FnMut(serde_json::Value),
) -> Result<(), String> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(|e| js_text(&e))?;
    headers.set("authorization", &format!("Bearer {}", h.token)).map_err(|e| js_text(&e))?;
    if let Some(b) = &body {
        headers.set("content-type", "application/json").map_err(|e| js_text(&e))?;
        init.set_body(&wasm_bindgen::JsValue::from_str(b));
    }
    init.set_headers(&headers);
    if let Some(a) = abort {
        init.set_signal(Some(&a.signal()));
    }
    let url = format!("{}{path}", h.url.trim_end_matches('/'));
    let resp: web_sys::Response = JsFuture::from(window().fetch_with_str_and_init(&url, &init))
        .await
        .map_err(|e| format!("cannot reach the helper at {} ({})", h.url, js_text(&e)))?
        .unchecked_into();
    if !resp.ok() {
        let text = match resp.text() {
            Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
            Err(_) => String::new(),
        };
        let why = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(text);
        return Err(format!("the helper answered HTTP {}: {why}", resp.status()));
    }
    let body = resp.body().ok_or("the helper's answer had no body")?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk =
            JsFuture::from(reader.read()).await.map_err(|e| format!("the answer was cut off: {}", js_text(&e)))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if let Ok(v) = js_sys::Reflect::get(&chunk, &"value".into())
            && let Some(bytes) = v.dyn_ref::<js_sys::Uint8Array>()
        {
            pending.extend(bytes.to_vec());
        }
        // Whole lines only: a chunk may end inside one (or inside a multi-byte character).
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                on_line(v);
            }
        }
        if done {
            break;
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&pending) {
        on_line(v);
    }
    Ok(())
}

/// Why pairing failed, in what to do. A refused origin and a helper that is not running look the same to a
/// request carrying the token (the browser blocks its preflight either way), so a plain GET without one asks
/// the helper itself: it answers every origin's plain request with its reason.
async fn diagnose(url: &str, error: String) -> String {
    if error.contains("HTTP 401") {
        return "The helper refused the pairing token: copy the token \"steerlab serve\" printed when it started \
                (it changes at every start)."
            .into();
    }
    let probe = JsFuture::from(window().fetch_with_str(&format!("{url}/v1/info"))).await;
    let Ok(resp) = probe.map(|r| r.unchecked_into::<web_sys::Response>()) else {
        return format!(
            "No helper answers at {url}: start one with \"steerlab serve\" on this computer (README, Native \
             helper, says how to build it) and check the URL and port it prints."
        );
    };
    let body = match resp.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    if resp.status() == 403 && body.contains("is not allowed") {
        let origin = window().location().origin().unwrap_or_default();
        return format!(
            "The helper at {url} does not accept this page ({origin}): restart it with \
             \"steerlab serve --allow-origin {origin}\"."
        );
    }
    format!("Pairing with the helper at {url} failed: {error}")
}

/// Pairs with the helper at `url`: its device and what it can load.
pub async fn connect(url: &str, token: &str) -> Result<Helper, String> {
    let mut h = Helper {
        url: url.trim().trim_end_matches('/').to_string(),
        token: token.trim().to_string(),
        device: String::new(),
        models: vec![],
        saes: vec![],
    };
    let mut info = None;
    if let Err(e) = call(&h, "GET", "/v1/info", None, None, |v| info = Some(v)).await {
        return Err(diagnose(&h.url, e).await);
    }
    let info = info.ok_or("the helper sent no description of itself")?;
    let names = |key: &str| -> Vec<String> {
        let list = info.get(key).and_then(|m| m.as_array()).cloned().unwrap_or_default();
        list.iter().filter_map(|e| e.get("name").and_then(|n| n.as_str()).map(String::from)).collect()
    };
    h.device = info.get("device").and_then(|d| d.as_str()).unwrap_or("unknown").to_string();
    (h.models, h.saes) = (names("models"), names("saes"));
    Ok(h)
}

/// Runs `request` on the helper: the same messages reach `handler` as from the worker.
pub fn run(lab: Lab, request: Request, mut handler: impl FnMut(Msg) + 'static) {
    let Some(h) = lab.helper.get_untracked() else {
        handler(Msg::Reply(Reply::Error("the helper is not connected".into())));
        return;
    };
    let abort = web_sys::AbortController::new().ok();
    if let Some(a) = &abort {
        IN_FLIGHT.with(|f| f.borrow_mut().push(a.clone()));
    }
    lab.busy.update(|n| *n += 1);
    spawn_local(async move {
        let body = serde_json::to_string(&request).expect("requests serialise");
        let mut replied = false;
        let result = call(&h, "POST", "/v1/run", Some(body), abort.as_ref(), |v| {
            if let Some(e) = v.get("event").and_then(|e| serde_json::from_value(e.clone()).ok()) {
                handler(Msg::Event(e));
            } else if let Some(r) = v.get("reply").and_then(|r| serde_json::from_value::<Reply>(r.clone()).ok()) {
                replied = true;
                finish(lab, &mut handler, r);
            }
        })
        .await;
        if let Some(a) = &abort {
            IN_FLIGHT.with(|f| f.borrow_mut().retain(|x| x != a));
        }
        if !replied {
            let why = result.err().unwrap_or_else(|| "the helper ended its answer without a reply".into());
            let aborted = abort.as_ref().is_some_and(|a| a.signal().aborted());
            finish(lab, &mut handler, Reply::Error(if aborted { "cancelled".into() } else { why }));
        }
    });
}

fn finish(lab: Lab, handler: &mut impl FnMut(Msg), reply: Reply) {
    lab.busy.update(|n| *n = n.saturating_sub(1));
    if let Reply::Error(e) = &reply {
        lab.status.set(if e == "cancelled" { Status::Info("Stopped.".into()) } else { Status::Error(e.clone()) });
    }
    handler(Msg::Reply(reply));
}

/// Aborts every request running on the helper.
pub fn cancel_all() {
    IN_FLIGHT.with(|f| f.borrow().iter().for_each(|a| a.abort()));
}

/// Loads helper model or SAE `name`; from then on the lab's requests run on the helper.
pub fn load(lab: Lab, kind: Kind, name: String) {
    let Some(h) = lab.helper.get_untracked() else { return };
    lab.loading.set(Some((0, kind)));
    lab.progress.set(Vec::new());
    lab.status.set(Status::Info(format!("The helper is loading {name}…")));
    spawn_local(async move {
        let body =
            if kind == Kind::Model { serde_json::json!({ "model": name }) } else { serde_json::json!({ "sae": name }) };
        let mut reply = None;
        let result = call(&h, "POST", "/v1/load", Some(body.to_string()), None, |v| {
            if let Some(s) = v.get("status").and_then(|s| s.as_str()) {
                lab.status.set(Status::Info(format!("The helper is {s}…")));
            } else if let Some(p) = v.get("progress") {
                // The helper reading the weights: drawn like a download.
                let n = |k: &str| p.get(k).and_then(|x| x.as_u64());
                let (file, loaded) =
                    (p.get("file").and_then(|f| f.as_str()).unwrap_or(&name), n("loaded").unwrap_or(0));
                super::bridge::show_progress(lab, file.to_string(), loaded, n("total"), false);
            } else if let Some(r) = v.get("reply").and_then(|r| serde_json::from_value::<Reply>(r.clone()).ok()) {
                reply = Some(r);
            }
        })
        .await;
        lab.loading.set(None);
        match (result, reply) {
            (_, Some(Reply::Ok(r))) => {
                if let Response::Status { model, sae } = *r {
                    lab.model.set(model.map(|m| LoadedModel {
                        id: "helper".into(),
                        revision: None,
                        label: format!("{}{ON_HELPER}", m.name),
                        n_layers: m.config.n_layers,
                    }));
                    lab.sae.set(sae.map(|s| (format!("{}{ON_HELPER}", s.name), s.config.hook_name)));
                    lab.remote.set(true);
                    lab.status.set(Status::Info(format!("The helper loaded {name}; the lab now runs there.")));
                }
            }
            (_, Some(Reply::Error(e))) | (Err(e), None) => {
                lab.status.set(Status::Error(format!("The helper could not load {name}: {e}")))
            }
            (Ok(()), None) => lab.status.set(Status::Error("The helper ended its answer without a reply.".into())),
        }
    });
}

fn stored(key: &str) -> Option<String> {
    window().local_storage().ok().flatten()?.get_item(key).ok().flatten()
}

fn store(key: &str, value: &str) {
    if let Some(s) = window().local_storage().ok().flatten() {
        let _ = s.set_item(key, value);
    }
}

/// Connecting to the helper and choosing what it loads.
#[component]
pub fn HelperPanel() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let url = RwSignal::new(stored(URL_KEY).unwrap_or_else(|| DEFAULT_URL.into()));
    let token = RwSignal::new(stored(TOKEN_KEY).unwrap_or_default());
    let model = RwSignal::new(String::new());
    let sae = RwSignal::new(String::new());
    let connecting = RwSignal::new(false);
    let do_connect = move |_| {
        connecting.set(true);
        let (u, t) = (url.get_untracked(), token.get_untracked());
        spawn_local(async move {
            match connect(&u, &t).await {
                Ok(h) => {
                    store(URL_KEY, &h.url);
                    store(TOKEN_KEY, &h.token);
                    model.set(h.models.first().cloned().unwrap_or_default());
                    sae.set(h.saes.first().cloned().unwrap_or_default());
                    lab.status.set(Status::Info(format!(
                        "Paired with the helper at {} ({}): {} models, {} SAEs.",
                        h.url,
                        h.device,
                        h.models.len(),
                        h.saes.len()
                    )));
                    lab.helper.set(Some(h));
                }
                Err(e) => lab.status.set(Status::Error(e)),
            }
            connecting.set(false);
        });
    };
    let disconnect = move |_| {
        cancel_all();
        if lab.remote.get_untracked() {
            lab.model.set(None);
            lab.sae.set(None);
            lab.remote.set(false);
        }
        lab.helper.set(None);
        lab.status.set(Status::Info("Disconnected from the helper: load a model to go on in this tab.".into()));
    };
    let free = move || lab.loading.get().is_none() && lab.busy.get() == 0;
    view! {
        <details class="helper">
            <summary>"Native helper (heavier models)"</summary>
            <p class="note">"Run " <code>"steerlab serve"</code> " on this computer for models too large for a tab \
                (GPT-2 XL, larger Pythias, Gemma-2-2B with Gemma Scope); paste the pairing token it prints. "
                <code>"steerlab fetch google/gemma-2-2b"</code> " downloads a model to where the helper finds it."</p>
            <div class="row">
                <label>"Helper URL " <input type="url" aria-label="Helper URL" prop:value=move || url.get()
                    on:input=move |ev| url.set(event_target_value(&ev)) /></label>
                <label>"Token " <input type="password" aria-label="Pairing token" prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev)) /></label>
                <button on:click=do_connect
                    disabled=move || connecting.get() || token.get().trim().is_empty()>"Connect"</button>
            </div>
            {move || lab.helper.get().map(|h| {
                let (models, saes) = (h.models.clone(), h.saes.clone());
                view! {
                    <p class="note" data-testid="helper">{format!("Connected to {} on {}.", h.url, h.device)}</p>
                    <div class="row">
                        <label>"Helper model "
                            <select aria-label="Helper model" on:change=move |ev| model.set(event_target_value(&ev))>
                                {models.into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                        <button disabled=move || !free() || model.get().is_empty()
                            on:click=move |_| load(lab, Kind::Model, model.get_untracked())>"Load on the helper"</button>
                    </div>
                    <div class="row">
                        <label>"Helper SAE "
                            <select aria-label="Helper SAE" on:change=move |ev| sae.set(event_target_value(&ev))>
                                {saes.into_iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                        <button disabled=move || !free() || !lab.remote.get() || sae.get().is_empty()
                            on:click=move |_| load(lab, Kind::Sae, sae.get_untracked())>"Load SAE on the helper"</button>
                        <button class="small" on:click=disconnect>"Disconnect"</button>
                    </div>
                }
            })}
        </details>
    }
}
