//! Feature dashboards computed in the engine worker (src/analysis/dashboard.rs), for any loaded SAE: the
//! feature's top-activating background passages with each token shaded by its activation, the histogram of its
//! activations, its logit lens both ways and its nearest features by decoder cosine; and a search for the
//! features most active on a typed text. Every feature id in the lab opens its dashboard here (beside its
//! Neuronpedia link when there is one); dashboards are kept per SAE and background text, so going back is instant.

use super::bridge::{self, Lab, Msg};
use super::widgets::{Plot, feature_link, neuronpedia, stop_button};
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use steerlab::analysis::dashboard::{ActivatingPassage, FeatureDashboard, TextFeatures};
use steerlab::engine::{Reply, Request, Response};

#[derive(Clone, Copy)]
struct State {
    /// The feature typed or last opened.
    feature: RwSignal<String>,
    shown: RwSignal<Option<(String, FeatureDashboard)>>,
    text: RwSignal<String>,
    found: RwSignal<Option<TextFeatures>>,
    /// (SAE label, its hook, WikiText background, feature) → dashboard.
    cache: StoredValue<HashMap<(String, String, bool, usize), FeatureDashboard>>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn state() -> Option<State> {
    STATE.with(|s| *s.borrow())
}

/// Opens `feature`'s dashboard (from a cache of this SAE's, else computed) and scrolls to it.
pub fn open(feature: usize) {
    let Some(s) = state() else { return };
    s.feature.set(feature.to_string());
    show(s, feature);
    if let Some(el) = window().document().and_then(|d| d.get_element_by_id("dashboard")) {
        el.scroll_into_view();
    }
}

fn show(s: State, feature: usize) {
    let lab = bridge::lab();
    let Some((label, hook)) = lab.sae.get_untracked() else {
        return lab.status.set(bridge::Status::Error("Load an SAE first: dashboards show its features.".into()));
    };
    let background = super::remote::background();
    let key = (label, hook.clone(), background.wikitext.get_untracked(), feature);
    if let Some(d) = s.cache.with_value(|c| c.get(&key).cloned()) {
        return s.shown.set(Some((hook, d)));
    }
    if !lab.idle() {
        return lab
            .status
            .set(bridge::Status::Warn("Wait for the running job, or stop it, then open the dashboard.".into()));
    }
    background.with_corpus(move |corpus| {
        let req = Request::Dashboards { features: vec![feature], corpus, passages: 12, k: 10 };
        bridge::run(req, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::Dashboards { hook, mut dashboards } = *r
                && let Some(d) = dashboards.pop()
            {
                s.cache.update_value(|c| {
                    c.insert(key.clone(), d.clone());
                });
                s.shown.set(Some((hook, d)));
            }
        });
    });
}

/// One passage, each token shaded by its activation relative to `scale` (the feature's largest), the strongest
/// outlined; hovering a token gives its activation.
fn passage_view(p: &ActivatingPassage, scale: f32) -> impl IntoView + use<> {
    let tokens = p.tokens.iter().zip(&p.acts).enumerate().map(|(i, (t, &a))| {
        let alpha = if a > 0.0 && scale > 0.0 { (a / scale).clamp(0.08, 1.0) } else { 0.0 };
        let style = format!("background: rgba(255, 140, 0, {alpha:.2})");
        let class = if i == p.at { "tok top" } else { "tok" };
        view! { <span class=class style=style title=format!("{a:.3}")>{t.replace('\n', "⏎")}</span> }
    });
    view! {
        <p class="passage">
            <span class="num">{format!("{:.2}", p.max)}</span>" "
            {(p.start > 0).then_some("…")}{tokens.collect_view()}{p.more.then_some("…")}
        </p>
    }
}

fn dashboard_view(lab: Lab, hook: &str, d: &FeatureDashboard) -> impl IntoView + use<> {
    let h = &d.histogram;
    let share = if h.tokens > 0 { 100.0 * h.fired as f64 / h.tokens as f64 } else { 0.0 };
    let density = format!(
        "Feature #{} at {hook} fires on {} of {} background tokens ({share:.2}%).",
        d.feature, h.fired, h.tokens
    );
    let plot = (!h.edges.is_empty()).then(|| {
        let edges: Vec<f64> = h.edges.iter().map(|&e| e as f64).collect();
        let counts: Vec<f64> = h.counts.iter().map(|&c| c as f64).collect();
        let title = format!("Activations of #{} where it fires", d.feature);
        view! { <Plot svg=steerlab_www::plot::histogram(&title, "activation", &edges, &counts, &[]) name=format!("feature-{}-activations", d.feature) /> }
    });
    let tokens = |ts: &[steerlab::analysis::features::LensToken]| {
        ts.iter().map(|t| view! { <code class="lens" title=format!("p = {:.2e}", t.prob)>{format!("{:?}", t.text)}</code>" " }).collect_view()
    };
    let scale = d.passages.first().map_or(0.0, |p| p.max);
    let link = move |f: usize| neuronpedia(&lab, f);
    view! {
        <div data-testid="dashboard">
            <h4>{feature_link(d.feature, link(d.feature))}" — "{density}</h4>
            <p><strong>"Promotes "</strong>{tokens(&d.promoted)}</p>
            <p><strong>"Suppresses "</strong>{tokens(&d.suppressed)}</p>
            <p><strong>"Nearest features (decoder cosine) "</strong>
                {d.neighbours.iter().map(|n| view! {
                    <span class="neighbour">{feature_link(n.feature, link(n.feature))}{format!(" {:.2}", n.cosine)}</span>" "
                }).collect_view()}
            </p>
            {plot}
            <h4>"Top-activating passages"</h4>
            {if d.passages.is_empty() {
                view! { <p class="note">"It fires on no background passage."</p> }.into_any()
            } else {
                d.passages.iter().map(|p| passage_view(p, scale)).collect_view().into_any()
            }}
        </div>
    }
}

fn search_view(lab: Lab, t: &TextFeatures) -> impl IntoView + use<> {
    let link = move |f: usize| neuronpedia(&lab, f);
    view! {
        <div data-testid="search">
            <p><strong>"Most active on the text "</strong>
                {t.top.iter().map(|f| view! {
                    <span class="neighbour">{feature_link(f.feature, link(f.feature))}
                        {format!(" {:.2} on {:?}", f.act, t.tokens[f.token].text)}</span>" "
                }).collect_view()}
            </p>
            <table class="search">
                <tr><th>"token"</th><th>"its most active features"</th></tr>
                {t.tokens.iter().map(|tok| view! {
                    <tr><td><code>{format!("{:?}", tok.text)}</code></td>
                    <td>{tok.features.iter().map(|f| view! {
                        <span class="neighbour">{feature_link(f.feature, link(f.feature))}{format!(" {:.2}", f.act)}</span>" "
                    }).collect_view()}</td></tr>
                }).collect_view()}
            </table>
        </div>
    }
}

#[component]
pub fn DashboardView() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let s = State {
        feature: RwSignal::new(String::new()),
        shown: RwSignal::new(None),
        text: RwSignal::new(String::new()),
        found: RwSignal::new(None),
        cache: StoredValue::new(HashMap::new()),
    };
    STATE.with(|st| *st.borrow_mut() = Some(s));
    // Another SAE: its features are other features.
    Effect::new(move || {
        let _ = lab.sae.get();
        s.shown.set(None);
        s.found.set(None);
    });
    let ready = move || lab.idle() && lab.sae.get().is_some();
    let show_click = move |_| match s.feature.get_untracked().trim().trim_start_matches('#').parse::<usize>() {
        Ok(f) => show(s, f),
        Err(_) => lab.status.set(bridge::Status::Error("Type a feature number, e.g. 123.".into())),
    };
    let search = move |_| {
        let text = s.text.get_untracked();
        if text.trim().is_empty() {
            return lab.status.set(bridge::Status::Error("Type a text to find the features active on it.".into()));
        }
        bridge::run(Request::SearchFeatures { text, top: 8 }, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::TextFeatures { text, .. } = *r
            {
                s.found.set(Some(text));
            }
        });
    };
    view! {
        <div class="diagnostic" id="dashboard">
            <h3>"Feature dashboard"</h3>
            <p class="explain">"What a feature is, computed here for the loaded SAE (any SAE, also ones Neuronpedia \
                does not have, and offline): the background passages it fires on most, each token shaded by its \
                activation; how often and how strongly it fires; the tokens its decoder direction promotes and \
                suppresses through the unembedding (logit lens); and the features whose decoder directions are \
                closest. Every feature number in the lab opens here; ↗ goes to Neuronpedia when it has the SAE."</p>
            <div class="row">
                <label>"Feature " <input type="text" class="short" aria-label="Dashboard feature" placeholder="123"
                    prop:value=move || s.feature.get() on:input=move |ev| s.feature.set(event_target_value(&ev)) /></label>
                <button on:click=show_click disabled=move || !ready()>"Show dashboard"</button>
                <label>"or a text " <input type="text" aria-label="Text to search" placeholder="The wedding was lovely"
                    prop:value=move || s.text.get() on:input=move |ev| s.text.set(event_target_value(&ev)) /></label>
                <button on:click=search disabled=move || !ready()>"Find features"</button>
                {stop_button("Stop the dashboard", "dashboard")}
            </div>
            {move || s.found.get().map(|t| search_view(lab, &t))}
            {move || s.shown.get().map(|(hook, d)| dashboard_view(lab, &hook, &d))}
        </div>
    }
}
