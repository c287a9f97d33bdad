//! Choosing what runs: the device and its adapter, a model and its SAE from the catalogue (hub downloads with
//! progress, kept in Cache Storage), or files the user drops; and the storage those downloads use.

use super::bridge::{self, Lab};
use super::gpu::{AdapterInfo, adapter_info};
use super::widgets::Bar;
use leptos::prelude::*;
use steerlab_www::catalog::{self, HUB, MODELS, ModelEntry, SITE_HUB};
use steerlab_www::{DeviceChoice, Kind, MODEL_CACHE, Precision, Source, precision_from_query, progress};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{JsFuture, spawn_local};

const HUB_KEY: &str = "steerlab.hub";

const DEVICE_KEY: &str = "steerlab-device";
const PRECISION_KEY: &str = "steerlab-precision";

/// The hub (or mirror) URL downloads come from, shared by the model panel and the first-run banner: the one set
/// before in this browser, else huggingface.co. Kept in the browser whenever it changes.
#[derive(Clone, Copy)]
pub struct HubUrl(pub RwSignal<String>);

impl HubUrl {
    pub fn new() -> Self {
        Self(RwSignal::new(local_storage().and_then(|s| s.get_item(HUB_KEY).ok().flatten()).unwrap_or(HUB.into())))
    }

    fn set(self, url: String) {
        if let Some(s) = local_storage() {
            let _ = s.set_item(HUB_KEY, &url);
        }
        self.0.set(url);
    }
}

/// The first-run path off the embedded random model: a banner that says what it is and loads a real model (and
/// the SAE in the middle of its release) in one click, with its size and a download time.
#[component]
pub fn RealModelBanner() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let hub = expect_context::<HubUrl>().0;
    let load = move |entry: &'static ModelEntry| {
        let hooks = entry.saes.hooks();
        let hook = hooks.get(hooks.len() / 2).map(|h| h.to_string());
        load_entry(entry, &hub.get_untracked(), entry.revision, hook);
    };
    let busy = move || lab.device.get().is_none() || lab.loading.get().is_some() || lab.busy.get() > 0;
    // Download time at 50 Mbit/s, a typical classroom connection.
    let button = move |entry: &'static ModelEntry| {
        let secs = (entry.megabytes as f64 * 8.0 / 50.0).round();
        let text =
            format!("Load {} ({} MB, about {secs:.0} s at 50 Mbit/s, then its SAE)", entry.label, entry.megabytes);
        view! { <button on:click=move |_| load(entry) disabled=busy>{text}</button> }
    };
    move || {
        super::widgets::random_model(&lab).then(|| {
            view! {
                <aside class="banner" data-testid="random-banner">
                    <p><strong>"This is a tiny model with random weights"</strong>
                        ", built in so the lab opens offline with no download. Its generations are noise and its \
                         steerabilities, diagnostics and feature scores mean nothing. Start with a real model (it is \
                         kept in this browser after the first download):"</p>
                    <div class="row">{button(&catalog::PYTHIA_70M_DEDUPED)}{button(&catalog::GPT2_SMALL)}</div>
                </aside>
            }
        })
    }
}

/// The engine device chosen before in this browser, if any.
fn saved_device() -> Option<DeviceChoice> {
    local_storage()?.get_item(DEVICE_KEY).ok().flatten().map(|d| DeviceChoice::parse(&d))
}

/// The engine device in use: the page URL's `?device=`, else the saved choice, else auto.
pub fn current_device() -> DeviceChoice {
    DeviceChoice::from_query(&window().location().search().unwrap_or_default())
        .or_else(saved_device)
        .unwrap_or(DeviceChoice::Auto)
}

/// The weights' precision asked for: the page URL's `?precision=`, else the saved choice, else f32.
pub fn current_precision() -> Precision {
    precision_from_query(&window().location().search().unwrap_or_default())
        .or_else(|| local_storage()?.get_item(PRECISION_KEY).ok().flatten().map(|p| p.parse().unwrap_or_default()))
        .unwrap_or_default()
}

/// Keeps the choice and restarts the page on it (the engine worker picks its device once, at start). A
/// `?device=` in the URL would override the saved choice, so it is dropped.
fn choose_device(name: &str) {
    if let Some(s) = local_storage() {
        let _ = s.set_item(DEVICE_KEY, DeviceChoice::parse(name).name());
    }
    restart_without_query();
}

/// Keeps the weights' precision and restarts the page on it, as `choose_device` does.
fn choose_precision(name: &str) {
    if let Some(s) = local_storage() {
        let _ = s.set_item(PRECISION_KEY, name);
    }
    restart_without_query();
}

/// Reloads the page at its path and hash: the engine worker starts again with the saved choices.
fn restart_without_query() {
    let loc = window().location();
    let hash = loc.hash().unwrap_or_default();
    let path = loc.pathname().unwrap_or_default();
    let _ = loc.assign(&format!("{path}{hash}"));
}

fn local_storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// Loads catalogue model `entry` from `hub` at `revision`, then (for the embedded default, or when asked) its SAE.
pub fn load_entry(entry: &'static ModelEntry, hub: &str, revision: &str, sae_hook: Option<String>) {
    let base = if entry.embedded { SITE_HUB.to_string() } else { hub.to_string() };
    let source = Source::Hub { base: base.clone(), repo: entry.repo.into(), revision: revision.into(), folder: None };
    let first = entry.saes.hooks().first().map(|h| h.to_string());
    let hook = sae_hook.or_else(|| first.filter(|_| entry.embedded));
    bridge::load(Kind::Model, entry.id, entry.label.into(), source, None, vec![], move |_, result| {
        match (result, hook) {
            // A permalink's SAE may be a SAELens id rather than a hook of the catalogue's release.
            (Ok(()), Some(id)) if id.contains('/') => load_saelens_id(&id, &base, Some(entry.repo)),
            (Ok(()), Some(hook)) => load_sae(entry, &base, &hook),
            _ => {}
        }
    });
}

/// Loads the SAE of `entry`'s release that reads `hook`.
pub fn load_sae(entry: &'static ModelEntry, hub: &str, hook: &str) {
    let r = &entry.saes;
    let Some(folder) = r.folder(hook) else { return };
    let base = if entry.embedded { SITE_HUB.to_string() } else { hub.to_string() };
    let source =
        Source::Hub { base, repo: r.repo().into(), revision: r.revision.into(), folder: Some(folder.to_string()) };
    let label = format!("{} at {hook}", r.label);
    bridge::load(Kind::Sae, entry.id, label, source, r.config_overrides().map(String::from), vec![], |_, _| {});
}

/// Loads the SAE a SAELens id names (`gpt2-small-res-jb/blocks.6.hook_resid_pre`) from `hub`, labelled by its id
/// (which permalinks then keep); a mistyped id, or one for another model, says so.
pub fn load_saelens_id(id: &str, hub: &str, model_repo: Option<&str>) {
    let lab = bridge::lab();
    let (release, sae, revision) = match catalog::page_sae(id, model_repo) {
        Ok(found) => found,
        Err(e) => return lab.status.set(bridge::Status::Error(e)),
    };
    let source = Source::Hub {
        base: hub.to_string(),
        repo: release.repo.into(),
        revision: revision.into(),
        folder: Some(sae.path.to_string()),
    };
    let label = format!("{}/{}", release.id, sae.id);
    let overrides = release.config_overrides.map(String::from);
    bridge::load(Kind::Sae, "saelens", label, source, overrides, vec![], |_, _| {});
}

/// Model files or SAE files the user dropped or picked, told apart by their names.
fn load_local(files: Vec<web_sys::File>, lab: Lab) {
    let names: Vec<String> = files.iter().map(|f| f.name()).collect();
    let kind = if names.iter().any(|n| n == "config.json") {
        Kind::Model
    } else if names.iter().any(|n| n == "cfg.json") {
        Kind::Sae
    } else {
        lab.status.set(bridge::Status::Error(format!(
            "Those files are neither a model (config.json, model.safetensors, tokenizer.json) nor a SAELens SAE \
             (cfg.json, sae_weights.safetensors): got {}.",
            names.join(", ")
        )));
        return;
    };
    let label = if kind == Kind::Model { "your model (local files)" } else { "your SAE (local files)" };
    bridge::load(kind, "local", label.into(), Source::Local { names }, None, files, |_, _| {});
}

fn file_list(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// How much this site stores, and how much of it is downloaded models.
async fn storage_text() -> String {
    let manager = window().navigator().storage();
    let Ok(promise) = manager.estimate() else { return "Storage size unknown in this browser.".into() };
    let Ok(est) = JsFuture::from(promise).await else { return "Storage size unknown in this browser.".into() };
    let est: web_sys::StorageEstimate = est.unchecked_into();
    let (used, quota) = (est.get_usage().unwrap_or(0.0) as u64, est.get_quota().unwrap_or(0.0) as u64);
    format!("This site stores {} (the browser allows up to {}).", progress::bytes(used), progress::bytes(quota))
}

/// Clears the downloaded models and SAEs, and the downloaded datasets with them.
async fn clear_models() -> Result<(), String> {
    let caches = window().caches().map_err(|_| "Cache Storage is not available here".to_string())?;
    for cache in [MODEL_CACHE, super::remote::DATA_CACHE] {
        JsFuture::from(caches.delete(cache)).await.map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

#[component]
pub fn ModelPanel(
    start: &'static ModelEntry,
    start_revision: Option<String>,
    start_sae: Option<String>,
) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let hub_url = expect_context::<HubUrl>();
    let hub = hub_url.0;
    let choice = RwSignal::new(start.id.to_string());
    let entry = move || catalog::model(&choice.get()).unwrap_or(&catalog::EMBEDDED);
    let revision = RwSignal::new(start_revision.unwrap_or_else(|| start.revision.to_string()));
    let first_hook = |e: &ModelEntry| e.saes.hooks().first().map_or(String::new(), |h| h.to_string());
    let sae_hook = RwSignal::new(start_sae.clone().filter(|s| !s.contains('/')).unwrap_or_else(|| first_hook(start)));
    let sae_id = RwSignal::new(start_sae.clone().filter(|s| s.contains('/')).unwrap_or_default());
    let adapter = RwSignal::new(None::<Result<AdapterInfo, String>>);
    let storage = RwSignal::new(String::new());
    let dragging = RwSignal::new(false);
    let refresh_storage = move || spawn_local(async move { storage.set(storage_text().await) });

    spawn_local(async move { adapter.set(Some(adapter_info().await)) });
    refresh_storage();
    // Once the engine has a device, load the starting model: the embedded one at once; a hub model from a
    // permalink only if the user agrees to the download (the button below), unless it is cached already.
    let started = StoredValue::new(false);
    let start_sae_hook = start_sae.clone();
    let link_sae = StoredValue::new(start_sae.clone().filter(|_| !start.embedded));
    Effect::new(move || {
        if lab.device.get().is_some() && !started.get_value() {
            started.set_value(true);
            if start.embedded {
                load_entry(start, &hub.get_untracked(), &revision.get_untracked(), start_sae_hook.clone());
            } else {
                lab.status.set(bridge::Status::Info(format!(
                    "This link uses {} ({} MB download, kept for next time): press Load model.",
                    start.label, start.megabytes
                )));
            }
        }
    });
    // Refresh the storage figure after each load.
    Effect::new(move || {
        if lab.loading.get().is_none() {
            refresh_storage();
        }
    });

    let on_pick = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        if let Some(e) = catalog::model(&id) {
            revision.set(e.revision.into());
            sae_hook.set(first_hook(e));
        }
        choice.set(id);
    };
    let load_model = move |_| {
        // The first load of a link's model brings the link's SAE with it.
        let sae = (entry().id == start.id).then(|| link_sae.get_value()).flatten();
        link_sae.set_value(None);
        load_entry(entry(), &hub.get_untracked(), &revision.get_untracked(), sae);
    };
    let load_sae_click = move |_| load_sae(entry(), &hub.get_untracked(), &sae_hook.get_untracked());
    let load_id_click = move |_| {
        let id = sae_id.get_untracked().trim().to_string();
        // The lab runs on the helper: it finds the id in its own hub cache (Gemma Scope too).
        if lab.remote.get_untracked() {
            return match steerlab::sae::releases::resolve(&id) {
                Ok(_) => super::helper::load(lab, Kind::Sae, id),
                Err(e) => lab.status.set(bridge::Status::Error(e)),
            };
        }
        let loaded = lab.model.get_untracked().and_then(|m| catalog::model(&m.id));
        let model_repo = loaded.filter(|e| !e.embedded).map(|e| e.repo);
        load_saelens_id(&id, &hub.get_untracked(), model_repo)
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let files = file_list(ev.data_transfer().and_then(|d| d.files()));
        load_local(files, lab);
    };
    let on_files = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        load_local(file_list(input.files()), lab);
        input.set_value("");
    };
    let loaded_entry = move || lab.model.get().and_then(|m| catalog::model(&m.id));
    let can_load = move || lab.device.get().is_some() && lab.loading.get().is_none() && lab.busy.get() == 0;

    view! {
        <section class="panel" aria-label="Model" id="model">
            <h2>"Model and device"</h2>
            <p class="note" data-testid="device">{move || match lab.device.get() {
                None => "Starting the engine…".to_string(),
                Some((d, _, why)) => format!("Running on {d}: {why}."),
            }}</p>
            <label>"Engine device "
                <select aria-label="Engine device" on:change=move |ev| choose_device(&event_target_value(&ev))>
                    {DeviceChoice::ALL.iter().map(|c| {
                        let text = match c {
                            DeviceChoice::Auto => "Auto (a hardware GPU, else the CPU)",
                            DeviceChoice::WebGpu => "WebGPU",
                            DeviceChoice::Cpu => "CPU",
                        };
                        view! { <option value=c.name() selected=current_device() == *c>{text}</option> }
                    }).collect_view()}
                </select>
            </label>
            " "
            <label>"Weights "
                <select aria-label="Weights" on:change=move |ev| choose_precision(&event_target_value(&ev))>
                    <option value=Precision::F32.name() selected=current_precision() == Precision::F32>"f32"</option>
                    <option value=Precision::F16.name() selected=current_precision() == Precision::F16>
                        "f16: half the memory, on GPUs with shader-f16"
                    </option>
                </select>
            </label>
            <details class="adapter">
                <summary>"WebGPU adapter"</summary>
                {move || match adapter.get() {
                    None => view! { <p>"Asking the browser…"</p> }.into_any(),
                    Some(Err(e)) => view! { <p>{e}</p> }.into_any(),
                    Some(Ok(a)) => view! {
                        <p>{a.name.clone()}{a.fallback.then_some(" (a software fallback adapter)")}</p>
                        <table class="limits">
                            {a.limits.iter().map(|(k, what, v)| view! {
                                <tr><td><code>{*k}</code></td><td>{*what}</td>
                                <td class="num">{if *v >= 1e5 { progress::bytes(*v as u64) } else { format!("{v}") }}</td></tr>
                            }).collect_view()}
                        </table>
                    }.into_any(),
                }}
            </details>
            <div class="row">
                <label>"Model "
                    <select aria-label="Model" on:change=on_pick>
                        {MODELS.iter().map(|m| {
                            let id = m.id;
                            let text = if m.embedded { m.label.to_string() } else { format!("{} · {} MB", m.label, m.megabytes) };
                            view! { <option value=id selected=move || choice.get() == id>{text}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <button on:click=load_model disabled=move || !can_load()>"Load model"</button>
                <label>"SAE "
                    <select aria-label="SAE" on:change=move |ev| sae_hook.set(event_target_value(&ev))>
                        {move || entry().saes.hooks().into_iter().map(|hook| {
                            view! { <option value=hook selected=move || sae_hook.get() == hook>{hook}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <button on:click=load_sae_click
                    disabled=move || !can_load() || loaded_entry().map(|e| e.id) != Some(entry().id)>"Load SAE"</button>
            </div>
            <details class="sources">
                <summary>"Sources and your own files"</summary>
                <div class="row">
                    <label>"Hub URL " <input type="url" aria-label="Hub URL" prop:value=move || hub.get()
                        on:change=move |ev| hub_url.set(event_target_value(&ev)) /></label>
                    <label>"Revision " <input type="text" class="short" aria-label="Revision" prop:value=move || revision.get()
                        on:change=move |ev| revision.set(event_target_value(&ev)) /></label>
                </div>
                <p class="note">{move || {
                    let e = entry();
                    let id = e.saes.saelens_id(&sae_hook.get()).map(|id| format!(" The chosen SAE's SAELens id: {id}.")).unwrap_or_default();
                    format!("{} from {}, SAEs from {} ({}).{id}", e.label, e.repo, e.saes.repo(), e.saes.label)
                }}</p>
                <div class="row">
                    <label>"SAELens id " <input type="text" aria-label="SAELens id"
                        placeholder="gpt2-small-res-jb/blocks.6.hook_resid_pre" prop:value=move || sae_id.get()
                        on:change=move |ev| sae_id.set(event_target_value(&ev)) /></label>
                    <button on:click=load_id_click
                        disabled=move || !can_load() || lab.model.get().is_none() || sae_id.get().trim().is_empty()>"Load by id"</button>
                </div>
                <p class="note">"Any residual-stream SAE of GPT-2 small or Pythia-70M-deduped in sae-lens's table, named \
                    release/sae_id as SAE.from_pretrained takes it, from the hub URL above; with the native helper, \
                    any in its hub cache (Gemma Scope too: steerlab fetch ID there)."</p>
                <div class=move || if dragging.get() { "drop active" } else { "drop" }
                    on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true) }
                    on:dragleave=move |_| dragging.set(false)
                    on:drop=on_drop>
                    "Drop a model's files (config.json, model.safetensors, tokenizer.json) or an SAE's (cfg.json, \
                     sae_weights.safetensors) here, or "
                    <input type="file" multiple aria-label="Choose files" on:change=on_files />
                </div>
            </details>
            <super::helper::HelperPanel />
            <p class="note" data-testid="loaded">{move || match (lab.model.get(), lab.sae.get()) {
                (None, _) => "No model loaded yet.".to_string(),
                (Some(m), None) => format!("Loaded: {} ({} layers), no SAE.", m.label, m.n_layers),
                (Some(m), Some((s, _))) => format!("Loaded: {} ({} layers) and {}.", m.label, m.n_layers, s),
            }}</p>
            {move || lab.loading.get().map(|_| view! {
                <div class="downloads" data-testid="progress">
                    {move || lab.progress.get().into_iter().map(|f| {
                        let elapsed = (js_sys::Date::now() - f.started_ms) / 1000.0;
                        let text = progress::line(&f.file, f.loaded, f.total, elapsed, f.cached);
                        view! { <Bar text=text fraction=progress::fraction(f.loaded, f.total) /> }
                    }).collect_view()}
                    <button class="small" on:click=move |_| bridge::cancel_all()>"Stop download"</button>
                </div>
            })}
            <p class="note storage">{move || storage.get()}" "
                <button class="small" on:click=move |_| spawn_local(async move {
                    match clear_models().await {
                        Ok(()) => lab.status.set(bridge::Status::Info("Downloaded models and datasets cleared.".into())),
                        Err(e) => lab.status.set(bridge::Status::Error(format!("Could not clear: {e}"))),
                    }
                    refresh_storage();
                })>"Clear downloaded models"</button>
            </p>
        </section>
    }
}
