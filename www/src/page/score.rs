//! Steering judged by the text it writes (src/steer/score.rs): greedy continuations of a few prompts at each
//! strength, with their share of concept words against their coherence under the unsteered model, for the
//! steering vector, its SAE reconstruction, the best other row of the decompose table and a chosen feature.

use super::bridge::{self, Lab, Msg};
use super::export;
use super::steer::Exp;
use super::widgets::{Plot, stop_button};
use leptos::prelude::*;
use steerlab::engine::{Reply, Request, Response, Steering};
use steerlab::steer::score::StrengthScore;
use steerlab_www::plot::{Series, line_chart};

/// Concept words for each built-in dataset's behaviour (typed data: the learner's own).
fn concept_for(dataset: &str) -> &'static str {
    match dataset {
        "love-hate.jsonl" => "love, loving, loved, lovely, adore, kind, warm, dear, happy, joy",
        "anger-calm.jsonl" => "angry, anger, furious, rage, mad, hate, scream, yell, livid, annoyed",
        "wedding.jsonl" => "wedding, weddings, bride, groom, marriage, married, marry, ceremony, vows, honeymoon",
        "corrigibility-ab.json" => {
            "correct, correction, change, changes, shutdown, accept, allow, modify, goals, oversight"
        }
        _ => "",
    }
}

const PROMPTS: &str = "I think that\nThe best thing about today is\nMy friend told me\nWhen I got home";

/// One steering's scores, as a plot series and table rows.
#[derive(Clone)]
struct Scored {
    label: String,
    scores: Vec<StrengthScore>,
}

#[component]
pub fn ScoreView(exp: Exp) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let features = expect_context::<super::features::FeatureState>();
    let prompts = RwSignal::new(PROMPTS.to_string());
    let concept = RwSignal::new(concept_for(&exp.dataset.get_untracked()).to_string());
    let strengths = RwSignal::new("0, 2, 4, 8".to_string());
    let results = RwSignal::new(Vec::<Scored>::new());
    // A new dataset brings its own concept words.
    Effect::new(move || concept.set(concept_for(&exp.dataset.get()).to_string()));

    let score = move |_| {
        let strengths = match super::widgets::parse_numbers(&strengths.get_untracked()) {
            Some(s) => s,
            None => {
                return lab
                    .status
                    .set(bridge::Status::Error("Strengths: numbers separated by commas, e.g. 0, 2, 4, 8.".into()));
            }
        };
        let Some(v) = exp.vector.get_untracked() else { return };
        // What to compare: the vector, then (with diagnostics) its SAE reconstruction and the best other row, then
        // the chosen feature at the features panel's strength.
        let mut runs = vec![("steering vector".to_string(), v.values.clone())];
        if let Some(d) = exp.decomposition.get_untracked().filter(|d| d.hook == v.hook) {
            if let Some(r) = d.table.iter().find(|r| r.method == "SAE reconstruction") {
                runs.push((r.method.clone(), r.vector.clone()));
            }
            let best = d.table.iter().skip(1).filter(|r| r.method != "SAE reconstruction" && r.edit.is_none());
            if let Some(r) = best
                .filter(|r| r.relative.is_some())
                .max_by(|a, b| a.relative.unwrap_or(f32::MIN).total_cmp(&b.relative.unwrap_or(f32::MIN)))
            {
                runs.push((r.method.clone(), r.vector.clone()));
            }
        }
        let mut steerings: Vec<(String, Steering)> = runs
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .map(|(label, values)| (label, Steering::Vector { hook: v.hook.clone(), values, rows: None, coef: 1.0 }))
            .collect();
        if let Some((f, s)) =
            features.chosen_feature().filter(|_| lab.sae.get_untracked().is_some_and(|(_, h)| h == v.hook))
        {
            steerings.push((format!("feature #{f} × {s:.2}"), Steering::Features { features: vec![(f, s)] }));
        }
        results.set(Vec::new());
        for (label, steering) in steerings {
            let req = Request::SteerScore {
                steering,
                prompts: prompts.get_untracked(),
                concept: concept.get_untracked().replace(',', "\n"),
                strengths: strengths.clone(),
                max_new_tokens: 16,
            };
            bridge::run(req, move |msg| {
                if let Msg::Reply(Reply::Ok(r)) = msg
                    && let Response::SteerScore { scores } = *r
                {
                    results.update(|all| all.push(Scored { label: label.clone(), scores }));
                }
            });
        }
    };

    view! {
        <div class="diagnostic" id="score">
            <h3>"Judged by its text"</h3>
            <p class="explain">"Steering is also judged by what the model writes (Turner et al.; Conmy & Nanda 2024; Arad \
                et al. 2025). Each prompt is continued greedily at each strength (× the vector). Concept: the share of \
                the generated words that are concept words. Coherence: the mean log-probability of each generated \
                token under the unsteered model — it falls as steering pushes the text off what the model would \
                write. With diagnostics run, the SAE reconstruction and the best other decomposition are scored too, \
                and a feature chosen in section 5."</p>
            <div class="row">
                <label>"Concept words " <input type="text" aria-label="Concept words" prop:value=move || concept.get()
                    on:input=move |ev| concept.set(event_target_value(&ev)) /></label>
                <label>"Strengths " <input type="text" class="short" aria-label="Strengths" prop:value=move || strengths.get()
                    on:input=move |ev| strengths.set(event_target_value(&ev)) /></label>
            </div>
            <textarea aria-label="Prompts to score" rows="3" prop:value=move || prompts.get()
                on:input=move |ev| prompts.set(event_target_value(&ev))></textarea>
            <div class="row">
                <button on:click=score disabled=move || !lab.idle() || exp.vector.get().is_none()>"Score generations"</button>
                {stop_button("Stop the text scores", "score")}
            </div>
            {move || {
                let all = results.get();
                (!all.is_empty()).then(|| {
                    let series: Vec<Series> = all.iter().map(|s| Series {
                        label: s.label.clone(),
                        points: s.scores.iter().map(|x| (x.concept as f64, x.coherence as f64)).collect(),
                    }).collect();
                    let svg = line_chart("Concept vs coherence, strength by strength", "share of concept words",
                        "coherence (mean log p)", &series);
                    let json = serde_json::to_string_pretty(&all.iter().map(|s| serde_json::json!({"steering": s.label, "strengths": s.scores})).collect::<Vec<_>>()).unwrap_or_default();
                    view! {
                        <Plot svg=svg name="concept-coherence".into() />
                        <table data-testid="text-scores">
                            <tr><th>"steering"</th><th>"strength"</th><th>"concept words"</th><th>"coherence"</th><th>"first continuation"</th></tr>
                            {all.iter().flat_map(|s| s.scores.iter().map(move |x| (s.label.clone(), x.clone()))).map(|(label, x)| view! {
                                <tr><td>{label}</td><td class="num">{x.strength}</td><td class="num">{format!("{:.0}%", 100.0 * x.concept)}</td>
                                <td class="num">{format!("{:.2}", x.coherence)}</td>
                                <td>{x.generations.first().map(|g| g.text.clone()).unwrap_or_default()}</td></tr>
                            }).collect_view()}
                        </table>
                        <button class="small" on:click=move |_| export::download("text-scores.json", "application/json", json.as_bytes())>"JSON"</button>
                    }
                })
            }}
        </div>
    }
}
