//! The science commands: steerability sweeps (and, below, the SAE decomposition diagnostics).

use clap::Args;
use std::path::PathBuf;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::files::{read_bytes, read_text};
use steerlab::model::Model;
use steerlab::steer::dataset::Dataset;
use steerlab::steer::propensity::{SteerabilityCurve, layer_sweep, norm, prepare, steerability};
use steerlab::steer::vector::SteeringVector;
use steerlab::{Error, Result};

#[derive(Args)]
pub struct SteerabilityArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// Held-out A/B items (JSON array or JSONL of {"question", "answer_matching_behavior", ...}).
    #[arg(long)]
    eval: PathBuf,
    /// A steering vector to evaluate (its metadata names the hook unless --hook does).
    #[arg(long, conflicts_with_all = ["pairs", "layers"])]
    vector: Option<PathBuf>,
    #[arg(long, requires = "vector")]
    hook: Option<String>,
    /// Training dataset (pairs or A/B items): a CAA vector at blocks.L.hook_resid_pre for each of --layers.
    #[arg(long, required_unless_present = "vector")]
    pairs: Option<PathBuf>,
    /// Layers to sweep (default: all).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "-2,-1,0,1,2", allow_negative_numbers = true)]
    multipliers: Vec<f32>,
    /// Also write the curves as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn steerability_cmd(a: SteerabilityArgs) -> Result<()> {
    let device = pollster::block_on(init_device(a.device))?;
    let model = Model::from_dir(&a.model, &device)?;
    let items = match load_dataset(&a.eval)? {
        Dataset::Ab(items) => items,
        Dataset::Pairs(_) => {
            return Err(Error::file(a.eval.display().to_string(), "--eval needs A/B items, not contrastive pairs"));
        }
    };
    let prompts = prepare(&model, &items)?;
    let rows: Vec<(f32, SteerabilityCurve)> = if let Some(path) = &a.vector {
        let sv = SteeringVector::from_safetensors(&read_bytes(path)?, &path.display().to_string())?;
        let hook = a.hook.clone().or_else(|| sv.metadata.get("hook").cloned()).ok_or_else(|| {
            Error::file(path.display().to_string(), "no `hook` in its metadata: name one with --hook")
        })?;
        let curve = pollster::block_on(steerability(&model, &prompts, &hook, &sv.values, &a.multipliers))?;
        vec![(norm(&sv.values), curve)]
    } else {
        let path = a.pairs.as_ref().expect("clap requires --pairs without --vector");
        let train = load_dataset(path)?.pairs()?;
        let layers = if a.layers.is_empty() { (0..model.cfg().n_layers).collect() } else { a.layers.clone() };
        pollster::block_on(layer_sweep(&model, &train, &prompts, &layers, &a.multipliers))?
            .into_iter()
            .map(|r| (r.vector_norm, r.curve))
            .collect()
    };
    print_curves(&rows, items.len());
    if let Some(path) = &a.json {
        let curves: Vec<_> = rows.iter().map(|(n, c)| serde_json::json!({"vector_norm": n, "curve": c})).collect();
        write_json(path, &serde_json::json!({ "model": model.name, "items": items.len(), "curves": curves }))?;
    }
    Ok(())
}

fn print_curves(rows: &[(f32, SteerabilityCurve)], n_items: usize) {
    let Some((_, first)) = rows.first() else { return };
    print!("{:<28} {:>9} {:>12} {:>7}", "hook", "‖vector‖", "steerability", "anti");
    for m in &first.multipliers {
        print!(" {:>8}", format!("p@{m}"));
    }
    println!();
    for (n, c) in rows {
        print!("{:<28} {n:>9.3} {:>12.4} {:>6.0}%", c.hook, c.steerability, 100.0 * c.anti_steerable_fraction);
        for p in &c.mean_p_matching {
            print!(" {p:>8.3}");
        }
        println!();
    }
    println!(
        "(steerability: slope of the mean logit difference against the multiplier, over {n_items} A/B items; \
         anti: items whose own slope is negative; p@m: mean p(matching) at multiplier m)"
    );
}

pub fn load_dataset(path: &std::path::Path) -> Result<Dataset> {
    Dataset::parse(&read_text(path)?, &path.display().to_string())
}

pub fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| Error::file(path.display().to_string(), e))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
