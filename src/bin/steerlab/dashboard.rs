//! `steerlab dashboard`: feature dashboards computed locally (top-activating passages with each token's
//! activation, the activation histogram, the logit lens both ways, decoder-cosine neighbours) and the features
//! most active on a text, for any SAE: Neuronpedia's pages, offline and for SAEs it does not have.

use clap::Args;
use std::path::PathBuf;
use steerlab::Result;
use steerlab::analysis::dashboard::{FeatureDashboard, TextFeatures};
use steerlab::device::{DeviceChoice, init_device};
use steerlab::engine::{Engine, Request, Response};

#[derive(Args)]
pub struct DashboardArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// SAE directory or SAELens id reading a hook of the model.
    #[arg(long)]
    sae: PathBuf,
    /// Features to show, e.g. 12,345 (at most 32).
    #[arg(long, value_delimiter = ',', required_unless_present = "search")]
    features: Vec<usize>,
    /// Instead of --features: the features most active on this text, token by token.
    #[arg(long, conflicts_with = "features")]
    search: Option<String>,
    /// Background text, one passage a line (default: the built-in corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Top-activating passages per feature.
    #[arg(long, default_value_t = 10)]
    passages: usize,
    /// Logit-lens tokens each way, decoder neighbours, and features per token when searching.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Also write everything as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(a: DashboardArgs) -> Result<()> {
    let device = pollster::block_on(init_device(a.device))?;
    let mut engine = Engine::default();
    engine.set_model(crate::precision::load_model(&a.model, &device)?);
    engine.set_sae(crate::sae_id::load(&a.sae, &device)?)?;
    let request = match &a.search {
        Some(text) => Request::SearchFeatures { text: text.clone(), top: a.k },
        None => Request::Dashboards {
            features: a.features.clone(),
            corpus: a.corpus.as_deref().map(crate::science::passages_file).transpose()?,
            passages: a.passages,
            k: a.k,
        },
    };
    let response = pollster::block_on(engine.handle(request, steerlab::engine::never(), &mut |_| {}))?;
    let value = match &response {
        Response::Dashboards { hook, dashboards } => {
            dashboards.iter().for_each(|d| print_dashboard(hook, d));
            serde_json::json!({ "hook": hook, "dashboards": dashboards })
        }
        Response::TextFeatures { hook, text } => {
            print_search(hook, text);
            serde_json::json!({ "hook": hook, "text": text })
        }
        _ => unreachable!("a dashboard or search request gets its own response"),
    };
    if let Some(path) = &a.json {
        crate::science::write_json(path, &value)?;
    }
    Ok(())
}

fn print_dashboard(hook: &str, d: &FeatureDashboard) {
    let h = &d.histogram;
    println!("Feature {} at {hook}: fires on {} of {} tokens", d.feature, h.fired, h.tokens);
    let lens = |tokens: &[steerlab::analysis::features::LensToken]| {
        tokens.iter().map(|t| format!("{:?}", t.text)).collect::<Vec<_>>().join(" ")
    };
    println!("  promotes   {}", lens(&d.promoted));
    println!("  suppresses {}", lens(&d.suppressed));
    let near: Vec<String> = d.neighbours.iter().map(|n| format!("#{} ({:.3})", n.feature, n.cosine)).collect();
    println!("  nearest by decoder cosine: {}", near.join(", "));
    if let (Some(first), Some(last)) = (h.edges.first(), h.edges.last()) {
        let peak = h.counts.iter().copied().max().unwrap_or(1).max(1);
        println!("  activations where it fires, {first:.3} to {last:.3} (empty bins left out):");
        for (i, &c) in h.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let bar = "#".repeat((c as usize * 40).div_ceil(peak as usize));
            println!("    {:>9.3} {:>7} {bar}", h.edges[i], c);
        }
    }
    println!("  top-activating passages ([token] the strongest, {{token}} where it fires):");
    for p in &d.passages {
        let text: String = p
            .tokens
            .iter()
            .zip(&p.acts)
            .enumerate()
            .map(|(i, (t, &a))| match (i == p.at, a > 0.0) {
                (true, _) => format!("[{t}]"),
                (false, true) => format!("{{{t}}}"),
                (false, false) => t.clone(),
            })
            .collect();
        let dots = |more: bool| if more { "…" } else { "" };
        println!("    {:>9.3}  {}{}{}", p.max, dots(p.start > 0), text.replace('\n', "⏎"), dots(p.more));
    }
    println!();
}

fn print_search(hook: &str, t: &TextFeatures) {
    println!("Features most active on the text at {hook} (after its first token):");
    for f in &t.top {
        println!("  #{:<7} {:>9.3} on {:?}", f.feature, f.act, t.tokens[f.token].text);
    }
    println!("Token by token:");
    for tok in &t.tokens {
        let fs: Vec<String> = tok.features.iter().map(|f| format!("#{} {:.2}", f.feature, f.act)).collect();
        println!("  {:>14}  {}", format!("{:?}", tok.text), fs.join(", "));
    }
}
