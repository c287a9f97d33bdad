//! `steerlab export` and `steerlab import`: steering vectors to and from GGUF control vectors, the files llama.cpp's
//! `--control-vector` reads and repeng writes (`steerlab::gguf`: direction K is added to block K's output,
//! blocks.K.hook_resid_post = blocks.K+1.hook_resid_pre).

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use steerlab::files::read_bytes;
use steerlab::gguf::{self, ControlVector};
use steerlab::model::hooks::HookPoint;
use steerlab::steer::vector::SteeringVector;
use steerlab::{Error, Result};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// A llama.cpp control vector.
    Gguf,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Steering-vector file ([d_model]; its metadata names the hook unless --hook does).
    #[arg(long)]
    vector: PathBuf,
    #[arg(long, value_enum, default_value = "gguf")]
    format: Format,
    /// Hook the vector is added at, e.g. blocks.6.hook_resid_pre (default: the file's metadata).
    #[arg(long)]
    hook: Option<String>,
    /// What llama.cpp shows as the model it is for (default: the file's `model` metadata).
    #[arg(long)]
    model_hint: Option<String>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A GGUF control vector (llama.cpp's, or repeng's `export_gguf`).
    file: PathBuf,
    /// Which layer to take when the file has several (llama.cpp's numbering: block K's output).
    #[arg(long)]
    layer: Option<usize>,
    #[arg(long)]
    out: PathBuf,
}

/// Hooks are named without a model here: any block index parses.
const ANY_LAYERS: usize = 1 << 16;

pub fn export(a: ExportArgs) -> Result<()> {
    let sv = crate::science::load_vector(&a.vector)?;
    let name = a.vector.display().to_string();
    let hook = crate::science::vector_hook(&sv, a.hook.as_deref(), &a.vector)?;
    let values = sv.single(&name, "export (a control vector has one direction per layer)")?.to_vec();
    let Format::Gguf = a.format;
    let k = gguf::layer_of(HookPoint::parse(&hook, ANY_LAYERS)?)?;
    let model_hint = a.model_hint.or_else(|| sv.metadata.get("model").cloned()).unwrap_or_else(|| "unknown".into());
    let bytes = gguf::write(&ControlVector { model_hint, directions: vec![(k, values)] });
    std::fs::write(&a.out, bytes).map_err(|e| Error::file(a.out.display().to_string(), e))?;
    println!("{hook} is llama.cpp's layer {k}: direction.{k} in {}", a.out.display());
    Ok(())
}

pub fn import(a: ImportArgs) -> Result<()> {
    let name = a.file.display().to_string();
    let cv = gguf::read(&read_bytes(&a.file)?, &name)?;
    let layers: Vec<String> = cv.directions.iter().map(|(k, _)| k.to_string()).collect();
    let (k, values) = match (a.layer, cv.directions.as_slice()) {
        (None, [one]) => one.clone(),
        (None, _) => {
            return Err(Error::file(name, format!("it holds layers {}: pick one with --layer", layers.join(", "))));
        }
        (Some(k), all) => all.iter().find(|(l, _)| *l == k).cloned().ok_or_else(|| {
            Error::file(name.clone(), format!("it has no layer {k} (it holds layers {})", layers.join(", ")))
        })?,
    };
    let hook = gguf::hook_of(k).to_string();
    let metadata = [
        ("hook", hook.clone()),
        ("method", "gguf control vector".to_string()),
        ("model", cv.model_hint.clone()),
        ("source", name),
    ];
    let sv = SteeringVector {
        values,
        rows: None,
        metadata: metadata.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    std::fs::write(&a.out, sv.to_safetensors()?).map_err(|e| Error::file(a.out.display().to_string(), e))?;
    println!("layer {k} ({hook}, for {}) in {}", cv.model_hint, a.out.display());
    Ok(())
}
