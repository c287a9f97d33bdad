//! `steerlab population`: Arad et al. 2025 across many features, at one or more layers (one SAE each): input ×
//! output scores of a sample of features, how often both are high, and how the top features by output score
//! steer text compared with the top ones by input score and random ones.

use clap::Args;
use std::path::PathBuf;
use steerlab::analysis::population::Population;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::engine::{Engine, Request, Response};
use steerlab::{Error, Result};

#[derive(Args)]
pub struct PopulationArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// SAE directory or SAELens id reading a hook of the model; repeat for several layers.
    #[arg(long, required = true)]
    sae: Vec<PathBuf>,
    /// Features to score per SAE, drawn at random (every feature when at least its width).
    #[arg(long, default_value_t = 256)]
    sample: usize,
    /// Seed of the sample and of the random group.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Features per group (top by output score, top by input score, random) whose steering is judged by its
    /// text; 0 scores only.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Steering strengths, as multiples of the median activation norm at the SAE's hook.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1")]
    strengths: Vec<f32>,
    /// Prompts to steer, one a line (default: the built-in prompts).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Background text, one passage a line (default: the built-in corpus): input scores and the activation norm.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Tokens generated per prompt and strength.
    #[arg(long, default_value_t = 12)]
    max_new_tokens: usize,
    /// Also write every layer's population (points, groups, generations) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(a: PopulationArgs) -> Result<()> {
    let device = pollster::block_on(init_device(a.device))?;
    let mut engine = Engine::default();
    engine.set_model(crate::precision::load_model(&a.model, &device)?);
    let lines = |path: &Option<PathBuf>| path.as_deref().map(crate::science::passages_file).transpose();
    let (prompts, corpus) = (lines(&a.prompts)?, lines(&a.corpus)?);
    let mut all = Vec::new();
    for dir in &a.sae {
        engine.set_sae(crate::sae_id::load(dir, &device)?)?;
        let request = Request::Population {
            sample: a.sample,
            seed: a.seed,
            top: a.top,
            strengths: a.strengths.clone(),
            prompts: prompts.clone(),
            corpus: corpus.clone(),
            amplification: 10.0,
            lens_k: 20,
            max_new_tokens: a.max_new_tokens,
        };
        let Response::Population { population } =
            pollster::block_on(engine.handle(request, steerlab::engine::never(), &mut |_| {}))?
        else {
            unreachable!("a population request gets a population response")
        };
        print_population(&population);
        all.push(population);
    }
    if let Some(path) = &a.json {
        let value = serde_json::to_value(&all).map_err(|e| Error::invalid(e.to_string()))?;
        crate::science::write_json(path, &value)?;
    }
    Ok(())
}

fn print_population(p: &Population) {
    let c = &p.cooccurrence;
    println!(
        "Feature population at {} (Arad et al. 2025): {} of {} features scored, {} fired on a background passage",
        p.hook,
        p.points.len(),
        p.d_sae,
        c.scored
    );
    let opt = |v: Option<f32>| v.map_or("-".into(), |v| format!("{v:+.3}"));
    println!("   input vs output score, Spearman: {}", opt(c.spearman));
    println!(
        "   high (above the 75th percentile: output {:.4}, input {:.3}): output {:.1}%, input {:.1}%, both {:.1}% \
         (independence would give {:.1}%)",
        c.output_q75,
        c.input_q75,
        100.0 * c.high_output,
        100.0 * c.high_input,
        100.0 * c.high_both,
        100.0 * c.expected_both
    );
    if p.groups.is_empty() {
        return;
    }
    println!(
        "\n   Steering success judged by text (our own concept-gain × fluency stand-in for the paper's LLM judge; \
         strength unit: median activation norm {:.3}, unsteered coherence {:.3})",
        p.median_norm, p.unsteered_coherence
    );
    println!(
        "   {:<14} {:>8} {:>9} {:>8} {:>8} {:>9}  concept words",
        "group", "feature", "output", "input", "success", "strength"
    );
    for g in &p.groups {
        for f in &g.features {
            let best = f.strengths.iter().max_by(|a, b| a.success.total_cmp(&b.success));
            println!(
                "   {:<14} {:>8} {:>9.4} {:>8} {:>8.3} {:>9}  {}",
                g.name,
                f.feature,
                f.output_score,
                f.input_score.map_or("-".into(), |v| format!("{v:.3}")),
                f.success,
                best.map_or("-".into(), |b| format!("{:.2}", b.strength)),
                f.concept.iter().take(5).cloned().collect::<Vec<_>>().join(" ")
            );
        }
    }
    let mean = |name: &str| p.groups.iter().find(|g| g.name == name).map_or(0.0, |g| g.mean_success);
    let (out, inp, rnd) = (mean("output score"), mean("input score"), mean("random"));
    let ratio = |a: f32, b: f32| if b > 0.0 { format!("{:.2}×", a / b) } else { "-".into() };
    println!(
        "   mean success: by output score {out:.3}, by input score {inp:.3} ({}), random {rnd:.3} ({})\n",
        ratio(out, inp),
        ratio(out, rnd)
    );
}
