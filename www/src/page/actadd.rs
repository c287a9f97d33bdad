//! ActAdd (Turner et al. 2023) and what an SAE makes of it (Conmy & Nanda 2024): the activation difference of one
//! prompt pair ("Anger" − "Calm"), position by position, added to the first positions of a new prompt; each
//! position's row (and their sum) through the SAE next to encode(0); and the vector with chosen features taken
//! out of every row, generated side by side with the plain and the whole ActAdd vector.

use super::bridge::{self, Lab, Msg};
use super::steer::Exp;
use super::widgets::{feature_link, neuronpedia, stop_button};
use leptos::prelude::*;
use steerlab::analysis::actadd::PositionFeatures;
use steerlab::engine::{Event, Reply, Request, Response, Steering};
use steerlab::model::generate::GenerateOptions;
use steerlab::sae::edit::{EditMode, FeatureEdit, parse_features};

/// A computed ActAdd vector: `rows` positions of d_model at `hook`.
#[derive(Clone, PartialEq)]
pub struct ActAddVector {
    pub hook: String,
    pub values: Vec<f32>,
    pub rows: usize,
}

/// The ActAdd panel's state, shared with the lesson step that runs it.
#[derive(Clone, Copy)]
pub struct ActAddState {
    pub positive: RwSignal<String>,
    pub negative: RwSignal<String>,
    pub coef: RwSignal<f32>,
    pub prompt: RwSignal<String>,
    /// Features to take out of every row, typed `12, 345`.
    pub remove: RwSignal<String>,
    pub vector: RwSignal<Option<ActAddVector>>,
    pub positions: RwSignal<Option<Vec<PositionFeatures>>>,
    /// Unsteered, ActAdd, ActAdd without the removed features.
    pub texts: RwSignal<Vec<String>>,
}

/// Turner et al.'s two examples that Conmy & Nanda read with SAEs: (positive, negative, coefficient, prompt). Their
/// coefficients were for GPT-2 XL's layer 20; a small model at another layer may want others.
type Preset = (&'static str, &'static str, f32, &'static str);
const ANGER: Preset = ("Anger", "Calm", 10.0, "I think you're");
const WEDDINGS: Preset = (
    "I talk about weddings constantly",
    "I do not talk about weddings constantly",
    4.0,
    "I went up to my friend and said",
);

impl ActAddState {
    /// Fills in one of Turner et al.'s examples.
    fn preset(self, (positive, negative, coef, prompt): Preset) {
        self.positive.set(positive.into());
        self.negative.set(negative.into());
        self.coef.set(coef);
        self.prompt.set(prompt.into());
    }

    pub fn new() -> Self {
        Self {
            positive: RwSignal::new(ANGER.0.into()),
            negative: RwSignal::new(ANGER.1.into()),
            coef: RwSignal::new(ANGER.2),
            prompt: RwSignal::new(ANGER.3.into()),
            remove: RwSignal::new(String::new()),
            vector: RwSignal::new(None),
            positions: RwSignal::new(None),
            texts: RwSignal::new(Vec::new()),
        }
    }

    /// The vector at the loaded SAE's hook (so the SAE can read it), else at the chosen layer's block input; then
    /// `then`.
    pub fn compute(self, lab: Lab, exp: Exp, then: impl FnOnce() + 'static) {
        let hook = lab.sae.get_untracked().map(|(_, h)| h).unwrap_or_else(|| exp.hook());
        self.vector.set(None);
        self.positions.set(None);
        self.texts.set(Vec::new());
        let req = Request::ActAdd {
            positive: self.positive.get_untracked(),
            negative: self.negative.get_untracked(),
            hook,
            prepend_bos: false,
        };
        let mut then = Some(then);
        bridge::run(req, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::Vector { hook, values, rows: Some(rows), .. } = *r
            {
                self.vector.set(Some(ActAddVector { hook, values, rows }));
                if let Some(t) = then.take() {
                    t()
                }
            }
        });
    }

    /// Each position's SAE features (the SAE must read the vector's hook).
    pub fn read_features(self) {
        let Some(v) = self.vector.get_untracked() else { return };
        self.positions.set(None);
        let req = Request::PositionFeatures { values: v.values, rows: v.rows, top: 8 };
        bridge::run(req, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::PositionFeatures { positions, .. } = *r
            {
                self.positions.set(Some(positions));
            }
        });
    }

    /// Generates unsteered, with the ActAdd vector, and (with features typed) with it minus those features.
    pub fn generate(self) {
        let Some(v) = self.vector.get_untracked() else { return };
        let typed = self.remove.get_untracked();
        if typed.trim().is_empty() {
            return self.generate_with(v, None);
        }
        let features = match parse_features(&typed) {
            Ok(f) => f,
            Err(e) => return bridge::lab().status.set(bridge::Status::Error(e.to_string())),
        };
        let edit = FeatureEdit { features, mode: EditMode::Remove };
        let req = Request::EditVector { values: v.values.clone(), rows: Some(v.rows), edit };
        bridge::run(req, move |msg| {
            if let Msg::Reply(Reply::Ok(r)) = msg
                && let Response::Vector { values, .. } = *r
            {
                self.generate_with(v.clone(), Some(values));
            }
        });
    }

    fn generate_with(self, v: ActAddVector, edited: Option<Vec<f32>>) {
        let coef = self.coef.get_untracked();
        let aligned =
            |values: Vec<f32>| vec![Steering::Vector { hook: v.hook.clone(), values, rows: Some(v.rows), coef }];
        let mut variants = vec![vec![], aligned(v.values.clone())];
        variants.extend(edited.map(aligned));
        self.texts.set(Vec::new());
        let options = GenerateOptions { max_new_tokens: 24, ..Default::default() };
        let req = Request::GenerateVariants { prompt: self.prompt.get_untracked(), variants, options };
        let texts = self.texts;
        bridge::run_in(Some("actadd"), req, move |msg| {
            if let Msg::Event(Event::Texts { texts: t }) = msg {
                texts.set(t);
            }
        });
    }
}

#[component]
pub fn ActAddView(exp: Exp) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let state = expect_context::<ActAddState>();
    let ActAddState { positive, negative, coef, prompt, remove, vector, positions, texts } = state;
    let idle = move || lab.idle();
    // The SAE reads the vector only at its own hook.
    let sae_reads = move || vector.get().is_some_and(|v| lab.sae.get().is_some_and(|(_, h)| h == v.hook));
    let link = move |feature| neuronpedia(&lab, feature);

    view! {
        <div class="diagnostic" id="actadd">
            <h3>"ActAdd: one prompt pair, position by position"</h3>
            <p class="explain">"ActAdd (Turner et al. 2023) runs two short prompts (\"Anger\" and \"Calm\"), takes the \
                difference of their residual streams at each position, and adds it — times a coefficient — to the \
                first positions of a new prompt only. Conmy & Nanda (2024) read such vectors with an SAE: which \
                features make up each position's row, and does the vector steer better or worse without some of \
                them? The vector is taken at the loaded SAE's hook so the SAE can read it. Compare each row's top \
                features with encode(0): a short row is encoded much like the zero vector."</p>
            <div class="row">
                <label>"Positive " <input type="text" class="short" aria-label="ActAdd positive prompt"
                    prop:value=move || positive.get() on:input=move |ev| positive.set(event_target_value(&ev)) /></label>
                <label>"negative " <input type="text" class="short" aria-label="ActAdd negative prompt"
                    prop:value=move || negative.get() on:input=move |ev| negative.set(event_target_value(&ev)) /></label>
                <button class="small" on:click=move |_| state.preset(ANGER)>"Anger − Calm"</button>
                <button class="small" on:click=move |_| state.preset(WEDDINGS)>"Weddings"</button>
                <button on:click=move |_| state.compute(lab, exp, || {}) disabled=move || !idle()>"Compute ActAdd vector"</button>
                <button on:click=move |_| state.read_features() disabled=move || !idle() || !sae_reads()>"Read its SAE features"</button>
            </div>
            <p class="note" data-testid="actadd-vector">{move || match vector.get() {
                Some(v) => format!("ActAdd vector at {}: {} positions.", v.hook, v.rows),
                None => "No ActAdd vector yet.".into(),
            }}</p>
            {move || positions.get().map(|ps| view! {
                <table data-testid="actadd-features">
                    <tr><th>"row"</th><th>"norm"</th><th>"cos(encode(row), encode(0))"</th><th>"top features: activation (in encode(0))"</th></tr>
                    {ps.into_iter().map(|p| view! { <tr>
                        <td>{p.position.map_or("sum of the rows".into(), |i| format!("position {i}"))}</td>
                        <td class="num">{format!("{:.2}", p.norm)}</td>
                        <td class="num">{format!("{:.3}", p.cosine_with_zero)}</td>
                        <td>{p.features.iter().map(|f| view! {
                            <span class="feature">{feature_link(f.feature, link(f.feature))}
                                {format!(": {:.2} ({:.2}) ", f.scaled.first().copied().unwrap_or(0.0), f.zero)}</span>
                        }).collect_view()}</td>
                    </tr> }).collect_view()}
                </table>
            })}
            <div class="row">
                <input type="text" aria-label="ActAdd prompt" prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev)) />
                <label>"Coefficient " <input type="number" step="1" class="short" aria-label="ActAdd coefficient"
                    prop:value=move || coef.get() on:input=move |ev| if let Ok(c) = event_target_value(&ev).parse() { coef.set(c) } /></label>
                <label>"without features " <input type="text" class="short" aria-label="Features to remove from ActAdd"
                    placeholder="12, 345" prop:value=move || remove.get() on:input=move |ev| remove.set(event_target_value(&ev)) /></label>
                <button on:click=move |_| state.generate() disabled=move || !idle() || vector.get().is_none()>"Steer with ActAdd"</button>
                {stop_button("Stop ActAdd", "actadd")}
            </div>
            {move || (!texts.get().is_empty()).then(|| {
                let t = texts.get();
                let heads = ["Unsteered", "ActAdd", "ActAdd without those features"];
                view! {
                    <div class="columns">
                        {t.into_iter().zip(heads).enumerate().map(|(i, (text, head))| view! {
                            <div><h3>{head}</h3><pre class="output" data-testid=format!("actadd-text-{i}")><b>{move || prompt.get()}</b>{text}</pre></div>
                        }).collect_view()}
                    </div>
                }
            })}
        </div>
    }
}
