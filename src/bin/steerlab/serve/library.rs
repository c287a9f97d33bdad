//! The models and SAEs the helper offers: directories under its models folder (or the Hugging Face cache) that
//! hold a model (`config.json`, `model.safetensors` or its shards, `tokenizer.json`) or an SAE (SAELens, sparsify or Gemma Scope
//! files). The page loads them by name only, so no request can name a path of its own.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use steerlab::model::weights::shard_files;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Model,
    Sae,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// `dir/sub` under the models folder; `owner/repo@rev/sub` in the hub cache.
    pub name: String,
    pub kind: Kind,
    /// Bytes of its weights, for the picker.
    pub bytes: u64,
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("HF_HUB_CACHE")
        .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

/// What `dir` holds, if it is a model or an SAE, and the size of its weights.
fn classify(dir: &Path) -> Option<(Kind, u64)> {
    let size = |f: &str| std::fs::metadata(dir.join(f)).ok().filter(|m| m.is_file()).map(|m| m.len());
    if size("config.json").is_some() && size("tokenizer.json").is_some() {
        // One file, or every shard the index lists (a half-downloaded model is not offered).
        let shards = || {
            let index = std::fs::read_to_string(dir.join("model.safetensors.index.json")).ok()?;
            let files = shard_files(&index, "index").ok()?;
            files.iter().map(|f| size(f)).sum::<Option<u64>>()
        };
        if let Some(w) = size("model.safetensors").or_else(shards) {
            return Some((Kind::Model, w));
        }
    }
    let sae = size("cfg.json").and(size("sae_weights.safetensors").or(size("sae.safetensors")));
    sae.or(size("params.npz")).map(|w| (Kind::Sae, w))
}

/// The most directories one scan visits: a models folder is a few hundred; a wrong `--models` (a home folder,
/// `/`) stops here instead of walking the disk.
const MAX_DIRS: usize = 50_000;

/// Every model and SAE under `root`, sorted by name. Hidden folders and the hub cache's `blobs` are skipped, and
/// the walk stops 8 levels down (a Gemma Scope SAE sits 6 down in the hub cache, 7 from `~/.cache/huggingface`).
/// Directory symlinks below the root are not followed: one pointing back into the folder would list its models
/// again (and a few of them fan out exponentially), one pointing out of it would offer files the user never put
/// there. The hub cache links files, never directories.
pub fn scan(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut budget = MAX_DIRS;
    walk(root, root, 0, &mut budget, &mut out);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn walk(root: &Path, dir: &Path, depth: usize, budget: &mut usize, out: &mut Vec<Entry>) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    if let Some((kind, bytes)) = classify(dir) {
        out.push(Entry { name: display_name(root, dir), kind, bytes, dir: dir.to_path_buf() });
    }
    if depth == 8 {
        return;
    }
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let mut subdirs: Vec<PathBuf> = read
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) // a symlink's own type: not followed
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && n != "blobs"))
        .collect();
    subdirs.sort();
    for sub in subdirs {
        walk(root, &sub, depth + 1, budget, out);
    }
}

/// The scan of one models folder, kept for `max_age` so that /v1/info and /v1/load do not walk the disk on every
/// request; concurrent requests wait for one scan rather than each running their own.
pub struct Library {
    pub root: PathBuf,
    cache: Mutex<Option<(Instant, Arc<Vec<Entry>>)>>,
}

impl Library {
    pub fn new(root: PathBuf) -> Self {
        Self { root, cache: Mutex::new(None) }
    }

    /// The entries, rescanned if the last scan is older than `max_age`.
    pub fn entries(&self, max_age: Duration) -> Arc<Vec<Entry>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, entries)) = cache.as_ref()
            && at.elapsed() <= max_age
        {
            return entries.clone();
        }
        let entries = Arc::new(scan(&self.root));
        *cache = Some((Instant::now(), entries.clone()));
        entries
    }
}

/// `a/b/c` relative to the root, with the hub cache's `models--owner--repo/snapshots/<rev>` (wherever it sits)
/// read as `owner/repo@<first 8 of rev>`.
fn display_name(root: &Path, dir: &Path) -> String {
    let rel: Vec<String> = dir
        .strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let hub = rel.windows(3).position(|w| w[0].starts_with("models--") && w[1] == "snapshots");
    let name = match hub {
        Some(i) => {
            let repo = rel[i].trim_start_matches("models--").replacen("--", "/", 1);
            let rev = &rel[i + 2];
            let mut parts = rel[..i].to_vec();
            parts.push(format!("{repo}@{}", &rev[..rev.len().min(8)]));
            parts.extend(rel[i + 3..].iter().cloned());
            parts.join("/")
        }
        None => rel.join("/"),
    };
    if name.is_empty() { ".".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_snapshots_are_named_by_repo_and_revision_wherever_they_sit() {
        let root = Path::new("/m");
        let name = |rel: &str| display_name(root, &root.join(rel));
        assert_eq!(name("models--google--gemma-2-2b/snapshots/0123456789ab"), "google/gemma-2-2b@01234567");
        assert_eq!(
            name("hub/models--google--gemma-scope-2b-pt-res/snapshots/fedcba98765/layer_12/width_16k/average_l0_82"),
            "hub/google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_82"
        );
        assert_eq!(name("mine/gpt2-xl"), "mine/gpt2-xl");
        assert_eq!(name(""), ".");
    }

    #[test]
    fn finds_an_sae_seven_levels_down() {
        let root = std::env::temp_dir().join(format!("steerlab-scan-{}", std::process::id()));
        let deep = root.join("hub/models--google--gemma-scope-2b-pt-res/snapshots/abc/layer_12/width_16k/l0_82");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("params.npz"), b"PK").unwrap();
        let found = scan(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "hub/google/gemma-scope-2b-pt-res@abc/layer_12/width_16k/l0_82");
        assert_eq!((found[0].kind, found[0].bytes), (Kind::Sae, 2));
    }
}
