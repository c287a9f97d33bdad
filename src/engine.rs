//! One request/response API over the engine. The browser lab's Web Worker calls it in-process and the native
//! helper serves the very same types over HTTP: requests and replies are serde types, JSON on the wire. Long
//! requests report progress through events; once their caller says stop, they end at the next forward pass (the
//! next token, for generation) with `Error::Cancelled`.

use crate::analysis::actadd::{PositionFeatures, edit_rows, position_features};
use crate::analysis::bias::{VectorVsZero, vectors_vs_zero};
use crate::analysis::dashboard::{
    DashboardOptions, FeatureDashboard, TextFeatures, feature_dashboards, features_on_text,
};
use crate::analysis::features::{
    FeatureScore, NEUTRAL_PROMPT, ScoreOptions, feature_scores_and_norms, features_promoting,
};
use crate::analysis::population::{Population, PopulationOptions, population};
use crate::analysis::side_effects::{SideEffects, Tally, side_effects};
use crate::analysis::{DecomposeOptions, Decomposition, decompose};
use crate::error::{Error, Result};
use crate::model::Model;
pub use crate::model::Stop;
use crate::model::batch::Limits;
use crate::model::config::ModelConfig;
use crate::model::generate::{GenerateOptions, generate, generate_rows};
use crate::model::hooks::{Hooks, Intervention};
use crate::sae::Sae;
use crate::sae::config::SaeConfig;
use crate::sae::edit::FeatureEdit;
use crate::steer::actadd::actadd_vector;
use crate::steer::apply::{aligned_intervention, intervention};
use crate::steer::builtin::{CORPUS, DATASETS, PROMPTS, corpus_passages};
use crate::steer::caa::caa_vector;
use crate::steer::dataset::Dataset;
use crate::steer::propensity::{LayerSweepRow, Probes, SteerabilityCurve, layer_sweep, steerability};
use crate::steer::score::{ScoreSpec, StrengthScore, parse_concept, steer_score};
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

/// The models and SAE a session has loaded.
#[derive(Default)]
pub struct Engine {
    pub model: Option<Model>,
    pub sae: Option<Sae>,
    /// How large a batch the device takes (the browser reads its adapter's; natively the defaults).
    pub limits: Limits,
}

impl Engine {
    /// Loads `model`, dropping an SAE that does not fit it; its batches follow the engine's limits.
    pub fn set_model(&mut self, mut model: Model) {
        if self.sae.as_ref().is_some_and(|s| s.check_fits(model.cfg()).is_err()) {
            self.sae = None;
        }
        model.limits = self.limits;
        self.model = Some(model);
    }

    /// Loads `sae`, checking it reads a hook of the loaded model.
    pub fn set_sae(&mut self, sae: Sae) -> Result<()> {
        sae.check_fits(self.model()?.cfg())?;
        self.sae = Some(sae);
        Ok(())
    }

    fn model(&self) -> Result<&Model> {
        self.model.as_ref().ok_or_else(no_model)
    }

    fn sae(&self) -> Result<&Sae> {
        self.sae.as_ref().ok_or_else(|| Error::invalid("no SAE is loaded"))
    }

    /// Parses a JSON request, runs it and answers in JSON; never fails.
    pub async fn handle_json(&self, request: &str, stop: Stop, on_event: &mut dyn FnMut(Event)) -> String {
        let reply = match serde_json::from_str::<Request>(request) {
            Ok(req) => match self.handle(req, stop, on_event).await {
                Ok(r) => Reply::Ok(Box::new(r)),
                Err(e) => Reply::Error(e.to_string()),
            },
            Err(e) => Reply::Error(format!("not a valid request: {e}")),
        };
        serde_json::to_string(&reply).expect("replies serialise")
    }

    /// Runs one request on a view of the model that asks `stop` before each forward pass; generation also asks
    /// after each token. Once it says stop, the request ends with `Error::Cancelled`.
    pub async fn handle(&self, req: Request, stop: Stop, on_event: &mut dyn FnMut(Event)) -> Result<Response> {
        self.handle_reporting(req, stop, None, on_event).await
    }

    /// As `handle`, also telling `progress` how far each stage of a multi-prompt flow is (the worker and the
    /// helper forward it as `Event::Progress`; it is called from inside the flow, so it cannot borrow `on_event`).
    pub async fn handle_reporting(
        &self,
        req: Request,
        stop: Stop,
        progress: Option<crate::model::Progress>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Response> {
        let view = self.model.as_ref().map(|m| {
            let view = m.stopping(stop.clone());
            match &progress {
                Some(p) => view.reporting(p.clone()),
                None => view,
            }
        });
        let model = || view.as_ref().ok_or_else(no_model);
        match req {
            Request::Status => Ok(Response::Status {
                model: self.model.as_ref().map(|m| Loaded { name: m.name.clone(), config: m.cfg().clone() }),
                sae: self.sae.as_ref().map(|s| Loaded { name: s.name.clone(), config: s.cfg.clone() }),
            }),
            Request::Generate { prompt, steering, options } => {
                let model = model()?;
                let tokens = model.encode(&prompt, false)?;
                let mut hooks = Hooks::steering(self.interventions(&steering).await?);
                let mut so_far = Vec::new();
                let out = generate(model, &tokens, &mut hooks, &options, |t| {
                    so_far.push(t);
                    if let Ok(text) = model.tokenizer.decode(&so_far) {
                        on_event(Event::Text { text });
                    }
                    !stop()
                })
                .await?;
                if stop() {
                    return Err(Error::Cancelled);
                }
                Ok(Response::Generated { text: model.tokenizer.decode(&out)?, tokens: out })
            }
            Request::GenerateVariants { prompt, variants, options } => {
                let model = model()?;
                if variants.is_empty() {
                    return Err(Error::invalid("no variants to generate"));
                }
                let tokens = model.encode(&prompt, false)?;
                let n = variants.len();
                let mut hooks = Hooks::default();
                for (row, steering) in variants.iter().enumerate() {
                    for iv in self.interventions(steering).await? {
                        let only_this_row = (0..n).map(|r| if r == row { 1.0 } else { 0.0 }).collect();
                        hooks.interventions.push(Intervention { rows: Some(only_this_row), ..iv });
                    }
                }
                let decode =
                    |rows: &[Vec<u32>]| rows.iter().map(|t| model.tokenizer.decode(t)).collect::<Result<Vec<_>>>();
                let out = generate_rows(model, &tokens, n, &mut hooks, &options, |rows| {
                    if let Ok(texts) = decode(rows) {
                        on_event(Event::Texts { texts });
                    }
                    !stop()
                })
                .await?;
                if stop() {
                    return Err(Error::Cancelled);
                }
                Ok(Response::GeneratedVariants { texts: decode(&out)?, tokens: out })
            }
            Request::VectorsVsZero { datasets, top } => {
                let (model, sae) = (model()?, self.sae()?);
                let mut vectors = Vec::with_capacity(datasets.len());
                for (i, d) in datasets.iter().enumerate() {
                    model.report("a CAA vector per dataset", i, datasets.len());
                    let pairs = load_dataset(d)?.pairs()?;
                    let name = match d {
                        DatasetRef::BuiltIn { file, .. } => file.clone(),
                        DatasetRef::Inline { name, .. } => name.clone(),
                    };
                    vectors.push((name, caa_vector(model, &pairs, &sae.cfg.hook_name).await?));
                }
                Ok(Response::VectorsVsZero { rows: vectors_vs_zero(sae, &vectors, top).await? })
            }
            Request::PositionFeatures { values, rows, top } => {
                let sae = self.sae()?;
                let positions = position_features(sae, &values, rows, top).await?;
                Ok(Response::PositionFeatures { hook: sae.cfg.hook_name.clone(), positions })
            }
            Request::EditVector { values, rows, edit } => {
                let sae = self.sae()?;
                let values = edit_rows(sae, &values, rows.unwrap_or(1), &edit).await?;
                Ok(Response::Vector { hook: sae.cfg.hook_name.clone(), values, rows, count: 1 })
            }
            Request::SteerScore { steering, prompts, concept, strengths, max_new_tokens } => {
                let model = model()?;
                let (hook, direction) = self.direction(&steering).await?;
                let prompts = corpus_passages(&prompts);
                let spec = ScoreSpec {
                    hook: &hook,
                    direction: &direction,
                    strengths: &strengths,
                    prompts: &prompts,
                    concept: &parse_concept(&concept)?,
                    max_new_tokens,
                };
                Ok(Response::SteerScore { scores: steer_score(model, &spec).await? })
            }
            Request::Caa { dataset, hook } => {
                let pairs = load_dataset(&dataset)?.pairs()?;
                let values = caa_vector(model()?, &pairs, &hook).await?;
                Ok(Response::Vector { hook, values, rows: None, count: pairs.len() })
            }
            Request::ActAdd { positive, negative, hook, prepend_bos } => {
                let v = actadd_vector(model()?, &positive, &negative, &hook, prepend_bos).await?;
                Ok(Response::Vector { hook, rows: Some(v.shape[0]), values: v.data, count: 1 })
            }
            Request::Steerability { eval, hook, vector, multipliers } => {
                let model = model()?;
                let probes = Probes::prepare(model, &load_dataset(&eval)?)?;
                Ok(Response::Steerability { curve: steerability(model, &probes, &hook, &vector, &multipliers).await? })
            }
            Request::LayerSweep { train, eval, layers, multipliers } => {
                let model = model()?;
                let train = load_dataset(&train)?.pairs()?;
                let probes = Probes::prepare(model, &load_dataset(&eval)?)?;
                Ok(Response::LayerSweep { rows: layer_sweep(model, &train, &probes, &layers, &multipliers).await? })
            }
            Request::Decompose { vector, eval, pairs, corpus, multipliers, ks, top, edits } => {
                let (model, sae) = (model()?, self.sae()?);
                let corpus = corpus_passages(corpus.as_deref().unwrap_or(CORPUS));
                let pairs = pairs.map(|p| load_dataset(&p)?.pairs()).transpose()?;
                let eval = eval.map(|e| Probes::prepare(model, &load_dataset(&e)?)).transpose()?;
                let opts = DecomposeOptions {
                    corpus: &corpus,
                    pairs: pairs.as_deref(),
                    eval: eval.as_ref(),
                    multipliers: &multipliers,
                    ks: &ks,
                    top,
                    edits: &edits,
                };
                Ok(Response::Decomposition { decomposition: decompose(model, sae, &vector, &opts).await? })
            }
            Request::Population {
                sample,
                seed,
                top,
                strengths,
                prompts,
                corpus,
                amplification,
                lens_k,
                max_new_tokens,
            } => {
                let (model, sae) = (model()?, self.sae()?);
                let corpus = corpus_passages(corpus.as_deref().unwrap_or(CORPUS));
                let prompts = corpus_passages(prompts.as_deref().unwrap_or(PROMPTS));
                let scores =
                    ScoreOptions { prompt: NEUTRAL_PROMPT, amplification, lens_k, corpus: &corpus, max_examples: 100 };
                let opts = PopulationOptions {
                    sample,
                    seed,
                    scores,
                    top,
                    prompts: &prompts,
                    strengths: &strengths,
                    max_new_tokens,
                };
                Ok(Response::Population { population: population(model, sae, &opts).await? })
            }
            Request::Features {
                features,
                promoting,
                count,
                amplification,
                lens_k,
                strength,
                prompt,
                corpus,
                prompts,
            } => {
                let (model, sae) = (model()?, self.sae()?);
                let features = match promoting {
                    Some(token) => features_promoting(model, sae, &token, count).await?,
                    None => features,
                };
                let corpus = corpus_passages(corpus.as_deref().unwrap_or(CORPUS));
                let prompts = corpus_passages(prompts.as_deref().unwrap_or(PROMPTS));
                let prompt = prompt.as_deref().unwrap_or(NEUTRAL_PROMPT);
                let opts = ScoreOptions { prompt, amplification, lens_k, corpus: &corpus, max_examples: 100 };
                // One pass over the corpus: the input scores' passages also feed the side effects' tallies and norms.
                let mut tally = Tally::new(&features, &model.net.device);
                let (scores, norms) = feature_scores_and_norms(model, sae, &features, &opts, Some(&mut tally)).await?;
                let side = side_effects(model, sae, &features, tally, &norms, &prompts, strength, lens_k).await?;
                Ok(Response::Features { hook: sae.cfg.hook_name.clone(), scores, side_effects: side })
            }
            Request::Dashboards { features, corpus, passages, k } => {
                let (model, sae) = (model()?, self.sae()?);
                let corpus = corpus_passages(corpus.as_deref().unwrap_or(CORPUS));
                let opts = DashboardOptions { corpus: &corpus, passages, bins: 30, k };
                let dashboards = feature_dashboards(model, sae, &features, &opts).await?;
                Ok(Response::Dashboards { hook: sae.cfg.hook_name.clone(), dashboards })
            }
            Request::SearchFeatures { text, top } => {
                let (model, sae) = (model()?, self.sae()?);
                let text = features_on_text(model, sae, &text, top).await?;
                Ok(Response::TextFeatures { hook: sae.cfg.hook_name.clone(), text })
            }
        }
    }

    /// One steering as a [d_model] direction and its hook: a vector × its coefficient, or the features' decoder
    /// rows × their strengths at the SAE's hook. Position-aligned (ActAdd) vectors have no single direction.
    async fn direction(&self, steering: &Steering) -> Result<(String, Vec<f32>)> {
        match steering {
            Steering::Vector { hook, values, rows: None, coef } => {
                Ok((hook.clone(), values.iter().map(|v| v * coef).collect()))
            }
            Steering::Vector { rows: Some(_), .. } => Err(Error::invalid(
                "a position-aligned (ActAdd) vector has one row per position: score a [d_model] vector or features",
            )),
            Steering::Features { features } => {
                let sae = self.sae()?;
                Ok((sae.cfg.hook_name.clone(), sae.feature_direction(features).await?))
            }
        }
    }

    async fn interventions(&self, steering: &[Steering]) -> Result<Vec<Intervention>> {
        let model = self.model()?;
        let mut out = Vec::new();
        for s in steering {
            out.push(match s {
                Steering::Vector { hook, values, rows: None, coef } => intervention(model, hook, values, *coef, 0)?,
                Steering::Vector { hook, values, rows: Some(_), coef } => {
                    aligned_intervention(model, hook, values, *coef, 0)?
                }
                Steering::Features { .. } => {
                    let (hook, direction) = self.direction(s).await?;
                    intervention(model, &hook, &direction, 1.0, 0)?
                }
            });
        }
        Ok(out)
    }
}

fn no_model() -> Error {
    Error::invalid("no model is loaded")
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
