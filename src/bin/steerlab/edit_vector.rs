//! `steerlab edit-vector`: a steering vector restricted to, or without, chosen SAE features' decoder span, every
//! row alike (an ActAdd vector position by position, as Conmy & Nanda 2024 edited Turner et al.'s), written as a
//! new vector file that `run --steer`, `steerability` and `decompose` take.

use clap::Args;
use std::path::PathBuf;
use steerlab::analysis::actadd::edit_rows;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::sae::edit::{EditMode, FeatureEdit, parse_features};
use steerlab::{Error, Result};

#[derive(Args)]
pub struct EditVectorArgs {
    /// SAE directory or SAELens id reading the vector's hook.
    #[arg(long)]
    sae: PathBuf,
    /// Steering-vector file ([d_model], or [k, d_model] from `actadd`).
    #[arg(long)]
    vector: PathBuf,
    /// Keep only these features' span, e.g. 12,345.
    #[arg(long, conflicts_with = "remove", required_unless_present = "remove")]
    keep: Option<String>,
    /// Take these features' span out, e.g. 12,345.
    #[arg(long)]
    remove: Option<String>,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(a: EditVectorArgs) -> Result<()> {
    let device = pollster::block_on(init_device(a.device))?;
    let sae = crate::sae_id::load(&a.sae, &device)?;
    let mut sv = crate::science::load_vector(&a.vector)?;
    let name = a.vector.display().to_string();
    if let Some(hook) = sv.metadata.get("hook").filter(|h| **h != sae.cfg.hook_name) {
        return Err(Error::file(name, format!("read at {hook}, but the SAE reads {}", sae.cfg.hook_name)));
    }
    let (mode, typed) = match (&a.keep, &a.remove) {
        (Some(k), _) => (EditMode::Keep, k),
        (None, Some(r)) => (EditMode::Remove, r),
        (None, None) => unreachable!("clap asks for --keep or --remove"),
    };
    let edit = FeatureEdit { features: parse_features(typed)?, mode };
    let before = sv.values.clone();
    sv.values = pollster::block_on(edit_rows(&sae, &sv.values, sv.rows.unwrap_or(1), &edit))?;
    sv.metadata.insert("edit".into(), edit.label());
    sv.metadata.insert("edited_from".into(), name);
    std::fs::write(&a.out, sv.to_safetensors()?).map_err(|e| Error::file(a.out.display().to_string(), e))?;
    let kept = steerlab::stats::norm(&sv.values) / steerlab::stats::norm(&before).max(1e-12);
    println!("{}: norm {:.1}% of the original ({} rows)", edit.label(), 100.0 * kept, sv.rows.unwrap_or(1));
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
