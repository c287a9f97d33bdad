//! Steering with SAE features: which features promote a token (logit lens), how well each steers by output
//! score and how well it is described by its inputs (input score, Arad et al. 2025), the side effects predicted
//! and measured for each (after Duan 2026), and generation steered by a chosen feature.

use super::bridge::{self, Lab, Msg};
use super::export;
use super::steer::side_by_side;
use super::widgets::{feature_link, neuronpedia, stop_button};
use leptos::prelude::*;
use steerlab::analysis::features::FeatureScore;
use steerlab::analysis::side_effects::SideEffects;
use steerlab::engine::{Reply, Request, Response, Steering};
use steerlab::sae::edit::{parse_feature_strengths, parse_features};

fn opt(v: Option<f32>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}"))
}

/// The features panel's state, shared with the lesson (whose last step scores features and steers with the best).
#[derive(Clone, Copy)]
pub struct FeatureState {
    token: RwSignal<String>,
    ids: RwSignal<String>,
    result: RwSignal<Option<(Vec<FeatureScore>, SideEffects)>>,
    chosen: RwSignal<Option<usize>>,
    strength: RwSignal<f32>,
    /// Several features to steer with at once, typed `12:8, 345:-4`; when set, they steer instead of `chosen`.
    several: RwSignal<String>,
    prompt: RwSignal<String>,
    plain: RwSignal<String>,
    steered: RwSignal<String>,
}

impl FeatureState {
    pub fn new() -> Self {
        Self {
            token: RwSignal::new(" love".to_string()),
            ids: RwSignal::new(String::new()),
            result: RwSignal::new(None),
            chosen: RwSignal::new(None),
            strength: RwSignal::new(8.0),
            several: RwSignal::new(String::new()),
            prompt: RwSignal::new("I think that".to_string()),
            plain: RwSignal::new(String::new()),
            steered: RwSignal::new(String::new()),
        }
    }

    /// The token whose promoting features were last scored, for a link to score again.
    pub fn scored_token(self) -> Option<String> {
        let scored = self.result.with_untracked(|r| r.is_some());
        (scored && self.ids.get_untracked().trim().is_empty()).then(|| self.token.get_untracked())
    }

    /// Scores the features promoting `token` (as a link restores them).
    pub fn score_token(self, lab: Lab, token: String) {
        self.ids.set(String::new());
        self.token.set(token);
        self.score(lab, || {});
    }

    /// Scores the typed features (or those promoting the token), then calls `then` once the scores are in.
    pub fn score(self, lab: Lab, then: impl FnOnce() + 'static) {
        let FeatureState { token, ids, result, chosen, strength, .. } = self;
        let typed = ids.get_untracked();
        let (features, promoting) = if typed.trim().is_empty() {
            (vec![], Some(token.get_untracked()))
        } else {
            match parse_features(&typed) {
                Ok(f) => (f, None),
                Err(e) => return lab.status.set(bridge::Status::Error(e.to_string())),
            }
        };
        result.set(None);
        let background = super::remote::background();
        background.with_corpus(move |corpus| {
            let req = Request::Features {
                features,
                promoting,
                count: 8,
                amplification: 10.0,
                lens_k: 20,
                strength: None,
                prompt: None,
                corpus,
                prompts: None,
            };
            let mut then = Some(then);
            bridge::run(req, move |msg| {
                if let Msg::Reply(Reply::Ok(r)) = msg
                    && let Response::Features { scores, side_effects, .. } = *r
                {
                    chosen.set(scores.first().map(|s| s.feature));
                    strength.set(side_effects.strength);
                    result.set(Some((scores, side_effects)));
                    if let Some(then) = then.take() {
                        then();
                    }
                }
            });
        });
    }

    /// The feature chosen to steer with, and its strength.
    pub fn chosen_feature(self) -> Option<(usize, f32)> {
        self.chosen.get_untracked().map(|f| (f, self.strength.get_untracked()))
    }

    /// Generates with and without the typed features (else the chosen one), side by side.
    pub fn steer(self) {
        let typed = self.several.get_untracked();
        let features = if typed.trim().is_empty() {
            let Some(f) = self.chosen.get_untracked() else { return };
            vec![(f, self.strength.get_untracked())]
        } else {
            match parse_feature_strengths(&typed) {
                Ok(f) => f,
                Err(e) => return bridge::lab().status.set(bridge::Status::Error(e.to_string())),
            }
        };
        let steering = vec![Steering::Features { features }];
        side_by_side("features", self.prompt.get_untracked(), Some(steering), self.plain, self.steered);
    }
}

#[component]
pub fn FeaturesView() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let state = expect_context::<FeatureState>();
    let FeatureState { token, ids, result, chosen, strength, several, prompt, plain, steered } = state;
    let link = move |feature| neuronpedia(&lab, feature);
    let ready = move || lab.idle() && lab.sae.get().is_some();
    let score = move |_| state.score(lab, || {});
    let steer = move |_| state.steer();

    view! {
        <section class="panel" aria-label="Features" id="features">
            <h2>"5. Steer with SAE features"</h2>
            <super::widgets::RandomWeightsNote />
            <p class="explain">"A feature steers when adding its decoder direction moves the output towards what it \
                stands for. The output score asks that directly (amplify the feature, look for its logit-lens tokens \
                in the next-token distribution); the input score asks whether the feature fires on those tokens. \
                Features with high output scores steer best (Arad et al. 2025). Side effects: how stable the effect \
                is across prompts and how much it spills onto other features, next to the cheap predictors of both."</p>
            <div class="row">
                <label>"Features promoting " <input type="text" class="short" aria-label="Token" prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev)) /></label>
                <label>"or these features " <input type="text" class="short" aria-label="Feature ids" placeholder="12, 345"
                    prop:value=move || ids.get() on:input=move |ev| ids.set(event_target_value(&ev)) /></label>
                <button on:click=score disabled=move || !ready()>"Score features"</button>
                {stop_button("Stop scoring", "features")}
            </div>
            {move || lab.sae.get().is_none().then(|| view! { <p class="note">"Load an SAE (above) first."</p> })}
            {move || result.get().map(|(scores, side)| {
                let json = serde_json::to_string_pretty(&serde_json::json!({"scores": scores, "side_effects": side}))
                    .expect("scores serialise");
                view! {
                    <table data-testid="scores">
                        <tr><th>"feature"</th><th>"output score"</th><th>"input score"</th><th>"top logit-lens tokens"</th><th>"steer with"</th></tr>
                        {scores.iter().map(|s| {
                            let f = s.feature;
                            let tokens: Vec<String> = s.lens.iter().take(6).map(|t| format!("{:?}", t.text)).collect();
                            view! { <tr>
                                <td>{feature_link(f, link(f))}</td><td class="num">{format!("{:.3}", s.output_score)}</td>
                                <td class="num">{opt(s.input_score)}</td><td>{tokens.join(" ")}</td>
                                <td><input type="radio" name="feature" aria-label=format!("steer with #{f}")
                                    prop:checked=move || chosen.get() == Some(f) on:change=move |_| chosen.set(Some(f)) /></td>
                            </tr> }
                        }).collect_view()}
                    </table>
                    <h3>{format!("Side effects at strength {:.2}", side.strength)}</h3>
                    <table data-testid="side-effects">
                        <tr><th>"feature"</th><th>"max |cos|"</th><th>"firing rate"</th><th>"co-activation"</th>
                            <th>"logit footprint"</th><th>"effect (mean ± std)"</th><th>"instability (CV)"</th><th>"collateral"</th><th>"downstream"</th></tr>
                        {side.rows.iter().map(|r| view! { <tr>
                            <td>{feature_link(r.feature, link(r.feature))}</td>
                            <td class="num">{format!("{:.2}", r.predictors.max_decoder_cosine)}</td>
                            <td class="num">{format!("{:.3}", r.predictors.firing_rate)}</td>
                            <td class="num">{format!("{:.2}", r.predictors.max_coactivation)}</td>
                            <td class="num">{format!("{:.1}", r.predictors.logit_footprint)}</td>
                            <td class="num">{format!("{:.2} ± {:.2}", r.measured.effect_mean, r.measured.effect_std)}</td>
                            <td class="num">{format!("{:.2}", r.measured.effect_cv)}</td>
                            <td class="num">{format!("{:.2}", r.measured.collateral_spread)}</td>
                            <td class="num">{format!("{:.2}", r.measured.downstream_spread)}</td>
                        </tr> }).collect_view()}
                    </table>
                    <p class="note">"Predictors, cheap to compute: max |cos| — the feature's decoder direction against its \
                        nearest other; firing rate — how often it fires on the background text; co-activation — the \
                        largest overlap (Jaccard index) of the tokens it fires on with another feature's; logit footprint — how many tokens its \
                        logit lens spreads over (exp of the entropy: 1 is one token, the vocabulary size is none in \
                        particular). Measured: the effect on its own tokens across prompts, its instability (std ÷ \
                        |mean|), collateral (the share of the change in SAE activations that lands on other features) and \
                        downstream (the share of the change in the next-token distribution outside its own tokens, \
                        measured after every later layer). \
                        These measures are our own formulation after Duan (2026), whose formulas are not public."</p>
                    <table data-testid="predictor-checks">
                        <tr><th>"predictor"</th><th>"rank correlation with instability"</th><th>"with collateral"</th><th>"with downstream"</th></tr>
                        {side.checks.iter().map(|c| view! { <tr>
                            <td>{c.predictor.replace('_', " ")}</td><td class="num">{opt(c.vs_instability)}</td>
                            <td class="num">{opt(c.vs_collateral)}</td><td class="num">{opt(c.vs_downstream)}</td>
                        </tr> }).collect_view()}
                    </table>
                    <button class="small" on:click=move |_| export::download("features.json", "application/json", json.as_bytes())>"JSON"</button>
                }
            })}
            <div class="row">
                <input type="text" aria-label="Feature prompt" prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev)) />
                <label>"Strength " <input type="number" step="1" aria-label="Strength" prop:value=move || format!("{:.2}", strength.get())
                    on:input=move |ev| if let Ok(s) = event_target_value(&ev).parse() { strength.set(s) } /></label>
                <label>"or several at once " <input type="text" class="short" aria-label="Several features"
                    placeholder="12:8, 345:-4" prop:value=move || several.get()
                    on:input=move |ev| several.set(event_target_value(&ev)) /></label>
                <button on:click=steer disabled=move || !ready() || (chosen.get().is_none() && several.get().trim().is_empty())>
                    {move || match (several.get().trim().is_empty(), chosen.get()) {
                        (false, _) => "Steer with these features".to_string(),
                        (true, Some(f)) => format!("Steer with #{f}"),
                        (true, None) => "Steer with a feature".into(),
                    }}</button>
            </div>
            {move || (!plain.get().is_empty()).then(|| view! {
                <div class="columns">
                    <div><h3>"Unsteered"</h3><pre class="output"><b>{move || prompt.get()}</b>{move || plain.get()}</pre></div>
                    <div><h3>"Feature-steered"</h3><pre class="output" data-testid="feature-steered"><b>{move || prompt.get()}</b>{move || steered.get()}</pre></div>
                </div>
            })}
            <super::population::PopulationView />
            <super::dashboard::DashboardView />
        </section>
    }
}
