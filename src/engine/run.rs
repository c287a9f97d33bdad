//! The engine: the models and SAE a session has loaded, and the one function that runs a `Request` on them.

use super::{DatasetRef, Event, Loaded, Reply, Request, Response, Steering, Stop, load_dataset};
use crate::analysis::actadd::{edit_rows, position_features};
use crate::analysis::bias::vectors_vs_zero;
use crate::analysis::dashboard::{DashboardOptions, feature_dashboards, features_on_text};
use crate::analysis::features::{NEUTRAL_PROMPT, ScoreOptions, feature_scores_and_norms, features_promoting};
use crate::analysis::population::{PopulationOptions, population};
use crate::analysis::side_effects::{Tally, side_effects};
use crate::analysis::{DecomposeOptions, decompose};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::batch::Limits;
use crate::model::generate::{generate, generate_rows};
use crate::model::hooks::{Hooks, Intervention};
use crate::sae::Sae;
use crate::steer::actadd::actadd_vector;
use crate::steer::apply::{aligned_intervention, intervention};
use crate::steer::builtin::{CORPUS, PROMPTS, corpus_passages};
use crate::steer::caa::caa_vector;
use crate::steer::propensity::{Probes, layer_sweep, steerability};
use crate::steer::score::{ScoreSpec, parse_concept, steer_score};

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
            Ok(req) => Reply::of(self.handle(req, stop, on_event).await),
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
                // Checked before the tally's index tensor is built: burn cannot hold an index past i32 and panics.
                sae.check_features(&features)?;
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
