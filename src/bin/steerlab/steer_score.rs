//! `steerlab steer-score`: generation-level scores of a steering vector or of SAE features (src/steer/score.rs).

use crate::science::{feature_direction, load_vector, vector_hook, write_json};
use clap::Args;
use std::path::PathBuf;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::files::read_text;
use steerlab::steer::builtin::corpus_passages;
use steerlab::steer::score::{ScoreSpec, parse_concept, steer_score};
use steerlab::{Error, Result};

#[derive(Args)]
pub struct SteerScoreArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// A steering vector ([d_model]; its metadata names the hook unless --hook does), added × each strength.
    #[arg(long, conflicts_with = "sae", required_unless_present = "sae")]
    vector: Option<PathBuf>,
    #[arg(long, requires = "vector")]
    hook: Option<String>,
    /// An SAE (directory or SAELens id) whose --feature INDEX:STRENGTH decoder rows (summed) are added × each strength at its hook.
    #[arg(long, requires = "feature")]
    sae: Option<PathBuf>,
    #[arg(long, requires = "sae")]
    feature: Vec<String>,
    /// Prompts, one a line.
    #[arg(long)]
    prompts: PathBuf,
    /// Concept words, one a line: the concept score is the share of generated words among them.
    #[arg(long)]
    concept: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "0,4,8", allow_negative_numbers = true)]
    strengths: Vec<f32>,
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Also write every strength's scores and generations (prompt_tokens, tokens, text) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(a: SteerScoreArgs) -> Result<()> {
    let device = pollster::block_on(init_device(a.device))?;
    let model = crate::precision::load_model(&a.model, &device)?;
    let (hook, direction) = match (&a.vector, &a.sae) {
        (Some(path), _) => {
            let sv = load_vector(path)?;
            let hook = vector_hook(&sv, a.hook.as_deref(), path)?;
            (hook, sv.single(&path.display().to_string(), "steer-score")?.to_vec())
        }
        (None, Some(dir)) => feature_direction(dir, &a.feature, &model, &device)?,
        (None, None) => return Err(Error::invalid("give --vector or --sae with --feature")),
    };
    let prompts = corpus_passages(&read_text(&a.prompts)?);
    let concept = parse_concept(&read_text(&a.concept)?)
        .map_err(|e| Error::file(a.concept.display().to_string(), e.to_string()))?;
    let spec = ScoreSpec {
        hook: &hook,
        direction: &direction,
        strengths: &a.strengths,
        prompts: &prompts,
        concept: &concept,
        max_new_tokens: a.max_new_tokens,
    };
    let scores = pollster::block_on(steer_score(&model, &spec))?;
    println!("{:>9} {:>8} {:>10}  first continuation", "strength", "concept", "coherence");
    for s in &scores {
        let first = s.generations.first().map_or(String::new(), |g| g.text.replace('\n', " "));
        println!("{:>9} {:>8.3} {:>10.3}  {first}", s.strength, s.concept, s.coherence);
    }
    println!(
        "(concept: share of generated words that are concept words, mean over {} prompts; coherence: mean log p \
         per generated token under the unsteered model)",
        prompts.len()
    );
    if let Some(path) = &a.json {
        let value = serde_json::json!({ "model": model.name, "hook": hook, "strengths": scores });
        write_json(path, &value)?;
    }
    Ok(())
}
