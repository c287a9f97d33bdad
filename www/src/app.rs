//! The page's start and its top-level view: the experiment in the link, the model panel, the steering and
//! decomposition views (src/page/: one file per view).

use crate::page;
use crate::page::bridge::{self, Status};
use crate::page::decompose::DecomposeView;
use crate::page::models::ModelPanel;
use crate::page::steer::{Exp, SteerView, compute_vector, generate};
use leptos::prelude::*;
use steerlab::experiment::Experiment;
use steerlab_www::catalog;
use wasm_bindgen::JsCast;

pub fn start() {
    console_error_panic_hook::set_once();
    // The service worker keeps the app shell for offline use (static/sw.js); without one the lab still runs.
    let registering = window().navigator().service_worker().register("./sw.js");
    wasm_bindgen_futures::spawn_local(async move {
        let _ = wasm_bindgen_futures::JsFuture::from(registering).await;
    });
    leptos::mount::mount_to_body(App);
}

/// The experiment in the URL fragment, if there is one; a bad link says why and the defaults stay.
fn from_link() -> (Experiment, bool, Option<String>) {
    let hash = window().location().hash().unwrap_or_default();
    match hash.trim_start_matches('#') {
        "" => (Experiment::default(), false, None),
        h => match Experiment::from_fragment(h) {
            Ok(e) => (e, true, None),
            Err(e) => (Experiment::default(), false, Some(format!("The link could not be opened: {e}."))),
        },
    }
}

#[component]
fn App() -> impl IntoView {
    let lab = match bridge::start() {
        Ok(l) => l,
        Err(e) => return view! { <main><h1>"steerlab"</h1><p class="status error">{e}</p></main> }.into_any(),
    };
    provide_context(lab);
    provide_context(page::models::HubUrl::new());
    provide_context(page::features::FeatureState::new());
    provide_context(page::actadd::ActAddState::new());
    let background = page::remote::Background::start();
    let (start, linked, link_error) = from_link();
    background.wikitext.set(start.wikitext);
    let link_note = RwSignal::new(link_error);
    let entry = catalog::model(&start.model);
    if entry.is_none() {
        link_note.set(Some(if start.model == "local" || start.model == "helper" {
            "This link was made with a model of the sharer's own (dropped files or their native helper), which a link \
             cannot carry: the default model is loaded; load the same model to rerun it."
                .to_string()
        } else {
            format!("The link names a model this lab does not know (\"{}\"): the default is loaded.", start.model)
        }));
    }
    let entry = entry.unwrap_or(&catalog::EMBEDDED);
    let start_layer = start.hook.split('.').nth(1).and_then(|l| l.parse::<usize>().ok());
    let exp = Exp {
        prompt: RwSignal::new(start.prompt.clone()),
        dataset: RwSignal::new(page::steer::DATASETS[0].0.to_string()),
        typed: RwSignal::new(String::new()),
        layer: RwSignal::new(start_layer.unwrap_or(0)),
        multiplier: RwSignal::new(start.multiplier),
        vector: RwSignal::new(None),
        plain: RwSignal::new(String::new()),
        steered: RwSignal::new(String::new()),
        curve: RwSignal::new(None),
        decomposition: RwSignal::new(None),
        layers: RwSignal::new(None),
        keep: RwSignal::new(String::new()),
        remove: RwSignal::new(String::new()),
        remote: RwSignal::new(None),
    };
    exp.set_dataset(&start.dataset);

    // A new model: keep the layer when it exists there, else take the middle one. A link recomputes its
    // experiment once its model (and SAE) are in.
    let recompute = StoredValue::new(linked);
    let start_hook = start.hook.clone();
    let (restore_sweep, restore_layers, restore_diagnostics) = (start.sweep, start.layer_sweep, start.diagnostics);
    let restore_features = start.features.clone();
    let wants_sae = start.sae.is_some();
    let features = expect_context::<page::features::FeatureState>();
    Effect::new(move || {
        let Some(m) = lab.model.get() else { return };
        if exp.layer.get_untracked() >= m.n_layers || (start_layer.is_none() && !recompute.get_value()) {
            exp.layer.set(m.n_layers / 2);
        }
        // Everything the link names is recomputed once its model (and SAE, if it names one) is in.
        if lab.loading.get().is_none() && recompute.get_value() && (!wants_sae || lab.sae.get().is_some()) {
            recompute.set_value(false);
            let restore_features = restore_features.clone();
            compute_vector(exp, Some(start_hook.clone()), move || {
                generate(exp);
                if restore_sweep {
                    page::steer::sweep_multipliers(exp);
                }
                if restore_layers && let Some(m) = lab.model.get_untracked() {
                    page::steer::sweep_layers(exp, m.n_layers);
                }
                let at_sae = lab.sae.get_untracked().map(|(_, h)| h) == exp.vector.get_untracked().map(|v| v.hook);
                if restore_diagnostics && at_sae {
                    page::decompose::run(exp);
                }
                if let Some(token) = restore_features.filter(|_| lab.sae.get_untracked().is_some()) {
                    features.score_token(lab, token);
                }
            });
        }
    });

    let share_link = RwSignal::new(None::<String>);
    let expect_features = expect_context::<page::features::FeatureState>();
    let copied = RwSignal::new(false);
    let share = move |_| {
        let model = lab.model.get_untracked();
        // The revision only when it is not the catalogue's pin. The hub URL stays a reader's own setting (a
        // mirror on one machine means nothing on another), so links always name hub repositories.
        let revision = model.as_ref().and_then(|m| {
            let pinned = catalog::model(&m.id).map(|e| e.revision);
            m.revision.clone().filter(|r| Some(r.as_str()) != pinned)
        });
        let e = Experiment {
            model: model.as_ref().map_or("embedded".into(), |m| m.id.clone()),
            revision,
            // An SAE loaded by its SAELens id is kept as that id, a catalogue one as its hook.
            sae: lab
                .sae
                .get_untracked()
                .map(|(label, hook)| if steerlab::sae::releases::resolve(&label).is_ok() { label } else { hook }),
            dataset: exp.link_dataset(),
            hook: exp.vector.get_untracked().map_or_else(|| exp.hook(), |v| v.hook),
            multiplier: exp.multiplier.get_untracked(),
            prompt: exp.prompt.get_untracked(),
            sweep: exp.curve.with_untracked(|c| c.is_some()),
            layer_sweep: exp.layers.with_untracked(|l| l.is_some()),
            diagnostics: exp.decomposition.with_untracked(|d| d.is_some()),
            features: expect_features.scored_token(),
            wikitext: page::remote::background().wikitext.get_untracked(),
            ..Experiment::default()
        };
        let _ = window().location().set_hash(&e.to_fragment());
        // A new link replaces whatever was said before it (an old error above it would read as the link's).
        link_note.set(None);
        lab.status.set(Status::Info("A link to this experiment is ready below: copy it to share.".into()));
        share_link.set(Some(window().location().href().unwrap_or_default()));
        copied.set(false);
    };
    let copy = move |_| {
        let Some(link) = share_link.get_untracked() else { return };
        // navigator.clipboard through reflection (web-sys's Clipboard API is unstable).
        let clipboard = js_sys::Reflect::get(&window().navigator(), &"clipboard".into()).ok();
        let write = clipboard.as_ref().and_then(|c| js_sys::Reflect::get(c, &"writeText".into()).ok());
        match (clipboard, write.and_then(|w| w.dyn_into::<js_sys::Function>().ok())) {
            (Some(c), Some(w)) if w.call1(&c, &link.into()).is_ok() => copied.set(true),
            _ => lab.status.set(Status::Warn("This browser would not copy: select the link and copy it.".into())),
        }
    };

    let large = RwSignal::new(false);
    view! {
        <main class=move || if large.get() { "large" } else { "" }>
            <header>
                <div>
                    <h1>"steerlab"</h1>
                    <p class="tagline">"Steering vectors and sparse autoencoders, on your own GPU."</p>
                </div>
                <button on:click=share>"Share"</button>
            </header>
            {move || {
                let (class, text) = match lab.status.get() {
                    Status::Info(t) => ("status", t),
                    Status::Warn(t) => ("status warn", t),
                    Status::Error(t) => ("status error", t),
                };
                view! { <p class=class role="status">{text}</p> }
            }}
            {move || link_note.get().map(|t| view! { <p class="note link" data-testid="link">{t}</p> })}
            {move || share_link.get().map(|l| view! {
                <p class="note link row" data-testid="share-link">
                    <label>"Link to this experiment "
                        <input type="text" readonly aria-label="Share link" class="share" prop:value=l /></label>
                    <button class="small" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy link" }}</button>
                </p>
            })}
            <page::models::RealModelBanner />
            // Wide screens: the section links and the lesson in a sidebar beside the sections; narrow ones: the
            // links in a row and the lesson card pinned above the sections (style.css).
            <div class="layout">
                <aside class="side">
                    <page::lessons::SectionLinks />
                    <page::lessons::Lessons exp=exp large=large />
                </aside>
                <div class="sections">
                    <ModelPanel start=entry start_revision=start.revision.clone() start_sae=start.sae.clone() />
                    <SteerView exp=exp />
                    <DecomposeView exp=exp />
                    <page::features::FeaturesView />
                </div>
            </div>
        </main>
    }
    .into_any()
}
