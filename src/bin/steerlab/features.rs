//! `steerlab features`: which SAE features steer (output and input scores, Arad et al. 2025) and what else
//! they move (side-effect predictors against measured effect stability and collateral spread, Duan 2026).

use clap::Args;
use std::path::PathBuf;
use steerlab::analysis::features::{FeatureScore, NEUTRAL_PROMPT};
use steerlab::analysis::side_effects::SideEffects;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::engine::{Engine, Request, Response};
use steerlab::{Error, Result};

#[derive(Args)]
pub struct FeaturesArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// SAE directory (SAELens, sparsify or Gemma Scope layout) or SAELens id (`steerlab saes`) reading a hook of
    /// the model.
    #[arg(long)]
    sae: PathBuf,
    /// Features to score, e.g. 12,345,6789.
    #[arg(long, value_delimiter = ',', required_unless_present = "promoting")]
    features: Vec<usize>,
    /// Instead of --features: the --count features whose logit lens promotes this token most (e.g. " wedding").
    #[arg(long, conflicts_with = "features")]
    promoting: Option<String>,
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Background text, one passage a line (default: the built-in corpus): input scores and predictors.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Contexts to steer on, one a line (default: the built-in prompts): measured side effects.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// The prompt the output score amplifies each feature on.
    #[arg(long, default_value = NEUTRAL_PROMPT)]
    prompt: String,
    /// Output score: multiple of the largest feature activation added to the feature.
    #[arg(long, default_value_t = 10.0)]
    amplification: f32,
    /// Logit-lens tokens per feature.
    #[arg(long, default_value_t = 20)]
    lens_k: usize,
    /// Side effects: steering strength (default: half the median activation norm at the hook).
    #[arg(long, allow_negative_numbers = true)]
    strength: Option<f32>,
    /// Also write everything as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

#[derive(serde::Serialize)]
struct Report {
    hook: String,
    scores: Vec<FeatureScore>,
    side_effects: SideEffects,
}

pub fn run(a: FeaturesArgs) -> Result<()> {
    let device = pollster::block_on(init_device(a.device))?;
    let mut engine = Engine::default();
    engine.set_model(crate::precision::load_model(&a.model, &device)?);
    engine.set_sae(crate::sae_id::load(&a.sae, &device)?)?;
    let lines = |path: &Option<PathBuf>| path.as_deref().map(crate::science::passages_file).transpose();
    let request = Request::Features {
        features: a.features.clone(),
        promoting: a.promoting.clone(),
        count: a.count,
        amplification: a.amplification,
        lens_k: a.lens_k,
        strength: a.strength,
        prompt: Some(a.prompt.clone()),
        corpus: lines(&a.corpus)?,
        prompts: lines(&a.prompts)?,
    };
    let Response::Features { hook, scores, side_effects } =
        pollster::block_on(engine.handle(request, steerlab::engine::never(), &mut |_| {}))?
    else {
        unreachable!("a features request gets a features response")
    };
    let report = Report { hook, scores, side_effects };
    print_report(&report);
    if let Some(path) = &a.json {
        let value = serde_json::to_value(&report).map_err(|e| Error::invalid(e.to_string()))?;
        crate::science::write_json(path, &value)?;
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!("Feature scores at {} (Arad et al. 2025), best output score first", r.hook);
    println!(
        "   {:>8} {:>12} {:>6} {:>10} {:>8} {:>8}  logit lens",
        "feature", "output", "rank", "p(lens)", "input", "passages"
    );
    for s in &r.scores {
        let lens: Vec<String> = s.lens.iter().take(6).map(|t| format!("{:?}", t.text)).collect();
        println!(
            "   {:>8} {:>12.6} {:>6} {:>10.6} {:>8} {:>8}  {}",
            s.feature,
            s.output_score,
            s.output_rank,
            s.output_prob,
            s.input_score.map_or("-".into(), |v| format!("{v:.3}")),
            s.examples,
            lens.join(" ")
        );
    }
    let se = &r.side_effects;
    println!(
        "\nSide effects of steering with each feature at strength {:.3} (our own measures after Duan 2026, whose \
         formulas are not public)",
        se.strength
    );
    println!(
        "   {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>9} | {:>9} {:>8} {:>8} {:>10} {:>10}",
        "feature",
        "max cos",
        "neigh",
        "firing",
        "mean act",
        "co-act",
        "footprint",
        "effect",
        "std",
        "cv",
        "collateral",
        "downstream"
    );
    for row in &se.rows {
        let (p, m) = (&row.predictors, &row.measured);
        println!(
            "   {:>8} {:>8.3} {:>6} {:>8.4} {:>8.3} {:>8.3} {:>9.1} | {:>9.3} {:>8.3} {:>8.3} {:>10.3} {:>10.3}",
            row.feature,
            p.max_decoder_cosine,
            p.neighbours,
            p.firing_rate,
            p.mean_activation,
            p.max_coactivation,
            p.logit_footprint,
            m.effect_mean,
            m.effect_std,
            m.effect_cv,
            m.collateral_spread,
            m.downstream_spread
        );
    }
    println!("\n   How each predictor ranked the features (Spearman correlation):");
    println!("   {:<20} {:>14} {:>14} {:>14}", "predictor", "instability", "collateral", "downstream");
    let opt = |v: Option<f32>| v.map_or("-".into(), |v| format!("{v:+.3}"));
    for c in &se.checks {
        println!(
            "   {:<20} {:>14} {:>14} {:>14}",
            c.predictor,
            opt(c.vs_instability),
            opt(c.vs_collateral),
            opt(c.vs_downstream)
        );
    }
}
