//! `steerlab bench --flow ...`: whole lab flows at GPT-2-small size — random weights written as a real
//! checkpoint, the real GPT-2 tokenizer, a random 24,576-feature SAE — timed from loading the files to the
//! result, side by side with a PyTorch + transformers script doing the same flow batched, in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use steerlab::analysis::{DecomposeOptions, decompose};
use steerlab::device::{DeviceChoice, Precision, init_device};
use steerlab::model::random::{GPT2_SMALL_CONFIG, random_checkpoint};
use steerlab::sae::Sae;
use steerlab::sae::random::RandomSae;
use steerlab::steer::builtin::{CORPUS, DATASETS, PROMPTS, corpus_passages};
use steerlab::steer::caa::caa_vector;
use steerlab::steer::dataset::{AbItem, Dataset};
use steerlab::steer::propensity::{Probes, layer_sweep, prepare};
use steerlab::{Error, Result};

const STEERABILITY_SCRIPT: &str = include_str!("../../../scripts/bench_steerability_torch.py");
const DECOMPOSE_SCRIPT: &str = include_str!("../../../scripts/bench_decompose_torch.py");
const FEATURES_SCRIPT: &str = include_str!("../../../scripts/bench_features_torch.py");
/// The real GPT-2 tokenizer, as the fixtures carry it: in the checkout the binary was built from, or (a release
/// binary taken to another machine, run from a checkout's root) under the current folder.
const TOKENIZER: &str = "tests/fixtures/models/gpt2-tiny/tokenizer.json";

fn read_tokenizer() -> Result<Vec<u8>> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(TOKENIZER);
    std::fs::read(&built).or_else(|_| std::fs::read(TOKENIZER)).map_err(|e| Error::file(TOKENIZER, e))
}

#[derive(Clone, Copy, PartialEq, Debug, clap::ValueEnum)]
pub enum Flow {
    /// CAA at layers 2, 4, 6 and 8 from the 24 built-in A/B items, then each layer's steerability over
    /// multipliers −2..2 on the same 24 items.
    Steerability,
    /// `steerlab decompose` with a 24,576-feature SAE at blocks.6.hook_resid_pre on the built-in data.
    Decompose,
    /// `steerlab features --promoting " love"`: output and input scores and side effects of 10 features.
    Features,
}

pub const LAYERS: [usize; 4] = [2, 4, 6, 8];
pub const MULTIPLIERS: [f32; 5] = [-2.0, -1.0, 0.0, 1.0, 2.0];
const D_SAE: usize = 24_576;
const SAE_HOOK: &str = "blocks.6.hook_resid_pre";

pub fn run(flow: Flow, device: DeviceChoice, python: &str) -> Result<()> {
    if crate::precision::current() != Precision::F32 {
        // The reference scripts' SAE and steering arithmetic is f32: a half-precision side by side would not be
        // the same work.
        return Err(Error::invalid("the --flow benches run in f32: drop --precision f16"));
    }
    let dir = std::env::temp_dir().join("steerlab-bench");
    eprintln!("writing the random GPT-2 small checkpoint and SAE under {} (once)...", dir.display());
    let files = BenchFiles::write(&dir)?;
    let items = corrigibility()?;
    let dev = pollster::block_on(init_device(device))?;

    eprintln!("running steerlab's {flow:?} flow on {device:?}...");
    let t = Instant::now();
    let ours = run_flow(flow, &files, &items, &dev)?;
    let ours_ms = t.elapsed().as_secs_f64() * 1e3;
    // On a GPU the first run also times each new kernel shape once (burn's autotune); a second run in the same
    // process shows the tuned figure.
    let again_ms = match device {
        DeviceChoice::Cpu => None,
        _ => {
            eprintln!("running it again, with the kernels tuned...");
            let t = Instant::now();
            run_flow(flow, &files, &items, &dev)?;
            Some(t.elapsed().as_secs_f64() * 1e3)
        }
    };

    eprintln!("running the PyTorch reference with {python}...");
    // On the same kind of device: CUDA when steerlab runs on a GPU and torch has it.
    let reference = torch(python, flow, &files, device != DeviceChoice::Cpu);
    let what = match flow {
        Flow::Steerability => "CAA at 4 layers from 24 A/B items + steerability, 5 multipliers x 24 items",
        Flow::Decompose => "decompose: 24,576-feature SAE, built-in corpus, 15 table rows x 5 multipliers x 8 items",
        Flow::Features => "features: 10 features promoting \" love\", scores and side effects",
    };
    println!("GPT-2 small (random weights) on {device:?}, load included: {what}");
    println!("{:<34} {:>12}", "engine", "total ms");
    println!("{:<34} {:>12.0}", "steerlab", ours_ms);
    if let Some(ms) = again_ms {
        println!("{:<34} {:>12.0}", "steerlab, again (kernels tuned)", ms);
    }
    match reference {
        Ok((ms, theirs, torch_device)) => {
            println!("{:<34} {:>12.0}", format!("PyTorch + transformers ({torch_device})"), ms);
            println!("ratio steerlab / PyTorch: {:.2}x the time", ours_ms / ms);
            if ours.len() != theirs.len() {
                println!("the two sides computed {} and {} results", ours.len(), theirs.len());
            }
            let scale = theirs.iter().fold(1e-12f32, |m, s| m.max(s.abs()));
            let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let what = if flow == Flow::Features { "output scores" } else { "steerabilities" };
            println!("{what}: steerlab {ours:.4?}");
            println!("{:w$}  PyTorch  {theirs:.4?}", "", w = what.len());
            println!("largest difference: {:.2e} of the largest", diff / scale);
        }
        Err(why) => eprintln!("PyTorch reference skipped: {why}"),
    }
    Ok(())
}

/// One run of `flow`, from loading the files: what both sides compute, to compare (steerabilities per layer or per
/// table row, or output scores).
fn run_flow(flow: Flow, files: &BenchFiles, items: &[AbItem], dev: &steerlab::device::Device) -> Result<Vec<f32>> {
    Ok(match flow {
        Flow::Steerability => {
            let model = crate::precision::load_model(&files.model, dev)?;
            let train = items.iter().map(AbItem::pair).collect::<Result<Vec<_>>>()?;
            let probes = Probes::Ab(prepare(&model, items)?);
            let rows = pollster::block_on(layer_sweep(&model, &train, &probes, &LAYERS, &MULTIPLIERS))?;
            rows.iter().map(|r| r.curve.steerability).collect()
        }
        Flow::Decompose => {
            let model = crate::precision::load_model(&files.model, dev)?;
            let sae = Sae::from_dir(&files.sae, dev)?;
            let (train, test) = (Dataset::Ab(items.to_vec()).split(false).pairs()?, split_items(items, true));
            let sv = pollster::block_on(caa_vector(&model, &train, SAE_HOOK))?;
            let eval = Probes::Ab(prepare(&model, &test)?);
            let corpus = corpus_passages(CORPUS);
            let opts = DecomposeOptions {
                corpus: &corpus,
                pairs: Some(&train),
                eval: Some(&eval),
                multipliers: &MULTIPLIERS,
                ks: &[1, 4, 16, 64],
                top: 10,
                edits: &[],
            };
            let d = pollster::block_on(decompose(&model, &sae, &sv, &opts))?;
            d.table.iter().map(|r| r.steerability.unwrap_or(f32::NAN)).collect()
        }
        Flow::Features => {
            // Through the engine, as the lab and `steerlab features` run it (one corpus pass for both parts).
            let mut engine = steerlab::engine::Engine::default();
            engine.set_model(crate::precision::load_model(&files.model, dev)?);
            engine.set_sae(Sae::from_dir(&files.sae, dev)?)?;
            let request = steerlab::engine::Request::Features {
                features: vec![],
                promoting: Some(" love".into()),
                count: 10,
                amplification: 10.0,
                lens_k: 20,
                strength: None,
                prompt: None,
                corpus: None,
                prompts: None,
            };
            let response = pollster::block_on(engine.handle(request, steerlab::engine::never(), &mut |_| {}))?;
            let steerlab::engine::Response::Features { scores, side_effects, .. } = response else {
                unreachable!("a features request gets a features response")
            };
            eprintln!("  {} features scored, {} side-effect rows", scores.len(), side_effects.rows.len());
            scores.iter().map(|s| s.output_score).collect()
        }
    })
}

/// The files both sides load.
struct BenchFiles {
    model: PathBuf,
    sae: PathBuf,
    items: PathBuf,
    corpus: PathBuf,
    prompts: PathBuf,
}

impl BenchFiles {
    fn write(dir: &Path) -> Result<Self> {
        let model = dir.join("gpt2-small-random");
        let sae = dir.join("sae-24576-random");
        let items = dir.join("corrigibility-ab.json");
        let write = |path: &Path, bytes: &[u8]| -> Result<()> {
            std::fs::create_dir_all(path.parent().expect("inside dir"))
                .map_err(|e| Error::file(dir.display().to_string(), e))?;
            std::fs::write(path, bytes).map_err(|e| Error::file(path.display().to_string(), e))
        };
        if !model.join("model.safetensors").exists() {
            write(&model.join("config.json"), GPT2_SMALL_CONFIG.as_bytes())?;
            write(&model.join("tokenizer.json"), &read_tokenizer()?)?;
            write(&model.join("model.safetensors"), &random_checkpoint(GPT2_SMALL_CONFIG, 0)?)?;
        }
        if !sae.join("sae_weights.safetensors").exists() {
            write(&sae.join("cfg.json"), sae_config().as_bytes())?;
            write(&sae.join("sae_weights.safetensors"), &RandomSae::new(768, D_SAE, 7).safetensors()?)?;
        }
        let text = DATASETS.iter().find(|d| d.file == "corrigibility-ab.json").expect("built in").text;
        write(&items, text.as_bytes())?;
        let corpus = dir.join("corpus.txt");
        write(&corpus, CORPUS.as_bytes())?;
        let prompts = dir.join("prompts.txt");
        write(&prompts, PROMPTS.as_bytes())?;
        Ok(Self { model, sae, items, corpus, prompts })
    }
}

fn sae_config() -> String {
    format!(
        r#"{{"architecture":"standard","d_in":768,"d_sae":{D_SAE},"hook_name":"{SAE_HOOK}","apply_b_dec_to_input":true,
"normalize_activations":"none","dtype":"float32","model_name":"gpt2"}}"#
    )
}

fn corrigibility() -> Result<Vec<AbItem>> {
    let d = DATASETS.iter().find(|d| d.file == "corrigibility-ab.json").expect("built in");
    match Dataset::parse(d.text, d.file)? {
        Dataset::Ab(items) => Ok(items),
        Dataset::Pairs(_) => Err(Error::invalid("the built-in corrigibility set holds A/B items")),
    }
}

/// Every third item (held out) or the others, as `Dataset::split` parts them.
fn split_items(items: &[AbItem], test: bool) -> Vec<AbItem> {
    match Dataset::Ab(items.to_vec()).split(test) {
        Dataset::Ab(items) => items,
        Dataset::Pairs(_) => unreachable!("split keeps the kind"),
    }
}

/// Runs the flow's PyTorch script (on CUDA with `gpu`, when torch has it): (total ms, the results it prints, in
/// steerlab's order, the device it ran on).
fn torch(
    python: &str,
    flow: Flow,
    files: &BenchFiles,
    gpu: bool,
) -> std::result::Result<(f64, Vec<f32>, String), String> {
    let list = |v: &[String]| v.join(",");
    let mut cmd = Command::new(python);
    match flow {
        Flow::Steerability => cmd
            .args(["-c", STEERABILITY_SCRIPT])
            .arg(&files.model)
            .arg(&files.items)
            .arg(list(&LAYERS.map(|l| l.to_string())))
            .arg(list(&MULTIPLIERS.map(|m| m.to_string()))),
        Flow::Decompose => cmd
            .args(["-c", DECOMPOSE_SCRIPT])
            .arg(&files.model)
            .arg(&files.sae)
            .arg(&files.items)
            .arg(&files.corpus)
            .arg("6"),
        Flow::Features => cmd
            .args(["-c", FEATURES_SCRIPT])
            .arg(&files.model)
            .arg(&files.sae)
            .arg(&files.corpus)
            .arg(&files.prompts)
            .arg("6"),
    };
    if gpu {
        cmd.arg("--gpu");
    }
    let out = cmd.output().map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = text.lines().find_map(|l| l.strip_prefix("total_ms ")?.trim().parse().ok());
    let results: Vec<f32> = text.lines().filter_map(|l| l.strip_prefix("result ")?.trim().parse().ok()).collect();
    let device = text.lines().find_map(|l| l.strip_prefix("device ")).unwrap_or("?").trim().to_string();
    ms.map(|ms| (ms, results, device)).ok_or_else(|| format!("unexpected output: {text}"))
}
