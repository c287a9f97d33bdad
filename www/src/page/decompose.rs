//! Why the SAE loses the steering vector (Mayne et al. 2024), one plot or table per diagnostic: activation norms
//! with the vector marked, encode(SV) against encode(0), default components, signed projections and the
//! anti-aligned partners that fire instead, and the steerability of each decomposition.

use super::bridge::{self, Lab, Msg, Status};
use super::export;
use super::steer::{Exp, MULTIPLIERS};
use super::widgets::{Plot, feature_link, neuronpedia, stop_button};
use leptos::prelude::*;
use steerlab::analysis::Decomposition;
use steerlab::engine::{DatasetRef, Part, Reply, Request, Response};
use steerlab::sae::edit::{EditMode, FeatureEdit, parse_features};
use steerlab_www::plot::{Category, grouped_bars, histogram, strip_plot};
use steerlab_www::reading;

fn f(v: Option<f32>, digits: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.digits$}"))
}

/// Every diagnostic's view, each built in its own function and type-erased, which keeps each view's types (and a
/// dev build's stack frames) small.
fn views(
    d: Decomposition,
    link: impl Fn(usize) -> Option<String> + Copy + 'static,
    eval_note: Option<String>,
) -> impl IntoView {
    let json = serde_json::to_string_pretty(&d).expect("decompositions serialise");
    view! {
        {norms_view(&d)}
        {bias_view(&d)}
        {defaults_view(&d, link)}
        {projections_view(&d, link)}
        {table_view(&d, eval_note, json)}
    }
}

#[inline(never)]
fn norms_view(d: &Decomposition) -> AnyView {
    let n = &d.norms;
    let edges: Vec<f64> = n.edges.iter().map(|&e| e as f64).collect();
    let counts: Vec<f64> = n.counts.iter().map(|&c| c as f64).collect();
    let norms = histogram(
        &format!("Norms of {} activations at {}", n.tokens, d.hook),
        "‖activation‖",
        &edges,
        &counts,
        &[("steering vector", n.vector_norm as f64), ("median", n.median as f64)],
    );
    view! {
        <div class="diagnostic" id="norms">
            <h3>"Norms: the vector is short"</h3>
            <p class="explain reading" data-testid="norms-reading">{reading::norms_reading(n)}</p>
            <Plot svg=norms name="norms".into() />
        </div>
    }
    .into_any()
}

#[inline(never)]
fn bias_view(d: &Decomposition) -> AnyView {
    let b = &d.bias;
    let unit = b.unit_scale();
    let bias_cats: Vec<Category> = b
        .features
        .iter()
        .take(12)
        .map(|fa| Category {
            label: format!("#{}", fa.feature),
            groups: vec![vec![fa.zero as f64], vec![fa.scaled.get(unit).copied().unwrap_or(f32::NAN) as f64]],
            marker: None,
        })
        .collect();
    let bias_title = format!("encode(0) vs encode({}·SV): top features", b.scales.get(unit).copied().unwrap_or(1.0));
    let bias_bars = grouped_bars(&bias_title, "feature", "activation", &["encode(0)", "encode(SV)"], &bias_cats);
    // One bar per scale (the vector as it is, and scaled to a typical activation's norm): two scales are two
    // measurements, not a curve.
    let scale_cats: Vec<Category> = b
        .scales
        .iter()
        .zip(&b.cosine_with_zero)
        .map(|(&s, &c)| Category {
            label: if (s - 1.0).abs() < 1e-6 { "the vector as it is".into() } else { format!("{s:.1} × the vector") },
            groups: vec![vec![c as f64]],
            marker: None,
        })
        .collect();
    let cos = grouped_bars(
        "How much encode(s·SV) is encode(0)",
        "scale s of the vector",
        "cosine with encode(0)",
        &["cos(encode(s·SV), encode(0))"],
        &scale_cats,
    );
    view! {
        <div class="diagnostic" id="bias">
            <h3>"The encoder bias decides"</h3>
            <p class="explain reading" data-testid="bias-reading">{reading::bias_reading(b)}</p>
            <Plot svg=bias_bars name="bias".into() />
            <Plot svg=cos name="bias-scales".into() />
            <BehavioursVsZero />
        </div>
    }
    .into_any()
}

#[inline(never)]
fn defaults_view(d: &Decomposition, link: impl Fn(usize) -> Option<String> + Copy + 'static) -> AnyView {
    let defaults_text = reading::defaults_reading(&d.defaults).unwrap_or_else(|| {
        "Real activations (dots) project strongly onto these encoder directions whatever the text; CAA's \
         difference cancels that."
            .into()
    });
    let strip_cats: Vec<Category> = d
        .defaults
        .iter()
        .map(|c| {
            let vals = |s: &Option<steerlab::analysis::defaults::Strip>| {
                s.as_ref().map(|s| s.values.iter().map(|&v| v as f64).collect()).unwrap_or_default()
            };
            Category {
                label: format!("#{}", c.feature),
                groups: vec![c.corpus.values.iter().map(|&v| v as f64).collect(), vals(&c.positive), vals(&c.negative)],
                marker: Some(c.vector as f64),
            }
        })
        .collect();
    let strips = strip_plot(
        "Default components: projection onto each feature's encoder",
        "feature",
        "x · W_enc[:, f]",
        &["corpus", "positive", "negative"],
        "steering vector",
        &strip_cats,
    );

    view! {
        <div class="diagnostic" id="defaults">
            <h3>"Default components"</h3>
            <p class="explain">"Real activations (dots: corpus, positive and negative prompts) project onto these \
                encoder directions whatever the text; CAA's difference cancels what they share."</p>
            <p class="explain reading" data-testid="defaults-reading">{defaults_text}</p>
            <Plot svg=strips name="defaults".into() />
            <p class="explain">"Each feature's encoder bias, and what it outputs for the vector as it is and rescaled to \
                a typical activation's norm: with the default components gone, the bias decides whether it fires."</p>
            <table data-testid="defaults-table">
                <tr><th>"feature"</th><th>"encoder bias"</th><th>"SV's projection"</th><th>"activation on SV"</th>
                    <th>{format!("activation on {:.1} × SV", d.defaults.first().map_or(1.0, |c| c.scale))}</th></tr>
                {d.defaults.iter().map(|c| view! {
                    <tr><td>{feature_link(c.feature, link(c.feature))}</td><td class="num">{format!("{:.3}", c.bias)}</td>
                    <td class="num">{format!("{:.3}", c.vector)}</td><td class="num">{format!("{:.3}", c.activation)}</td>
                    <td class="num">{format!("{:.3}", c.rescaled_activation)}</td></tr>
                }).collect_view()}
            </table>
        </div>
    }
    .into_any()
}

#[inline(never)]
fn projections_view(d: &Decomposition, link: impl Fn(usize) -> Option<String> + Copy + 'static) -> AnyView {
    let p = &d.projections;
    let proj_cats: Vec<Category> = p
        .top
        .iter()
        .map(|pr| Category {
            label: format!("#{}", pr.feature),
            groups: vec![vec![pr.decoder as f64], vec![pr.activation as f64]],
            marker: None,
        })
        .collect();
    let proj = grouped_bars(
        "Signed projections: what ReLU keeps",
        "feature (largest |projection|)",
        "value",
        &["SV along decoder direction", "activation in encode(SV)"],
        &proj_cats,
    );
    let dropped: Vec<usize> = p.top.iter().filter(|x| x.dropped).map(|x| x.feature).collect();
    view! {
        <div class="diagnostic" id="projections">
            <h3>"Signed projections and anti-aligned partners"</h3>
            <p class="explain" data-testid="negative-share">{format!("{:.0}% of the vector's squared projection onto decoder \
                directions is negative (a random direction: 50% on average, between {:.0}% and {:.0}% for 95% of them). \
                ReLU cannot express a negative coefficient: {} of these features are dropped, and features whose \
                decoder points the opposite way fire instead.", 100.0 * p.negative_share, 100.0 * p.negative_share_null[0],
                100.0 * p.negative_share_null[1], dropped.len())}</p>
            <Plot svg=proj name="projections".into() />
            <table data-testid="partners">
                <tr><th>"feature"</th><th>"SV along it"</th><th>"partner"</th><th>"cosine"</th><th>"partner fires at"</th>
                    <th>"on positive prompts (feature / partner)"</th><th>"on negative prompts (feature / partner)"</th></tr>
                {p.partners.iter().map(|x| view! {
                    <tr><td>{feature_link(x.feature, link(x.feature))}</td><td class="num">{format!("{:.3}", x.decoder)}</td>
                    <td>{feature_link(x.partner, link(x.partner))}</td><td class="num">{format!("{:.3}", x.cosine)}</td>
                    <td class="num">{if x.fires { format!("{:.3}", x.partner_activation) } else { "does not fire".into() }}</td>
                    <td class="num">{x.on_positive.map_or("—".into(), |[f, g]| format!("{f:.2} / {g:.2}"))}</td>
                    <td class="num">{x.on_negative.map_or("—".into(), |[f, g]| format!("{f:.2} / {g:.2}"))}</td></tr>
                }).collect_view()}
            </table>
        </div>
    }
    .into_any()
}

#[inline(never)]
fn table_view(d: &Decomposition, eval_note: Option<String>, json: String) -> AnyView {
    let table_text = reading::table_reading(&d.table);
    view! {
        <div class="diagnostic" id="table">
            <h3>"Where the steering goes"</h3>
            <p class="explain">"Steerability of the vector, its SAE reconstruction and better decompositions \
                (bias-corrected encoding; gradient pursuit on the decoder, non-negative and signed), each measured \
                as the vector is in section 3."</p>
            {eval_note.map(|t| view! { <p class="note" data-testid="table-data">{t}</p> })}
            {table_text.map(|t| view! { <p class="explain reading" data-testid="table-reading">{t}</p> })}
            <table data-testid="table">
                <tr><th>"method"</th><th>"features"</th><th>"norm"</th><th>"cos with SV"</th><th>"steerability"</th><th>"share of the vector's steerability"</th></tr>
                {d.table.iter().map(|r| view! {
                    <tr><td>{r.method.clone()}</td><td class="num">{r.features.map_or("—".into(), |n| n.to_string())}</td>
                    <td class="num">{format!("{:.3}", r.norm)}</td><td class="num">{format!("{:.3}", r.cosine)}</td>
                    <td class="num">{f(r.steerability, 3)}</td><td class="num">{f(r.relative, 2)}</td></tr>
                }).collect_view()}
            </table>
            <button class="small" on:click=move |_| export::download("decomposition.json", "application/json", json.as_bytes())>"JSON"</button>
        </div>
    }
    .into_any()
}

/// Every built-in behaviour's CAA vector at the SAE's hook against encode(0), in one table (Mayne et al.'s Table 1):
/// is the bias in charge for all of them, or only for this one?
#[component]
fn BehavioursVsZero() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let rows = RwSignal::new(None::<Vec<steerlab::analysis::bias::VectorVsZero>>);
    let compare = move |_| {
        let datasets = super::steer::DATASETS
            .iter()
            .map(|(file, _)| DatasetRef::BuiltIn { file: file.to_string(), part: Some(Part::Train) })
            .collect();
        bridge::run(Request::VectorsVsZero { datasets, top: 10 }, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::VectorsVsZero { rows: got } = *r
            {
                rows.set(Some(got));
            }
        });
    };
    view! {
        <div class="row">
            <button class="small" on:click=compare disabled=move || !lab.idle()>"Compare every built-in behaviour"</button>
        </div>
        {move || rows.get().map(|rows| view! {
            <table data-testid="vectors-vs-zero">
                <tr><th>"behaviour (CAA vector here)"</th><th>"norm"</th><th>"cos(encode(SV), encode(0))"</th>
                    <th>"top-10 features shared with encode(0)"</th></tr>
                {rows.into_iter().map(|r| view! {
                    <tr><td>{r.name}</td><td class="num">{format!("{:.3}", r.norm)}</td>
                    <td class="num">{format!("{:.3}", r.cosine_with_zero)}</td>
                    <td class="num">{format!("{:.0}%", 100.0 * r.top_k_overlap)}</td></tr>
                }).collect_view()}
            </table>
        })}
    }
}

/// Runs every diagnostic on the current vector with the loaded SAE.
pub fn run(exp: Exp) {
    let Some(v) = exp.vector.get_untracked() else { return };
    let mut edits = Vec::new();
    for (text, mode) in [(exp.keep, EditMode::Keep), (exp.remove, EditMode::Remove)] {
        match parse_features(&text.get_untracked()) {
            Ok(features) if features.is_empty() => {}
            Ok(features) => edits.push(FeatureEdit { features, mode }),
            Err(e) => return bridge::lab().status.set(Status::Error(e.to_string())),
        }
    }
    exp.decomposition.set(None);
    let background = super::remote::background();
    background.with_corpus(move |corpus| {
        let req = Request::Decompose {
            vector: v.values,
            eval: Some(v.eval),
            pairs: Some(v.train),
            corpus,
            multipliers: MULTIPLIERS.to_vec(),
            ks: vec![1, 4, 16, 64],
            top: 10,
            edits,
        };
        bridge::run(req, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::Decomposition { decomposition } = *r
            {
                exp.decomposition.set(Some(decomposition));
            }
        });
    });
}

#[component]
pub fn DecomposeView(exp: Exp) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let result = exp.decomposition;
    let sae_hook = move || lab.sae.get().map(|(_, h)| h);
    let vector_fits = move || matches!((exp.vector.get(), sae_hook()), (Some(v), Some(h)) if v.hook == h);
    let link = move |feature| neuronpedia(&lab, feature);
    view! {
        <section class="panel" aria-label="Decompose" id="decompose">
            <h2>"4. Decompose it with the SAE"</h2>
            <super::widgets::RandomWeightsNote />
            <p class="note">{move || match (exp.vector.get(), sae_hook()) {
                (_, None) => "Load an SAE (above) to decompose the vector.".to_string(),
                (None, Some(h)) => format!("Compute a vector at {h} (the SAE's hook) first."),
                (Some(v), Some(h)) if v.hook != h => format!("The vector is at {}, the SAE reads {h}: compute it at the SAE's layer.", v.hook),
                (Some(_), Some(h)) => format!("Ready to decompose the vector with the SAE at {h}."),
            }}</p>
            <div class="row">
                <button on:click=move |_| if let Some(h) = sae_hook() { super::steer::compute_vector(exp, Some(h), || {}) }
                    disabled=move || !lab.idle() || sae_hook().is_none() || vector_fits()>"Compute the vector at the SAE's hook"</button>
                <button on:click=move |_| run(exp) disabled=move || !lab.idle() || !vector_fits()>"Run the diagnostics"</button>
                {stop_button("Stop the diagnostics", "decompose")}
            </div>
            <super::remote::BackgroundChoice />
            <p class="note">"Feature editing (Conmy & Nanda 2024): the table can also show the vector restricted to \
                chosen features (its least-squares fit by their decoder directions) or with them taken out, each \
                measured like the other rows."</p>
            <div class="row">
                <label>"Keep only features " <input type="text" class="short" aria-label="Keep only features"
                    placeholder="12, 345" prop:value=move || exp.keep.get()
                    on:input=move |ev| exp.keep.set(event_target_value(&ev)) /></label>
                <label>"Remove features " <input type="text" class="short" aria-label="Remove features"
                    placeholder="12, 345" prop:value=move || exp.remove.get()
                    on:input=move |ev| exp.remove.set(event_target_value(&ev)) /></label>
            </div>
            {move || result.get().map(|d| {
                let eval_note = exp.vector.get_untracked().map(|v| format!("Measured on {}.", super::steer::dataset_label(&v.eval)));
                views(d, link, eval_note)
            })}
        </section>
    }
}
