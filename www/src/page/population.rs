//! Arad et al. 2025 across a population of features (src/analysis/population.rs): a sample of the loaded SAE's
//! features on the input × output plane, how often both scores are high, and how the top features by each score
//! steer text. Each SAE (layer) run keeps its result, so loading another SAE and running again compares layers.

use super::bridge::{self, Lab, Msg};
use super::export;
use super::widgets::{Plot, feature_link, neuronpedia, stop_button};
use leptos::prelude::*;
use steerlab::analysis::population::Population;
use steerlab::engine::{Reply, Request, Response};
use steerlab_www::plot::{Category, Series, grouped_bars, scatter};
use steerlab_www::reading::population_reading;

/// The plane with the whole sample, then each steered group on top.
fn plane(p: &Population) -> String {
    let point = |f: usize| {
        p.points.iter().find(|x| x.feature == f).and_then(|x| Some((x.input_score? as f64, x.output_score as f64)))
    };
    let mut series = vec![Series {
        label: format!("{} features", p.points.len()),
        points: p.points.iter().filter_map(|x| Some((x.input_score? as f64, x.output_score as f64))).collect(),
    }];
    for g in &p.groups {
        series.push(Series {
            label: if g.name == "random" { g.name.clone() } else { format!("top by {}", g.name) },
            points: g.features.iter().filter_map(|f| point(f.feature)).collect(),
        });
    }
    let c = &p.cooccurrence;
    scatter(
        &format!("Input vs output score at {}", p.hook),
        "input score",
        "output score",
        &series,
        Some(c.input_q75 as f64),
        Some(c.output_q75 as f64),
    )
}

/// Mean steering success per group, one bar group per layer run.
fn success_bars(all: &[Population]) -> String {
    let groups: Vec<&str> = vec!["by output score", "by input score", "random"];
    let cats: Vec<Category> = all
        .iter()
        .filter(|p| !p.groups.is_empty())
        .map(|p| Category {
            label: p.hook.replace("blocks.", "").replace(".hook_", " "),
            groups: p.groups.iter().map(|g| vec![g.mean_success as f64]).collect(),
            marker: None,
        })
        .collect();
    grouped_bars("Steering success of the top features", "layer", "mean success", &groups, &cats)
}

#[component]
pub fn PopulationView() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let sample = RwSignal::new(256usize);
    let top = RwSignal::new(4usize);
    let strengths = RwSignal::new("0.25, 0.5, 1".to_string());
    let results = RwSignal::new(Vec::<Population>::new());
    let ready = move || lab.idle() && lab.sae.get().is_some();
    let link = move |feature| neuronpedia(&lab, feature);

    let run = move |_| {
        let strengths = match super::widgets::parse_numbers(&strengths.get_untracked()) {
            Some(s) => s,
            None => {
                return lab.status.set(bridge::Status::Error(
                    "Strengths: multiples of the median activation norm, e.g. 0.25, 0.5, 1.".into(),
                ));
            }
        };
        let background = super::remote::background();
        background.with_corpus(move |corpus| {
            let req = Request::Population {
                sample: sample.get_untracked(),
                seed: 0,
                top: top.get_untracked(),
                strengths,
                prompts: None,
                corpus,
                amplification: 10.0,
                lens_k: 20,
                max_new_tokens: 12,
            };
            bridge::run(req, move |msg| {
                if let Msg::Reply(Reply::Ok(r)) = msg
                    && let Response::Population { population } = *r
                {
                    // One result per hook: a rerun at the same layer replaces it.
                    results.update(|all| {
                        all.retain(|p| p.hook != population.hook);
                        all.push(population);
                    });
                }
            });
        });
    };

    view! {
        <div class="diagnostic" id="population">
            <h3>"Many features at once"</h3>
            <p class="explain">"Arad et al. (2025) scored thousands of features and found that features which fire on \
                their own logit-lens tokens (high input score) are rarely the ones that push the model to say them \
                (high output score) — and that picking features by output score steers 2–3× better. Here: a random \
                sample of the loaded SAE's features on the input × output plane (dashed: each score's 75th \
                percentile), and the text written by the top features by each score and by random ones. Each \
                feature's concept words are the words of its own logit-lens tokens; success is the harmonic mean of \
                how much more of them the steered text has and how fluent it stays (exp of the change in mean \
                log-probability, at most 1) — our stand-in for the paper's LLM judge, at the best of the strengths \
                (multiples of the median activation norm). Load another SAE and run again to compare layers."</p>
            <div class="row">
                <label>"Features " <input type="number" class="short" min="1" aria-label="Sample size"
                    prop:value=move || sample.get().to_string()
                    on:input=move |ev| if let Ok(n) = event_target_value(&ev).parse() { sample.set(n) } /></label>
                <label>"top per group " <input type="number" class="short" min="0" aria-label="Top per group"
                    prop:value=move || top.get().to_string()
                    on:input=move |ev| if let Ok(n) = event_target_value(&ev).parse() { top.set(n) } /></label>
                <label>"strengths × median norm " <input type="text" class="short" aria-label="Multiples of the median norm"
                    prop:value=move || strengths.get() on:input=move |ev| strengths.set(event_target_value(&ev)) /></label>
                <button on:click=run disabled=move || !ready()>"Score a population"</button>
                {stop_button("Stop the population", "population")}
            </div>
            {move || {
                let all = results.get();
                let latest = all.last().cloned()?;
                let json = serde_json::to_string_pretty(&all).unwrap_or_default();
                let c = latest.cooccurrence.clone();
                let steered = all.iter().any(|p| !p.groups.is_empty());
                Some(view! {
                    <p class="explain reading" data-testid="population-reading">{population_reading(&latest)}</p>
                    <Plot svg=plane(&latest) name="population".into() />
                    <p class="note">{format!(
                        "{} of {} features scored; {} fired on a background passage. Rank correlation of input and \
                         output score: {}. High output {:.0}%, high input {:.0}%, both {:.1}% (independence: {:.1}%).",
                        latest.points.len(), latest.d_sae, c.scored,
                        c.spearman.map_or("—".into(), |r| format!("{r:+.2}")),
                        100.0 * c.high_output, 100.0 * c.high_input, 100.0 * c.high_both, 100.0 * c.expected_both)}</p>
                    {steered.then(|| view! { <Plot svg=success_bars(&all) name="population-success".into() /> })}
                    <table data-testid="population-groups">
                        <tr><th>"picked by"</th><th>"feature"</th><th>"output"</th><th>"input"</th><th>"success"</th>
                            <th>"concept words"</th><th>"its best text"</th></tr>
                        {latest.groups.iter().flat_map(|g| g.features.iter().map(move |f| (g.name.clone(), f.clone()))).map(|(name, f)| {
                            let best = f.strengths.iter().max_by(|a, b| a.success.total_cmp(&b.success)).cloned();
                            view! { <tr>
                                <td>{name}</td><td>{feature_link(f.feature, link(f.feature))}</td>
                                <td class="num">{format!("{:.4}", f.output_score)}</td>
                                <td class="num">{f.input_score.map_or("—".into(), |v| format!("{v:.2}"))}</td>
                                <td class="num">{format!("{:.2}", f.success)}</td>
                                <td>{f.concept.iter().take(5).cloned().collect::<Vec<_>>().join(", ")}</td>
                                <td>{best.map(|b| format!("×{:.1}: {}", b.strength, b.example)).unwrap_or_default()}</td>
                            </tr> }
                        }).collect_view()}
                    </table>
                    <button class="small" aria-label="Population as JSON" on:click=move |_| export::download("population.json", "application/json", json.as_bytes())>"JSON"</button>
                })
            }}
        </div>
    }
}
