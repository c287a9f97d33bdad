//! Small pieces the views share: a plot with its export buttons, a progress bar, feature-id links, Stop.

use super::bridge::Lab;
use super::export;
use leptos::prelude::*;
use steerlab_www::catalog;

/// An SVG plot (from `steerlab_www::plot`) with buttons that save it as SVG or PNG under `name`.
#[component]
pub fn Plot(svg: String, name: String) -> impl IntoView {
    let (svg_file, png_file) = (format!("{name}.svg"), format!("{name}.png"));
    let (a, b) = (svg.clone(), svg.clone());
    view! {
        <figure class="plot" data-testid=format!("plot-{name}")>
            <div class="svg" inner_html=svg></div>
            <figcaption>
                <button class="small" on:click=move |_| export::download(&svg_file, "image/svg+xml", a.as_bytes())>"SVG"</button>
                <button class="small" on:click=move |_| export::png(&png_file, &b)>"PNG"</button>
            </figcaption>
        </figure>
    }
}

/// Neuronpedia's page for `feature` of the loaded SAE: it has pages for public SAEs only, the catalogue's loaded
/// in the page, those loaded by SAELens id, and those a helper loaded from the hub cache (named
/// `owner/repo@rev/folder`).
pub fn neuronpedia(lab: &Lab, feature: usize) -> Option<String> {
    let (label, hook) = lab.sae.get_untracked()?;
    // An SAE loaded by its SAELens id (in the tab or on the helper) is labelled by it.
    let name = label.strip_suffix(super::helper::ON_HELPER).unwrap_or(&label);
    if let Ok((_, sae)) = steerlab::sae::releases::resolve(name) {
        return sae.neuronpedia_url(feature);
    }
    match catalog::model(&lab.model.get_untracked()?.id) {
        Some(entry) => entry.saes.neuronpedia(&hook, feature),
        None if lab.remote.get_untracked() => {
            let name = label.strip_suffix(super::helper::ON_HELPER)?;
            catalog::helper_sae_neuronpedia(name, feature)
        }
        None => None,
    }
}

/// A feature id: it opens the feature's local dashboard, with a ↗ link to its Neuronpedia page when there is one.
pub fn feature_link(feature: usize, url: Option<String>) -> AnyView {
    let open = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        super::dashboard::open(feature);
    };
    view! {
        <span class="fid">
            <a href="#dashboard" class="local" title="This feature's dashboard" on:click=open>{format!("#{feature}")}</a>
            {url.map(|u| view! { " "<a href=u target="_blank" rel="noopener" class="np" title="On Neuronpedia">"↗"</a> })}
        </span>
    }
    .into_any()
}

/// A labelled progress bar; no fraction shows an indeterminate bar.
#[component]
pub fn Bar(text: String, fraction: Option<f64>) -> impl IntoView {
    view! {
        <div class="progress">
            {match fraction {
                Some(f) => view! { <progress max="1" value=f></progress> }.into_any(),
                None => view! { <progress></progress> }.into_any(),
            }}
            <span>{text}</span>
        </div>
    }
}

/// Stops what the lab is running, at its next forward pass or token; enabled while something runs. `what` names
/// it for screen readers.
pub fn stop_button(what: &'static str, section: &'static str) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let mine = move || lab.job.get().is_some_and(|j| j.section == section);
    // A clock for the elapsed time and estimate while this panel's job runs.
    let now = RwSignal::new(js_sys::Date::now());
    let tick = leptos::prelude::set_interval_with_handle(
        move || now.set(js_sys::Date::now()),
        std::time::Duration::from_millis(500),
    );
    on_cleanup(move || {
        if let Ok(t) = tick {
            t.clear();
        }
    });
    view! {
        <button on:click=move |_| super::bridge::cancel_all() disabled=move || !mine() aria-label=what>"Stop"</button>
        {move || lab.job.get().filter(|j| j.section == section).map(|j| view! {
            <span class="note running" role="status" data-testid=format!("running-{section}")>{j.describe(now.get())}</span>
        })}
    }
}

/// Whether the loaded model is the embedded one, whose weights are random.
pub fn random_model(lab: &Lab) -> bool {
    lab.model.get().is_some_and(|m| catalog::model(&m.id).is_some_and(|e| e.embedded)) && !lab.remote.get()
}

/// Under a results panel's title while the embedded random model is loaded: its numbers mean nothing.
#[component]
pub fn RandomWeightsNote() -> impl IntoView {
    let lab = expect_context::<Lab>();
    move || {
        random_model(&lab).then(|| {
            view! {
                <p class="note random" data-testid="random-note">
                    "Random weights: these results only show the lab working. Load GPT-2 small or Pythia-70M-deduped \
                     (banner above) for numbers that mean something."
                </p>
            }
        })
    }
}

/// Numbers typed as a list (`0, 2, 4` or `0 2 4`); None when any is not a number or there is none.
pub fn parse_numbers(text: &str) -> Option<Vec<f32>> {
    let parsed: Result<Vec<f32>, _> =
        text.split([',', ' ']).filter(|t| !t.trim().is_empty()).map(|t| t.trim().parse()).collect();
    parsed.ok().filter(|v| !v.is_empty())
}
