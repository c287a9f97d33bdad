//! The science commands: steerability sweeps (and, below, the SAE decomposition diagnostics).

use clap::Args;
use std::path::{Path, PathBuf};
use steerlab::device::{DeviceChoice, init_device};
use steerlab::files::{read_bytes, read_text};
use steerlab::model::Model;
use steerlab::stats::norm;
use steerlab::steer::dataset::Dataset;
use steerlab::steer::propensity::{Measure, Probes, SteerabilityCurve, layer_sweep, steerability};
use steerlab::steer::vector::SteeringVector;
use steerlab::{Error, Result};

#[derive(Args)]
pub struct SteerabilityArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// Held-out data: A/B items (JSON array or JSONL of {"question", "answer_matching_behavior", ...}),
    /// measured by the answer letters' logit difference, or contrastive pairs (JSONL of {"positive",
    /// "negative"}), measured by the log-probability difference of the two texts.
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
    let model = crate::precision::load_model(&a.model, &device)?;
    let probes = Probes::prepare(&model, &load_dataset(&a.eval)?)?;
    let rows: Vec<(f32, SteerabilityCurve)> = if let Some(path) = &a.vector {
        let sv = load_vector(path)?;
        let hook = vector_hook(&sv, a.hook.as_deref(), path)?;
        let values = sv.single(&path.display().to_string(), "steerability")?;
        let curve = pollster::block_on(steerability(&model, &probes, &hook, values, &a.multipliers))?;
        vec![(norm(values), curve)]
    } else {
        let path = a.pairs.as_ref().expect("clap requires --pairs without --vector");
        let train = load_dataset(path)?.pairs()?;
        let layers = if a.layers.is_empty() { (0..model.cfg().n_layers).collect() } else { a.layers.clone() };
        pollster::block_on(layer_sweep(&model, &train, &probes, &layers, &a.multipliers))?
            .into_iter()
            .map(|r| (r.vector_norm, r.curve))
            .collect()
    };
    print_curves(&rows, probes.len());
    if let Some(path) = &a.json {
        let curves: Vec<_> = rows.iter().map(|(n, c)| serde_json::json!({"vector_norm": n, "curve": c})).collect();
        write_json(path, &serde_json::json!({ "model": model.name, "items": probes.len(), "curves": curves }))?;
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
    let (what, items, p) = match first.measure {
        Measure::AbLogitDiff => ("logit difference (matching − other answer)", "A/B items", "p(matching answer)"),
        Measure::PairLogProbDiff => (
            "log-probability difference (positive − negative text)",
            "pairs",
            "p(positive) / (p(positive) + p(negative))",
        ),
    };
    println!(
        "(steerability: slope of the mean {what} against the multiplier, over {n_items} {items}; anti: items whose \
         own slope is negative; p@m: mean {p} at multiplier m)"
    );
}

pub fn load_dataset(path: &Path) -> Result<Dataset> {
    Dataset::parse(&read_text(path)?, &path.display().to_string())
}

/// The hook to steer `sv` at: `given`, else the one its metadata names.
pub fn vector_hook(sv: &SteeringVector, given: Option<&str>, path: &Path) -> Result<String> {
    given
        .or(sv.hook())
        .map(str::to_string)
        .ok_or_else(|| Error::file(path.display().to_string(), "no `hook` in its metadata: name one with --hook"))
}

/// An SAE feature and strength written `INDEX:STRENGTH`, for `--feature`.
pub fn parse_feature(text: &str) -> Result<(usize, f32)> {
    steerlab::sae::edit::parse_feature_strength(text).map_err(|e| Error::invalid(format!("--feature {e}")))
}

/// What `--sae DIR --feature INDEX:STRENGTH ...` adds: the SAE's hook and Σ strength × decoder row, checked
/// against the model.
pub fn feature_direction(
    dir: &Path,
    features: &[String],
    model: &Model,
    device: &burn::tensor::Device,
) -> Result<(String, Vec<f32>)> {
    let sae = crate::sae_id::load(dir, device)?;
    sae.check_fits(model.cfg())?;
    let features = features.iter().map(|f| parse_feature(f)).collect::<Result<Vec<_>>>()?;
    Ok((sae.cfg.hook_name.clone(), pollster::block_on(sae.feature_direction(&features))?))
}

pub fn load_vector(path: &Path) -> Result<SteeringVector> {
    SteeringVector::from_safetensors(&read_bytes(path)?, &path.display().to_string())
}

/// A file of passages or prompts, one a line, as text; a file with none is named here (the engine would only
/// say the list is empty).
pub fn passages_file(path: &Path) -> Result<String> {
    let text = read_text(path)?;
    if steerlab::steer::builtin::corpus_passages(&text).is_empty() {
        return Err(Error::file(path.display().to_string(), "no non-empty line"));
    }
    Ok(text)
}

pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| Error::file(path.display().to_string(), e))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[derive(Args)]
pub struct DecomposeArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// SAE directory (cfg.json, sae_weights.safetensors) or SAELens id (e.g.
    /// gpt2-small-res-jb/blocks.6.hook_resid_pre, see `steerlab saes`) reading the vector's hook.
    #[arg(long)]
    sae: PathBuf,
    /// Steering vector (safetensors `steering_vector`), read at the SAE's hook; an ActAdd vector ([k, d_model]) is
    /// decomposed summed over its positions, and each position's row is set against encode(0).
    #[arg(long)]
    vector: PathBuf,
    /// Held-out A/B items or contrastive pairs: adds steerability to the table.
    #[arg(long)]
    eval: Option<PathBuf>,
    /// The pairs the vector came from: adds their activations to the default-component strips.
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Background text, one passage a line (default: the built-in corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    #[arg(long, value_delimiter = ',', default_value = "-2,-1,0,1,2", allow_negative_numbers = true)]
    multipliers: Vec<f32>,
    /// Feature counts for top-k subsets and gradient pursuit.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    ks: Vec<usize>,
    /// Features listed per view.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// A table row of the vector restricted to these features ("12,345": its least-squares fit by their decoder
    /// rows); repeat for more rows.
    #[arg(long)]
    keep: Vec<String>,
    /// A table row of the vector minus what these features carry (the vector less that fit); repeat for more.
    #[arg(long)]
    remove: Vec<String>,
    /// Contrastive pairs (or A/B items) of another behaviour: its CAA vector at the SAE's hook joins a table of
    /// vectors against encode(0) (Mayne et al.'s Table 1); repeat for more.
    #[arg(long)]
    compare: Vec<PathBuf>,
    /// Also write everything as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn decompose_cmd(a: DecomposeArgs) -> Result<()> {
    use steerlab::analysis::bias::vectors_vs_zero;
    use steerlab::analysis::{DecomposeOptions, decompose};
    use steerlab::sae::edit::{EditMode, FeatureEdit, parse_features};
    use steerlab::steer::builtin::{CORPUS, corpus_passages};
    use steerlab::steer::caa::caa_vector;

    let device = pollster::block_on(init_device(a.device))?;
    let model = crate::precision::load_model(&a.model, &device)?;
    let sae = crate::sae_id::load(&a.sae, &device)?;
    let sv = load_vector(&a.vector)?;
    if let Some(hook) = sv.metadata.get("hook").filter(|h| **h != sae.cfg.hook_name) {
        return Err(Error::file(
            a.vector.display().to_string(),
            format!("read at {hook}, but the SAE reads {}", sae.cfg.hook_name),
        ));
    }
    let corpus = corpus_passages(&match &a.corpus {
        Some(path) => read_text(path)?,
        None => CORPUS.to_string(),
    });
    let pairs = a.pairs.as_deref().map(|p| load_dataset(p)?.pairs()).transpose()?;
    let eval = a.eval.as_deref().map(|p| Probes::prepare(&model, &load_dataset(p)?)).transpose()?;
    let edit =
        |mode, text: &String| -> Result<FeatureEdit> { Ok(FeatureEdit { features: parse_features(text)?, mode }) };
    let edits = (a.keep.iter().map(|t| edit(EditMode::Keep, t)))
        .chain(a.remove.iter().map(|t| edit(EditMode::Remove, t)))
        .collect::<Result<Vec<_>>>()?;
    let opts = DecomposeOptions {
        corpus: &corpus,
        pairs: pairs.as_deref(),
        eval: eval.as_ref(),
        multipliers: &a.multipliers,
        ks: &a.ks,
        top: a.top,
        edits: &edits,
    };
    // An ActAdd vector ([k, d_model], one row per position) is decomposed summed over its positions, as one
    // vector added at every position; each position's own row is set against encode(0) below.
    let d_in = sae.cfg.d_in;
    let positions: Vec<(String, Vec<f32>)> = match sv.rows {
        Some(_) => sv.values.chunks(d_in).enumerate().map(|(i, r)| (format!("position {i}"), r.to_vec())).collect(),
        None => Vec::new(),
    };
    let summed: Vec<f32> = match sv.rows {
        Some(_) => (0..d_in).map(|j| positions.iter().map(|(_, r)| r.get(j).copied().unwrap_or(0.0)).sum()).collect(),
        None => sv.values.clone(),
    };
    if let Some(k) = sv.rows {
        println!("An ActAdd vector of {k} positions: the diagnostics below decompose their sum.\n");
    }
    let d = pollster::block_on(decompose(&model, &sae, &summed, &opts))?;
    print_decomposition(&d);
    let name = if sv.rows.is_some() { "summed over positions" } else { "the vector" };
    let mut vectors = vec![(name.to_string(), summed.clone())];
    vectors.extend(positions);
    for path in &a.compare {
        let pairs = load_dataset(path)?.pairs()?;
        vectors.push((path.display().to_string(), pollster::block_on(caa_vector(&model, &pairs, &sae.cfg.hook_name))?));
    }
    let vs_zero = pollster::block_on(vectors_vs_zero(&sae, &vectors, a.top))?;
    if vectors.len() > 1 {
        println!(
            "\nVectors against encode(0) (top-{} overlap: share of encode(SV)'s top features that encode(0) has)",
            a.top
        );
        println!("   {:>9} {:>16} {:>15}  vector", "‖SV‖", "cos with enc(0)", "top-k overlap");
        for r in &vs_zero {
            println!("   {:>9.3} {:>16.3} {:>15.2}  {}", r.norm, r.cosine_with_zero, r.top_k_overlap, r.name);
        }
    }
    if let Some(path) = &a.json {
        let mut value = serde_json::to_value(&d).map_err(|e| Error::invalid(e.to_string()))?;
        value["vectors_vs_zero"] = serde_json::to_value(&vs_zero).map_err(|e| Error::invalid(e.to_string()))?;
        write_json(path, &value)?;
    }
    Ok(())
}

fn print_decomposition(d: &steerlab::analysis::Decomposition) {
    let n = &d.norms;
    println!(
        "1. Norms at {}: steering vector {:.3}; activations median {:.3}, mean {:.3} over {} tokens",
        d.hook, n.vector_norm, n.median, n.mean, n.tokens
    );
    println!("   the median activation is {:.1}x the steering vector's norm\n", n.median_over_vector);

    let b = &d.bias;
    println!("2. Encoder bias: top features of encode(s * SV) next to encode(0)");
    print!("   {:>8} {:>10}", "feature", "encode(0)");
    for s in &b.scales {
        print!(" {:>12}", format!("s = {s:.1}"));
    }
    println!();
    for f in b.features.iter().take(15) {
        print!("   {:>8} {:>10.3}", f.feature, f.zero);
        f.scaled.iter().for_each(|v| print!(" {v:>12.3}"));
        println!();
    }
    for (i, s) in b.scales.iter().enumerate() {
        println!(
            "   s = {s:.1}: cos(encode(s * SV), encode(0)) = {:.3}; {:.0}% of its top {} are encode(0)'s",
            b.cosine_with_zero[i],
            100.0 * b.top_k_overlap[i],
            b.k
        );
    }

    println!("\n3. Default components: projection on each feature's encoder direction (mean)");
    println!("   {:>8} {:>10} {:>10} {:>10} {:>10}", "feature", "corpus", "positive", "negative", "vector");
    let mean_of =
        |s: &Option<steerlab::analysis::defaults::Strip>| s.as_ref().map_or("-".into(), |s| format!("{:.3}", s.mean));
    for c in &d.defaults {
        println!(
            "   {:>8} {:>10.3} {:>10} {:>10} {:>10.3}",
            c.feature,
            c.corpus.mean,
            mean_of(&c.positive),
            mean_of(&c.negative),
            c.vector
        );
    }

    let p = &d.projections;
    let [lo, hi] = p.negative_share_null;
    println!(
        "\n4. Signed projections on decoder directions ({:.0}% of the squared projection is negative; random \
         directions: 50% on average, {:.0}–{:.0}% for 95% of them)",
        100.0 * p.negative_share,
        100.0 * lo,
        100.0 * hi
    );
    println!("   {:>8} {:>10} {:>10} {:>10} {:>10}  ", "feature", "decoder", "encoder", "pre-act", "act");
    for r in &p.top {
        let mark = if r.dropped && r.decoder < 0.0 {
            "dropped (negative)"
        } else if r.dropped {
            "dropped"
        } else {
            ""
        };
        println!(
            "   {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3}  {mark}",
            r.feature, r.decoder, r.encoder, r.pre_activation, r.activation
        );
    }
    for q in &p.partners {
        println!(
            "   feature {} ({:.3}) has anti-aligned partner {} (cos {:.3}) that {} ({:.3})",
            q.feature,
            q.decoder,
            q.partner,
            q.cosine,
            if q.fires { "fires" } else { "stays off" },
            q.partner_activation
        );
        if let (Some([fp, gp]), Some([fn_, gn])) = (q.on_positive, q.on_negative) {
            println!(
                "     on the positive prompts: feature {fp:.3}, partner {gp:.3}; on the negative: feature {fn_:.3}, \
                 partner {gn:.3}"
            );
        }
    }

    println!("\n5. Steerability of the vector and its decompositions");
    println!(
        "   {:<44} {:>8} {:>8} {:>7} {:>12} {:>9}",
        "method", "features", "norm", "cos", "steerability", "relative"
    );
    for r in &d.table {
        let opt = |v: Option<f32>, p: usize| v.map_or("-".into(), |v| format!("{v:.prec$}", prec = p));
        println!(
            "   {:<44} {:>8} {:>8.3} {:>7.3} {:>12} {:>9}",
            r.method,
            r.features.map_or("-".into(), |f| f.to_string()),
            r.norm,
            r.cosine,
            opt(r.steerability, 4),
            opt(r.relative, 2)
        );
    }
}
