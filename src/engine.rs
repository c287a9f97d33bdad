//! One request/response API over the engine. The browser lab's Web Worker calls it in-process and the native
//! helper serves the very same types over HTTP: requests and replies are serde types, JSON on the wire. Long
//! requests report progress through events; once their caller says stop, they end at the next forward pass (the
//! next token, for generation) with `Error::Cancelled`.

#[cfg(feature = "engine")]
mod run;

use crate::analysis::Decomposition;
use crate::analysis::actadd::PositionFeatures;
use crate::analysis::bias::VectorVsZero;
use crate::analysis::dashboard::{FeatureDashboard, TextFeatures};
use crate::analysis::features::FeatureScore;
use crate::analysis::population::Population;
use crate::analysis::side_effects::SideEffects;
use crate::error::{Error, Result};
pub use crate::model::Stop;
use crate::model::config::ModelConfig;
use crate::model::generate::GenerateOptions;
use crate::sae::config::SaeConfig;
use crate::sae::edit::FeatureEdit;
use crate::steer::builtin::DATASETS;
use crate::steer::dataset::Dataset;
use crate::steer::propensity::{LayerSweepRow, SteerabilityCurve};
use crate::steer::score::StrengthScore;
#[cfg(feature = "engine")]
pub use run::Engine;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// A `Stop` that never stops.
pub fn never() -> Stop {
    Rc::new(|| false)
}

/// A dataset: one of the built-in files (static/datasets) or text the user typed or dropped (JSONL or a JSON
/// array of contrastive pairs or A/B items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum DatasetRef {
    BuiltIn {
        file: String,
        /// Only its training or its held-out items (`Dataset::split`), so one file can train and evaluate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<Part>,
    },
    Inline {
        name: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<Part>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Train,
    Test,
}

impl DatasetRef {
    /// A whole built-in file.
    pub fn built_in(file: &str) -> Self {
        Self::BuiltIn { file: file.into(), part: None }
    }
}

/// Something to add to the residual stream while the model runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Steering {
    /// `coef × values` at `hook`: [d_model] at every position, or [rows, d_model] position-aligned (ActAdd).
    Vector { hook: String, values: Vec<f32>, rows: Option<usize>, coef: f32 },
    /// SAE features: Σ strength × decoder row at the SAE's hook, every position.
    Features { features: Vec<(usize, f32)> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// What is loaded.
    Status,
    /// Continue `prompt`; tokens stream as `Event::Text`.
    Generate {
        prompt: String,
        #[serde(default)]
        steering: Vec<Steering>,
        #[serde(default)]
        options: GenerateOptions,
    },
    /// Continue `prompt` once per variant (e.g. unsteered and steered), decoded together as one batch; every
    /// variant's text so far streams as `Event::Texts`.
    GenerateVariants {
        prompt: String,
        variants: Vec<Vec<Steering>>,
        #[serde(default)]
        options: GenerateOptions,
    },
    /// A CAA vector at `hook`.
    Caa { dataset: DatasetRef, hook: String },
    /// A position-aligned ActAdd vector at `hook`.
    ActAdd {
        positive: String,
        negative: String,
        hook: String,
        #[serde(default)]
        prepend_bos: bool,
    },
    /// Propensity on held-out data against the multiplier of one vector: the logit difference on A/B items,
    /// the log-probability difference on contrastive pairs.
    Steerability { eval: DatasetRef, hook: String, vector: Vec<f32>, multipliers: Vec<f32> },
    /// CAA vectors at blocks.L.hook_resid_pre for each layer, each evaluated on `eval` (A/B items or pairs).
    LayerSweep { train: DatasetRef, eval: DatasetRef, layers: Vec<usize>, multipliers: Vec<f32> },
    /// The SAE diagnostics of a steering vector at the SAE's hook.
    Decompose {
        vector: Vec<f32>,
        #[serde(default)]
        eval: Option<DatasetRef>,
        #[serde(default)]
        pairs: Option<DatasetRef>,
        /// Background passages, one a line (default: the built-in corpus).
        #[serde(default)]
        corpus: Option<String>,
        multipliers: Vec<f32>,
        ks: Vec<usize>,
        top: usize,
        /// The vector restricted to, or without, chosen features, as extra rows of the table.
        #[serde(default)]
        edits: Vec<FeatureEdit>,
    },
    /// CAA vectors of several datasets at the SAE's hook, each against encode(0) (Mayne et al.'s Table 1).
    VectorsVsZero {
        datasets: Vec<DatasetRef>,
        #[serde(default = "ten")]
        top: usize,
    },
    /// A vector at the SAE's hook ([d_model], or [rows, d_model] position-aligned: ActAdd) through the SAE: each
    /// row and their sum against encode(0), with the `top` features of each (Conmy & Nanda 2024).
    PositionFeatures {
        values: Vec<f32>,
        #[serde(default = "one")]
        rows: usize,
        #[serde(default = "ten")]
        top: usize,
    },
    /// A vector at the SAE's hook with every row restricted to, or without, chosen features' decoder span.
    EditVector {
        values: Vec<f32>,
        #[serde(default)]
        rows: Option<usize>,
        edit: FeatureEdit,
    },
    /// Generation-level scores: greedy continuations of each prompt (one a line) with `steering` × each strength,
    /// and per strength the share of concept words (one a line) and the coherence under the unsteered model.
    SteerScore {
        steering: Steering,
        prompts: String,
        concept: String,
        strengths: Vec<f32>,
        #[serde(default = "eight")]
        max_new_tokens: usize,
    },
    /// Arad et al.'s scores over a sample of `sample` features (all when at least d_sae) and the steering success,
    /// judged by text, of the `top` features by output score, by input score and at random.
    Population {
        sample: usize,
        #[serde(default)]
        seed: u64,
        #[serde(default = "five")]
        top: usize,
        /// Strengths as multiples of the median activation norm at the hook.
        strengths: Vec<f32>,
        /// Prompts to steer, one a line (default: the built-in prompts).
        #[serde(default)]
        prompts: Option<String>,
        /// Background passages, one a line (default: the built-in corpus).
        #[serde(default)]
        corpus: Option<String>,
        #[serde(default = "ten_f")]
        amplification: f32,
        #[serde(default = "twenty")]
        lens_k: usize,
        #[serde(default = "twelve")]
        max_new_tokens: usize,
    },
    /// Output/input scores and side effects of SAE features: `features`, or the `count` promoting a token.
    Features {
        #[serde(default)]
        features: Vec<usize>,
        #[serde(default)]
        promoting: Option<String>,
        #[serde(default = "ten")]
        count: usize,
        #[serde(default = "ten_f")]
        amplification: f32,
        #[serde(default = "twenty")]
        lens_k: usize,
        #[serde(default)]
        strength: Option<f32>,
        /// The prompt the output score amplifies features on (default: Arad et al.'s neutral prompt).
        #[serde(default)]
        prompt: Option<String>,
        /// Background passages, one a line (default: the built-in corpus).
        #[serde(default)]
        corpus: Option<String>,
        /// Contexts the side effects are measured on, one a line (default: the built-in prompts).
        #[serde(default)]
        prompts: Option<String>,
    },
    /// Feature dashboards over the background corpus: top-activating passages, activation histogram, logit lens
    /// and decoder-cosine neighbours (at most `dashboard::MAX_FEATURES` features at once).
    Dashboards {
        features: Vec<usize>,
        /// Background passages, one a line (default: the built-in corpus).
        #[serde(default)]
        corpus: Option<String>,
        #[serde(default = "ten")]
        passages: usize,
        #[serde(default = "ten")]
        k: usize,
    },
    /// The features most active on a typed text, token by token and overall.
    SearchFeatures {
        text: String,
        #[serde(default = "ten")]
        top: usize,
    },
}

fn one() -> usize {
    1
}
fn five() -> usize {
    5
}
fn eight() -> usize {
    8
}
fn ten() -> usize {
    10
}
fn ten_f() -> f32 {
    10.0
}
fn twelve() -> usize {
    12
}
fn twenty() -> usize {
    20
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Status {
        model: Option<Loaded<ModelConfig>>,
        sae: Option<Loaded<SaeConfig>>,
    },
    Generated {
        text: String,
        tokens: Vec<u32>,
    },
    /// One continuation per variant, in order.
    GeneratedVariants {
        texts: Vec<String>,
        tokens: Vec<Vec<u32>>,
    },
    Vector {
        hook: String,
        values: Vec<f32>,
        rows: Option<usize>,
        count: usize,
    },
    Steerability {
        curve: SteerabilityCurve,
    },
    SteerScore {
        scores: Vec<StrengthScore>,
    },
    VectorsVsZero {
        rows: Vec<VectorVsZero>,
    },
    LayerSweep {
        rows: Vec<LayerSweepRow>,
    },
    Decomposition {
        decomposition: Decomposition,
    },
    Features {
        hook: String,
        scores: Vec<FeatureScore>,
        side_effects: SideEffects,
    },
    Population {
        population: Population,
    },
    PositionFeatures {
        hook: String,
        /// The rows summed first, then each position.
        positions: Vec<PositionFeatures>,
    },
    Dashboards {
        hook: String,
        dashboards: Vec<FeatureDashboard>,
    },
    TextFeatures {
        hook: String,
        text: TextFeatures,
    },
}

/// A loaded model or SAE: its name and config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loaded<C> {
    pub name: String,
    pub config: C,
}

/// What a request reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The generated text so far (whole, so multi-byte characters arrive whole).
    Text { text: String },
    /// Each variant's generated text so far.
    Texts { texts: Vec<String> },
    /// How far the request's current stage is: `done` of `total` rows (items × vectors × multipliers, passages,
    /// feature rows…) through the model.
    Progress { stage: String, done: usize, total: usize },
}

/// The answer to a JSON request, as JSON: `{"ok": Response}` or `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Box<Response>),
    Error(String),
}

impl Reply {
    /// The reply to a request's outcome. serde_json writes NaN and ±inf as `null`, which no f32 field reads back,
    /// so a response holding one (an overflow: steering or amplification too strong for f32 arithmetic) would reach
    /// the page or the helper's client as a message it cannot read, and its job would never end. Such a response
    /// is answered with an error instead. (The flows give no NaN by design: a degenerate statistic is None.)
    pub fn of(outcome: crate::Result<Response>) -> Self {
        match outcome {
            Ok(r) if reads_back(&r) => Reply::Ok(Box::new(r)),
            Ok(_) => Reply::Error(
                "a result came out NaN or infinite: the multipliers, strengths, amplification or vector values are \
                 too large for 32-bit arithmetic"
                    .into(),
            ),
            Err(e) => Reply::Error(e.to_string()),
        }
    }
}

/// Whether `r` survives a trip through JSON (see `Reply::of`).
fn reads_back(r: &Response) -> bool {
    serde_json::to_value(r).is_ok_and(|v| serde_json::from_value::<Response>(v).is_ok())
}

/// Parses a dataset reference.
pub fn load_dataset(d: &DatasetRef) -> Result<Dataset> {
    match d {
        DatasetRef::BuiltIn { file, part } => {
            let Some(b) = DATASETS.iter().find(|b| b.file == file) else {
                let names: Vec<&str> = DATASETS.iter().map(|b| b.file).collect();
                return Err(Error::invalid(format!(
                    "no built-in dataset \"{file}\" (there are: {})",
                    names.join(", ")
                )));
            };
            split(Dataset::parse(b.text, b.file)?, *part, file)
        }
        DatasetRef::Inline { name, text, part } => split(Dataset::parse(text, name)?, *part, name),
    }
}

fn split(d: Dataset, part: Option<Part>, name: &str) -> Result<Dataset> {
    let Some(p) = part else { return Ok(d) };
    let total = d.len();
    let d = d.split(p == Part::Test);
    if d.is_empty() {
        let which = if p == Part::Test { "held-out (every third)" } else { "training" };
        return Err(Error::invalid(format!("{name} has {total} items, too few for a {which} part: give at least 3")));
    }
    Ok(d)
}
