//! `steerlab bench`: a forward pass of GPT-2 small (124M parameters) or Gemma-2-2B (2.6B, for the helper) with
//! random weights, in steerlab and in PyTorch on the same machine, side by side in one run.

use clap::Args;
use std::process::Command;
use std::time::Instant;
use steerlab::device::{DeviceChoice, init_device, read, read_ids};
use steerlab::model::Model;
use steerlab::model::config::ModelConfig;
use steerlab::model::hooks::Hooks;
use steerlab::model::kv_cache::KvCache;
use steerlab::model::random::{GEMMA2_2B_CONFIG, GPT2_SMALL_CONFIG, RandomWeights};
use steerlab::{Error, Result};

const TORCH_SCRIPT: &str = include_str!("../../../scripts/bench_torch.py");

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Shape {
    Gpt2Small,
    /// Needs about 11 GB of (GPU) memory in f32.
    Gemma2_2b,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Gpt2Small => "GPT-2 small",
            Shape::Gemma2_2b => "Gemma-2-2B",
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    /// A whole lab flow instead of one forward pass (GPT-2 small size, load included).
    #[arg(long, value_enum)]
    flow: Option<crate::bench_flow::Flow>,
    /// Which model's shape to run.
    #[arg(long, value_enum, default_value = "gpt2-small")]
    model: Shape,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Timed forward passes (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Continuations decoded together, one batch row each (the lab's unsteered + steered comparison is 2).
    #[arg(long, default_value_t = 1)]
    rows: usize,
    /// Python with torch and transformers for the reference; the reference is skipped if it has none.
    #[arg(long, default_value = "python3")]
    python: String,
}

struct Row {
    engine: String,
    device: String,
    median_ms: f64,
    decode_ms: f64,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(flow) = args.flow {
        return crate::bench_flow::run(flow, args.device, &args.python);
    }
    if args.seq == 0 || args.seq > 1024 || args.iters == 0 || !(1..=MAX_ROWS).contains(&args.rows) {
        return Err(Error::invalid(format!("--seq must be in 1..=1024, --iters at least 1, --rows in 1..={MAX_ROWS}")));
    }
    let device = pollster::block_on(init_device(args.device))?;
    let config = if args.model == Shape::Gpt2Small { GPT2_SMALL_CONFIG } else { GEMMA2_2B_CONFIG };
    let cfg = ModelConfig::from_json(config, args.model.name())?;
    eprintln!("building {} with random weights on {:?}...", args.model.name(), args.device);
    let n_layers = cfg.n_layers;
    let mut net = Model::build(cfg, &RandomWeights { seed: 0 }, &device)?;
    let precision = crate::precision::current();
    net.set_precision(precision)?;
    // The same ids as the reference script (all inside GPT-2's vocabulary, hence Gemma's).
    let tokens: Vec<u32> = (0..args.seq as u32).map(|i| (i * 7919 + 13) % 50257).collect();
    let pass = || -> Result<f64> {
        let t = Instant::now();
        let logits = net.forward(&tokens, &mut KvCache::new(n_layers), &mut Hooks::default())?;
        // Reading a reduction waits for the whole pass without timing a 25 MB copy.
        pollster::block_on(read(logits.sum()))?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    pass()?; // warm-up: kernel compilation, allocation
    let mut times = (0..args.iters).map(|_| pass()).collect::<Result<Vec<_>>>()?;
    // Decode: the prompt once, then one token a row a step with the KV cache, each row's next id chosen on the device
    // and read back (as the reference's `argmax(-1).tolist()`, and as greedy generation does).
    let next_after = |ids: &[u32], cache: &mut KvCache| -> Result<Vec<u32>> {
        let logits = net.next_token_logits_rows(ids, args.rows, cache, &mut Hooks::default())?; // [rows, vocab]
        pollster::block_on(read_ids(logits.argmax(1)))
    };
    let mut steps = Vec::new();
    for _ in 0..args.iters {
        let mut cache = KvCache::new(n_layers);
        let mut next = next_after(&tokens.repeat(args.rows), &mut cache)?; // [rows · seq] ids
        for _ in 0..DECODE_STEPS {
            let t = Instant::now();
            next = next_after(&next, &mut cache)?;
            steps.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut rows = vec![Row {
        engine: "steerlab (burn)".into(),
        device: format!("{:?} {precision:?}", args.device).to_lowercase(),
        median_ms: median(&mut times),
        decode_ms: median(&mut steps),
    }];

    drop(net); // Gemma-2-2B twice would not fit in memory
    eprintln!("running the PyTorch reference with {}...", args.python);
    match torch(&args) {
        Ok(row) => rows.push(row),
        Err(why) => eprintln!("PyTorch reference skipped: {why}"),
    }

    println!(
        "{} forward pass of {} tokens and decode ({} a step, KV cache), median of {} runs",
        args.model.name(),
        args.seq,
        if args.rows == 1 { "one token".to_string() } else { format!("{} rows' tokens", args.rows) },
        args.iters
    );
    println!("{:<24} {:<10} {:>12} {:>12} {:>16}", "engine", "device", "forward ms", "tokens/s", "decode ms/step");
    for r in &rows {
        println!(
            "{:<24} {:<10} {:>12.1} {:>12.0} {:>16.2}",
            r.engine,
            r.device,
            r.median_ms,
            args.seq as f64 / r.median_ms * 1e3,
            r.decode_ms
        );
    }
    if let [ours, reference] = &rows[..] {
        println!(
            "ratio steerlab / PyTorch: forward {:.2}x, decode {:.2}x the time",
            ours.median_ms / reference.median_ms,
            ours.decode_ms / reference.decode_ms
        );
    }
    Ok(())
}

/// Decode steps timed per run (as in the reference script).
const DECODE_STEPS: usize = 16;

/// Most rows `--rows` takes: enough for the lab's comparisons, few enough that no cache outgrows a device.
const MAX_ROWS: usize = 64;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the PyTorch script on the same kind of device (its CUDA GPU when steerlab runs on a GPU) and reads its
/// `device`, `median_ms` and `decode_ms` lines.
fn torch(args: &BenchArgs) -> std::result::Result<Row, String> {
    let gpu = if args.device == DeviceChoice::Cpu { "cpu" } else { "gpu" };
    let out = Command::new(&args.python)
        .args(["-c", TORCH_SCRIPT, &args.seq.to_string(), &args.iters.to_string()])
        .arg(if args.model == Shape::Gpt2Small { "gpt2" } else { "gemma2" })
        .arg(gpu)
        .arg(crate::precision::current().name())
        .arg(args.rows.to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.python))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
    let device = text.lines().find_map(|l| l.strip_prefix("device ")).unwrap_or("?").trim().to_string();
    match (field("median_ms "), field("decode_ms ")) {
        (Some(median_ms), Some(decode_ms)) => {
            Ok(Row { engine: "PyTorch (transformers)".into(), device, median_ms, decode_ms })
        }
        _ => Err(format!("unexpected output: {text}")),
    }
}
