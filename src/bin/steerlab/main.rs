//! The steerlab command line: trace, generate and bench (native only).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    keep_freed_memory();
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A forward pass frees and allocates buffers of tens of MB at every op, and glibc hands each back to the system
/// and faults it in again page by page (measured: a third of a GPT-2 small pass on the CPU). Growing the heap
/// 512 MiB at a time keeps them in the process.
#[cfg(not(target_arch = "wasm32"))]
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod bench_flow;
#[cfg(not(target_arch = "wasm32"))]
mod dashboard;
#[cfg(not(target_arch = "wasm32"))]
mod edit_vector;
#[cfg(not(target_arch = "wasm32"))]
mod features;
#[cfg(not(target_arch = "wasm32"))]
mod fetch;
#[cfg(not(target_arch = "wasm32"))]
mod interop;
#[cfg(not(target_arch = "wasm32"))]
mod population;
#[cfg(not(target_arch = "wasm32"))]
mod precision;
#[cfg(not(target_arch = "wasm32"))]
mod sae_id;
#[cfg(not(target_arch = "wasm32"))]
mod science;
#[cfg(not(target_arch = "wasm32"))]
mod serve;
#[cfg(not(target_arch = "wasm32"))]
mod steer_score;

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Args, Parser, Subcommand};
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use steerlab::device::{DeviceChoice, Precision, init_device};
    use steerlab::files::read_bytes;
    use steerlab::model::Model;
    use steerlab::model::generate::{GenerateOptions, generate};
    use steerlab::model::hooks::{Hooks, Intervention};
    use steerlab::model::sampling::Sampling;
    use steerlab::model::weights::SafetensorsWeights;
    use steerlab::sae::fidelity::reconstruction_error;
    use steerlab::steer::actadd::actadd_vector;
    use steerlab::steer::apply::{aligned_intervention, intervention};
    use steerlab::steer::{caa::caa_vector, vector::SteeringVector};
    use steerlab::tensor_file::NamedTensor;
    use steerlab::{Error, Result};

    #[derive(Parser)]
    #[command(name = "steerlab", version, about = "Steering vectors and SAEs on GPT-2 and Pythia")]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
        /// How loaded models hold their weight matrices: f16 halves their memory and bandwidth on devices with
        /// f16 arithmetic (wgpu with shader-f16, CUDA); norms, attention, the residual stream and every hook
        /// stay f32.
        #[arg(long, global = true, default_value = "f32")]
        precision: Precision,
    }

    #[derive(Subcommand)]
    enum Cmd {
        /// Run one forward pass and write tokens, logits and residual activations to safetensors.
        Trace {
            #[command(flatten)]
            run: RunArgs,
            /// Output file (.safetensors).
            #[arg(long)]
            out: PathBuf,
        },
        /// Continue a prompt, printing tokens as they come.
        Generate {
            #[command(flatten)]
            run: RunArgs,
            #[arg(long, default_value_t = 32)]
            max_new_tokens: usize,
            /// 0 = greedy.
            #[arg(long, default_value_t = 0.0)]
            temperature: f32,
            #[arg(long)]
            top_k: Option<usize>,
            #[arg(long, default_value_t = 0)]
            seed: u64,
        },
        /// Compute a CAA steering vector from contrastive pairs (JSONL {"positive", "negative"}, read at the
        /// last token) or A/B items ({"question", "answer_matching_behavior", ...}, read at the answer letter).
        Caa {
            /// Hugging Face model directory.
            #[arg(long)]
            model: PathBuf,
            #[arg(long)]
            pairs: PathBuf,
            /// Hook to read, e.g. blocks.6.hook_resid_pre.
            #[arg(long)]
            hook: String,
            #[arg(long)]
            out: PathBuf,
            #[arg(long, default_value = "cpu")]
            device: DeviceChoice,
        },
        /// Compute a position-aligned ActAdd vector [k, d_model] from one prompt pair (e.g. "Love" / "Hate").
        Actadd {
            /// Hugging Face model directory.
            #[arg(long)]
            model: PathBuf,
            #[arg(long)]
            positive: String,
            #[arg(long)]
            negative: String,
            /// Hook to read and later steer, e.g. blocks.6.hook_resid_pre.
            #[arg(long)]
            hook: String,
            /// Put the BOS token first (as TransformerLens does); steer with --prepend-bos then.
            #[arg(long)]
            prepend_bos: bool,
            #[arg(long)]
            out: PathBuf,
            #[arg(long, default_value = "cpu")]
            device: DeviceChoice,
        },
        /// Encode vectors with an SAE: writes `feature_acts` [n, d_sae], `reconstruction` [n, d_in] and each
        /// vector's reconstruction error (`mse`, `relative_error` [n]).
        SaeEncode {
            /// SAE directory (SAELens, sparsify or Gemma Scope layout) or SAELens id (`steerlab saes`).
            #[arg(long)]
            sae: PathBuf,
            /// safetensors file holding the vectors.
            #[arg(long)]
            input: PathBuf,
            /// Tensor to encode: [n, d_in] or [d_in].
            #[arg(long)]
            tensor: String,
            #[arg(long)]
            out: PathBuf,
            #[arg(long, default_value = "cpu")]
            device: DeviceChoice,
        },
        /// Propensity on held-out A/B items or pairs against the steering multiplier, for a vector or a CAA layer
        /// sweep.
        Steerability(crate::science::SteerabilityArgs),
        /// Generation-level scores of a vector or SAE features: greedy continuations at each strength, their share
        /// of concept words and their coherence under the unsteered model.
        SteerScore(crate::steer_score::SteerScoreArgs),
        /// A steering vector restricted to, or without, chosen SAE features (every row of an ActAdd vector alike),
        /// written as a new vector file.
        EditVector(crate::edit_vector::EditVectorArgs),
        /// A steering vector as a llama.cpp control vector (GGUF): direction K is added to block K's output,
        /// blocks.K.hook_resid_post = blocks.K+1.hook_resid_pre.
        Export(crate::interop::ExportArgs),
        /// A GGUF control vector (llama.cpp's or repeng's) as a steering-vector file at blocks.K.hook_resid_post.
        Import(crate::interop::ImportArgs),
        /// The SAE diagnostics of a steering vector (Mayne et al. 2024), as tables and JSON.
        Decompose(crate::science::DecomposeArgs),
        /// Score SAE features for steering (output / input scores) and their side effects.
        Features(crate::features::FeaturesArgs),
        /// Arad et al.'s scores across a sample of features at one or more layers, and how the top features by
        /// output score steer text against the top ones by input score and random ones.
        Population(crate::population::PopulationArgs),
        /// Feature dashboards computed locally: top-activating passages with each token's activation, the
        /// activation histogram, the logit lens and decoder-cosine neighbours; or the features most active on a text.
        Dashboard(crate::dashboard::DashboardArgs),
        /// Time GPT-2 small's forward pass (random weights) against PyTorch on this machine.
        Bench(crate::bench::BenchArgs),
        /// Serve the engine to the browser lab over HTTP on 127.0.0.1 (heavier models, the native GPU), guarded
        /// by a pairing token and an origin allow-list.
        Serve(crate::serve::ServeArgs),
        /// Download a model (or SAE files) from the Hugging Face hub into its cache, where `serve` finds it: with
        /// progress, resume and checksums.
        Fetch(crate::fetch::FetchArgs),
        /// The SAELens release ids `--sae` and `fetch` take (release/sae_id): every release, or one's SAEs.
        Saes(crate::sae_id::SaesArgs),
        /// Download real data at pinned commits: Rimsky et al.'s CAA A/B sets (`caa/sycophancy`, ... or `caa`) and
        /// a background corpus (`wikitext-2`), into a cache folder; prints the flags that use them.
        FetchData(crate::fetch::data::FetchDataArgs),
        /// Load-test a running helper over loopback: requests/s and p50/p99 latency with concurrent clients.
        Loadtest(crate::serve::loadtest::LoadtestArgs),
    }

    #[derive(Args)]
    struct RunArgs {
        /// Hugging Face model directory (config.json, model.safetensors, tokenizer.json).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        /// Put the model's BOS token first.
        #[arg(long)]
        prepend_bos: bool,
        /// Steering-vector file (safetensors with a `steering_vector` tensor; an ActAdd one steers the
        /// prompt's first positions).
        #[arg(long)]
        steer: Option<PathBuf>,
        /// Hook to steer at, e.g. blocks.6.hook_resid_pre (default: the one in the vector's metadata).
        #[arg(long, requires = "steer")]
        hook: Option<String>,
        /// Multiplier of the steering vector.
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        coef: f32,
        /// SAE (directory or SAELens id) whose features --feature steers with (at the SAE's hook).
        #[arg(long, requires = "feature")]
        sae: Option<PathBuf>,
        /// Steer with SAE feature INDEX: its decoder direction × STRENGTH at every position. Repeatable.
        #[arg(long, value_name = "INDEX:STRENGTH", requires = "sae", allow_negative_numbers = true)]
        feature: Vec<String>,
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
    }

    impl RunArgs {
        fn load(&self) -> Result<(Model, Vec<u32>, Vec<Intervention>)> {
            let device = pollster::block_on(init_device(self.device))?;
            let model = crate::precision::load_model(&self.model, &device)?;
            let tokens = model.encode(&self.prompt, self.prepend_bos)?;
            let mut steering = Vec::new();
            if let Some(path) = &self.steer {
                let sv = crate::science::load_vector(path)?;
                let hook = crate::science::vector_hook(&sv, self.hook.as_deref(), path)?;
                steering.push(match sv.rows {
                    None => intervention(&model, &hook, &sv.values, self.coef, 0)?,
                    Some(_) => {
                        if sv.metadata.get("prepend_bos").is_some_and(|b| b == "true") && !self.prepend_bos {
                            eprintln!("note: this ActAdd vector was read after a BOS token; --prepend-bos aligns it");
                        }
                        aligned_intervention(&model, &hook, &sv.values, self.coef, 0)?
                    }
                });
            }
            if let Some(dir) = &self.sae {
                let (hook, direction) = crate::science::feature_direction(dir, &self.feature, &model, &device)?;
                steering.push(intervention(&model, &hook, &direction, 1.0, 0)?);
            }
            Ok((model, tokens, steering))
        }
    }

    fn metadata<const N: usize>(pairs: [(&str, String); N]) -> std::collections::HashMap<String, String> {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<()> {
        std::fs::write(path, bytes).map_err(|e| Error::file(path.display().to_string(), e))
    }

    pub fn run() -> Result<()> {
        let cli = Cli::parse();
        crate::precision::set(cli.precision);
        match cli.cmd {
            Cmd::Trace { run, out } => {
                let (model, tokens, steering) = run.load()?;
                let tensors = pollster::block_on(steerlab::trace::trace(&model, &tokens, steering))?;
                let meta = metadata([("model", model.name.clone()), ("prompt", run.prompt.clone())]);
                write(&out, &steerlab::tensor_file::to_safetensors(&tensors, meta)?)?;
                eprintln!("wrote {} ({} tokens, {} tensors)", out.display(), tokens.len(), tensors.len());
                Ok(())
            }
            Cmd::Generate { run, max_new_tokens, temperature, top_k, seed } => {
                let (model, tokens, steering) = run.load()?;
                let opts = GenerateOptions {
                    max_new_tokens,
                    sampling: Sampling { temperature, top_k, seed },
                    stop_at_eos: true,
                };
                print!("{}", run.prompt);
                let mut hooks = Hooks::steering(steering);
                let mut shown = String::new();
                let mut so_far = Vec::new();
                let mut decode_err = None;
                pollster::block_on(generate(&model, &tokens, &mut hooks, &opts, |t| {
                    // Decode the whole continuation each time so multi-byte characters print whole.
                    so_far.push(t);
                    match model.tokenizer.decode(&so_far) {
                        Ok(text) => {
                            if let Some(new) = text.strip_prefix(shown.as_str()) {
                                print!("{new}");
                                let _ = std::io::stdout().flush();
                            }
                            shown = text;
                        }
                        Err(e) => decode_err = Some(e),
                    }
                    true
                }))?;
                println!();
                decode_err.map_or(Ok(()), Err)
            }
            Cmd::Caa { model, pairs, hook, out, device } => {
                let device = pollster::block_on(init_device(device))?;
                let model = crate::precision::load_model(&model, &device)?;
                let dataset = crate::science::load_dataset(&pairs)?.pairs()?;
                let values = pollster::block_on(caa_vector(&model, &dataset, &hook))?;
                let metadata = metadata([
                    ("model", model.name.clone()),
                    ("hook", hook),
                    ("method", "caa".into()),
                    ("dataset", pairs.display().to_string()),
                    ("count", dataset.len().to_string()),
                ]);
                write(&out, &SteeringVector { values, rows: None, metadata }.to_safetensors()?)?;
                eprintln!("wrote {} (mean of {} pairs)", out.display(), dataset.len());
                Ok(())
            }
            Cmd::SaeEncode { sae, input, tensor, out, device } => {
                let device = pollster::block_on(init_device(device))?;
                let sae = crate::sae_id::load(&sae, &device)?;
                let bytes = read_bytes(&input)?;
                let x = SafetensorsWeights::parse(&bytes, &input.display().to_string(), &[])?.get_any(&tensor)?;
                let (acts, rec) = pollster::block_on(sae.encode_host(x.clone(), &device))?;
                let err = reconstruction_error(&x, &rec);
                let n = err.mse.len();
                eprintln!(
                    "{n} vectors: mean squared error {:.6}, mean relative error {:.4}, fraction of variance unexplained {}",
                    err.mse.iter().sum::<f32>() / n as f32,
                    err.relative.iter().sum::<f32>() / n as f32,
                    err.fraction_unexplained.map_or("-".into(), |f| format!("{f:.4}"))
                );
                let tensors = [
                    NamedTensor::f32("feature_acts", acts.shape, acts.data),
                    NamedTensor::f32("reconstruction", rec.shape, rec.data),
                    NamedTensor::f32("mse", vec![n], err.mse),
                    NamedTensor::f32("relative_error", vec![n], err.relative),
                ];
                let meta =
                    metadata([("hook", sae.cfg.hook_name.clone()), ("input", format!("{}:{tensor}", input.display()))]);
                write(&out, &steerlab::tensor_file::to_safetensors(&tensors, meta)?)?;
                eprintln!("wrote {}", out.display());
                Ok(())
            }
            Cmd::Actadd { model, positive, negative, hook, prepend_bos, out, device } => {
                let device = pollster::block_on(init_device(device))?;
                let model = crate::precision::load_model(&model, &device)?;
                let v = pollster::block_on(actadd_vector(&model, &positive, &negative, &hook, prepend_bos))?;
                let metadata = metadata([
                    ("model", model.name.clone()),
                    ("hook", hook),
                    ("method", "actadd".into()),
                    ("positive", positive),
                    ("negative", negative),
                    ("prepend_bos", prepend_bos.to_string()),
                ]);
                let rows = v.shape[0];
                write(&out, &SteeringVector { values: v.data, rows: Some(rows), metadata }.to_safetensors()?)?;
                eprintln!("wrote {} ({rows} positions)", out.display());
                Ok(())
            }
            Cmd::Steerability(args) => crate::science::steerability_cmd(args),
            Cmd::SteerScore(args) => crate::steer_score::run(args),
            Cmd::EditVector(args) => crate::edit_vector::run(args),
            Cmd::Export(args) => crate::interop::export(args),
            Cmd::Import(args) => crate::interop::import(args),
            Cmd::Decompose(args) => crate::science::decompose_cmd(args),
            Cmd::Features(args) => crate::features::run(args),
            Cmd::Population(args) => crate::population::run(args),
            Cmd::Bench(args) => crate::bench::run(args),
            Cmd::Serve(args) => crate::serve::run(args),
            Cmd::Fetch(args) => crate::fetch::run(args),
            Cmd::Saes(args) => crate::sae_id::list(args),
            Cmd::Dashboard(args) => crate::dashboard::run(args),
            Cmd::FetchData(args) => crate::fetch::data::run(args),
            Cmd::Loadtest(args) => crate::serve::loadtest::run(args),
        }
    }
}
