//! `--sae` takes a folder or a SAELens id (`gpt2-small-res-jb/blocks.6.hook_resid_pre`): an id is looked up in
//! the Hugging Face hub cache and fetched into it when missing, as `SAE.from_pretrained` does; `steerlab saes`
//! lists the ids.

use std::path::{Path, PathBuf};
use steerlab::device::Device;
use steerlab::error::{Error, Result};
use steerlab::sae::Sae;
use steerlab::sae::releases::{self, Release, ReleaseSae};

/// Loads the SAE `arg` names: a folder (or Gemma Scope `params.npz`) if there is one at that path, else a SAELens
/// id. The SAE is named by the id in outputs.
pub fn load(arg: &Path, device: &Device) -> Result<Sae> {
    let Some((id, dir)) = resolve(arg)? else { return Sae::from_dir(arg, device) };
    let mut sae = Sae::from_dir(&dir, device)?;
    sae.name = id;
    Ok(sae)
}

/// `Some((id, folder))` when `arg` is a SAELens id rather than a path; the folder is in the hub cache, fetched
/// there first when missing.
pub fn resolve(arg: &Path) -> Result<Option<(String, PathBuf)>> {
    let text = arg.to_string_lossy();
    if arg.exists() || !(releases::looks_like_id(&text) || releases::release(&text).is_some()) {
        return Ok(None);
    }
    let (release, sae) =
        releases::resolve(&text).map_err(|e| Error::invalid(format!("--sae {text}: no such folder, and {e}")))?;
    if let Some(dir) = cached(release, sae) {
        return Ok(Some((text.into_owned(), dir)));
    }
    eprintln!("{text} is not in the hub cache yet: fetching {} from {}", sae.path, release.repo);
    let files = release.files_of(sae);
    let snapshot = crate::fetch::download(&crate::fetch::FetchArgs::files(release.repo, "main", files))?;
    Ok(Some((text.into_owned(), snapshot.join(sae.path))))
}

/// The SAE's folder in the hub cache, holding all its files: the snapshot `refs/main` points at, else any.
fn cached(release: &Release, sae: &ReleaseSae) -> Option<PathBuf> {
    let repo_dir = crate::serve::library::hub_cache()?.join(format!("models--{}", release.repo.replace('/', "--")));
    let main = std::fs::read_to_string(repo_dir.join("refs/main")).ok().map(|c| c.trim().to_string());
    let mut snapshots: Vec<PathBuf> = main.into_iter().map(|c| repo_dir.join("snapshots").join(c)).collect();
    if let Ok(entries) = std::fs::read_dir(repo_dir.join("snapshots")) {
        snapshots.extend(entries.flatten().map(|e| e.path()));
    }
    snapshots
        .into_iter()
        .map(|s| s.join(sae.path))
        .find(|dir| release.format.files().iter().all(|f| dir.join(f).is_file()))
}

#[derive(clap::Args)]
pub struct SaesArgs {
    /// A release: list its SAE ids. Without one, every release.
    release: Option<String>,
}

/// `steerlab saes [RELEASE]`.
pub fn list(args: SaesArgs) -> Result<()> {
    match args.release {
        None => {
            println!("{:<40} {:<20} {:>5}  repository", "release", "model", "SAEs");
            for r in releases::releases() {
                println!("{:<40} {:<20} {:>5}  {}", r.id, r.model, r.saes.len(), r.repo);
            }
            eprintln!("(residual-stream SAEs from sae-lens's pretrained_saes.yaml; `steerlab saes RELEASE` lists ids)");
        }
        Some(id) => {
            let release = releases::release(id.trim_end_matches('/'))
                .ok_or_else(|| Error::invalid(releases::resolve(&id).err().unwrap_or_default()))?;
            println!("{:<56} {:<28} folder", "id", "hook");
            for s in &release.saes {
                println!("{:<56} {:<28} {}", format!("{}/{}", release.id, s.id), s.hook, s.path);
            }
        }
    }
    Ok(())
}
