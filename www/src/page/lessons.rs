//! A guided lesson through Mayne et al. 2024's finding, one step at a time (next / previous), each step runnable:
//! its button runs the computation on the loaded model and scrolls to what it shows. A large, readable mode is
//! for teaching from a projector.

use super::bridge::Lab;
use super::steer::{self, Exp};
use leptos::prelude::*;
use steerlab::analysis::Decomposition;
use steerlab_www::reading;

#[derive(Clone, Copy)]
enum Action {
    /// The steering vector at the SAE's hook (or the chosen layer without an SAE).
    Vector,
    Generate,
    Sweep,
    Decompose,
    /// A diagnostic of the decomposition: runs it if the page has none yet, then shows it.
    Show,
    /// Scores the features promoting the token and steers with the best one.
    Features,
    /// Computes the ActAdd vector, reads its SAE features and generates with it.
    ActAdd,
}

struct Step {
    title: &'static str,
    /// What to do and what to look for; the page's own numbers follow (`reading`), never a claimed outcome.
    text: &'static str,
    action: Action,
    /// The element the step shows.
    target: &'static str,
    /// What the decomposition on the page says for this step, in words.
    reading: Option<fn(&Decomposition) -> Option<String>>,
}

const STEPS: [Step; 10] = [
    Step {
        title: "A steering vector",
        text: "Contrastive activation addition (CAA): run the model on pairs of texts that differ in one behaviour \
               (love vs hate), read the residual stream at one layer at the last token, and average the \
               differences. That mean difference is the steering vector.",
        action: Action::Vector,
        target: "steer",
        reading: None,
    },
    Step {
        title: "It steers",
        text: "Add the vector, times a multiplier, to the residual stream at every position while the model \
               writes. Compare the continuation with and without it.",
        action: Action::Generate,
        target: "generate",
        reading: None,
    },
    Step {
        title: "How much it steers",
        text: "Steerability is the slope of the behaviour's propensity against the multiplier (Tan et al. 2024), \
               on the third of the dataset the vector was not built from. For love vs hate pairs, propensity is how \
               much more likely the model finds the loving text than the hateful one; for A/B questions, the logit \
               difference between the answer that shows the behaviour and the one that does not.",
        action: Action::Sweep,
        target: "steerability",
        reading: None,
    },
    Step {
        title: "Decompose it with an SAE: how long is the vector?",
        text: "A sparse autoencoder writes activations as a few features, and was trained on real activations. \
               Compare the steering vector's norm with theirs: is it an input like the ones the SAE knows?",
        action: Action::Decompose,
        target: "norms",
        reading: Some(|d| Some(reading::norms_reading(&d.norms))),
    },
    Step {
        title: "Does the encoder bias decide?",
        text: "Encode the vector and encode nothing at all (the zero vector). If the two encodings are alike, the \
               encoder's bias, not the vector, picks the features.",
        action: Action::Show,
        target: "bias",
        reading: Some(|d| Some(reading::bias_reading(&d.bias))),
    },
    Step {
        title: "Default components",
        text: "Every real activation carries large components along many encoder directions. Positive and negative \
               prompts share them, so CAA's difference removes them. Look at the strips: does the vector (diamond) \
               sit among the dots or away from them?",
        action: Action::Show,
        target: "defaults",
        reading: Some(|d| reading::defaults_reading(&d.defaults)),
    },
    Step {
        title: "ReLU drops negative projections",
        text: "The vector points against many features' decoder directions. ReLU cannot write a negative \
               coefficient, so those parts are dropped, and features whose decoder points the opposite way fire \
               instead.",
        action: Action::Show,
        target: "projections",
        reading: None,
    },
    Step {
        title: "Where the steering goes",
        text: "Compare the rows: how much of the vector's steerability does its SAE reconstruction keep, and do \
               the other decompositions — correcting for the bias (encode(SV + mean) − encode(mean)), gradient \
               pursuit on the decoder with non-negative or signed coefficients — keep more?",
        action: Action::Show,
        target: "table",
        reading: Some(|d| reading::table_reading(&d.table)),
    },
    Step {
        title: "Features that do steer",
        text: "Choosing features to steer with by what they output (output score) works better than by what \
               they read (input score) (Arad et al. 2025). Score the features promoting a word, check their \
               predicted side effects, and steer with the best-scoring one. Then \"Many features at once\" asks \
               the paper's population question: on a sample of features, do high input and high output scores \
               coincide, and do the top features by output score write their concept better than the others?",
        action: Action::Features,
        target: "features",
        reading: None,
    },
    Step {
        title: "One prompt pair: ActAdd through an SAE",
        text: "ActAdd (Turner et al. 2023) steers with the difference of just two prompts (\"Anger\" − \"Calm\"), \
               position by position, added to the first positions of a new prompt. Conmy & Nanda (2024) read such \
               vectors with an SAE. Look at each position's top features next to encode(0) — the shortest rows \
               are encoded much like the zero vector — then take some features out of every row and compare the \
               three continuations: does the vector steer without them?",
        action: Action::ActAdd,
        target: "actadd",
        reading: None,
    },
];

/// Brings `id` into view: just below the lesson card where it is pinned at the top of the window (narrow
/// screens), at the top where the lesson sits beside the sections (wide ones).
pub fn scroll_to(id: &str) {
    use wasm_bindgen::JsCast;
    if let Some(el) = document().get_element_by_id(id) {
        el.scroll_into_view();
        let card = document().get_element_by_id("lesson").and_then(|c| c.dyn_into::<web_sys::HtmlElement>().ok());
        let pinned = card.filter(|c| c.get_bounding_client_rect().right() > el.get_bounding_client_rect().left());
        window().scroll_by_with_x_and_y(0.0, -(pinned.map_or(0, |c| c.offset_height()) as f64 + 12.0));
    }
}

/// The page's sections, with the one in view marked.
const SECTIONS: [(&str, &str); 6] = [
    ("model", "Model"),
    ("steer", "1 · Vector"),
    ("generate", "2 · Generate"),
    ("steerability", "3 · Steerability"),
    ("decompose", "4 · Decompose"),
    ("features", "5 · Features"),
];

/// Links to the page's sections, one click away; the section being read is marked (aria-current).
#[component]
pub fn SectionLinks() -> impl IntoView {
    let current = RwSignal::new("model");
    // The section being read: the last whose top has reached the top of the window (below the lesson card where
    // it is pinned there); at the end of the page, the last one in view.
    let update = move || {
        let top = |id: &str| document().get_element_by_id(id).map(|el| el.get_bounding_client_rect());
        let (Some(lesson), Some(first)) = (top("lesson"), top("model")) else { return };
        let pinned = if lesson.right() > first.left() { lesson.bottom().max(0.0) } else { 0.0 };
        let height = window().inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(800.0);
        let root = document().document_element();
        let at_end =
            root.is_some_and(|r| window().scroll_y().unwrap_or(0.0) + height >= r.scroll_height() as f64 - 2.0);
        let line = if at_end { height } else { pinned + 48.0 };
        let passed = SECTIONS.iter().rev().find(|(id, _)| top(id).is_some_and(|r| r.top() < line));
        current.set(passed.map_or("model", |(id, _)| id));
    };
    let listener = window_event_listener(leptos::ev::scroll, move |_| update());
    on_cleanup(move || listener.remove());
    view! {
        <nav class="section-links" aria-label="Sections">
            {SECTIONS.into_iter().map(|(id, text)| view! {
                <a href=format!("#{id}") aria-current=move || (current.get() == id).then_some("true")
                    on:click=move |ev| {
                        // Scroll without touching the URL's fragment, which holds a shared experiment.
                        ev.prevent_default();
                        scroll_to(id);
                    }>{text}</a>
            }).collect_view()}
        </nav>
    }
}

#[component]
pub fn Lessons(exp: Exp, large: RwSignal<bool>) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let features = expect_context::<super::features::FeatureState>();
    let actadd = expect_context::<super::actadd::ActAddState>();
    let at = RwSignal::new(0usize);
    let run = move |_| {
        let step = &STEPS[at.get_untracked()];
        let target = step.target;
        match step.action {
            Action::Vector => {
                let hook = lab.sae.get_untracked().map(|(_, h)| h);
                steer::compute_vector(exp, hook, || {});
            }
            Action::Generate => steer::generate(exp),
            Action::Sweep => steer::sweep_multipliers(exp),
            Action::Decompose => super::decompose::run(exp),
            Action::Show if exp.decomposition.get_untracked().is_none() => super::decompose::run(exp),
            Action::Show => {}
            Action::Features => features.score(lab, move || features.steer()),
            Action::ActAdd => actadd.compute(lab, exp, move || {
                if lab.sae.get_untracked().is_some() {
                    actadd.read_features();
                }
                actadd.generate();
            }),
        }
        scroll_to(target);
    };
    let needs_vector = move || {
        matches!(STEPS[at.get()].action, Action::Generate | Action::Sweep | Action::Decompose | Action::Show)
            && exp.vector.get().is_none()
    };
    view! {
        <section class="panel lesson" aria-label="Lesson" id="lesson">
            <div class="lesson-head">
                <h2>{move || format!("Lesson · step {} of {}: {}", at.get() + 1, STEPS.len(), STEPS[at.get()].title)}</h2>
                <label class="large-toggle"><input type="checkbox" prop:checked=move || large.get()
                    on:change=move |_| large.update(|l| *l = !*l) />" Large text"</label>
            </div>
            <p class="explain" data-testid="lesson-text">{move || STEPS[at.get()].text}</p>
            {move || {
                let reading = STEPS[at.get()].reading?;
                let text = exp.decomposition.with(|d| d.as_ref().and_then(reading))?;
                Some(view! { <p class="explain reading" data-testid="lesson-reading">{text}</p> })
            }}
            <div class="row">
                <button on:click=move |_| at.update(|a| *a = a.saturating_sub(1)) disabled=move || at.get() == 0>"Previous"</button>
                <button on:click=run disabled=move || !lab.idle() || needs_vector()>"Run this step"</button>
                <button on:click=move |_| at.update(|a| *a = (*a + 1).min(STEPS.len() - 1))
                    disabled=move || at.get() + 1 == STEPS.len()>"Next"</button>
                {move || needs_vector().then(|| view! { <span class="note">"Run step 1 first."</span> })}
            </div>
        </section>
    }
}
