//! `steerlab fetch REPO`: downloads a model's (or an SAE repository's) files from the Hugging Face hub into the
//! hub cache layout that `steerlab serve` and huggingface_hub both read (`models--owner--name/blobs`,
//! `snapshots/COMMIT/…` links, `refs/REVISION`), with a progress line, resume of interrupted downloads (HTTP
//! Range, within a run and across runs) and a checksum of every file against the hub's (sha256 of LFS files,
//! the git blob id of the others).

pub mod data;
mod download;
mod hub;

use download::{Download, Progress};
use hub::{Hub, Sibling};
use std::path::{Path, PathBuf};
use steerlab::error::{Error, Result};

/// What a model needs when no `--include` is given.
const MODEL_FILES: &[&str] =
    &["config.json", "tokenizer.json", "model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"];

#[derive(clap::Args)]
pub struct FetchArgs {
    /// Repository on the hub, `owner/name`, or a SAELens id (`release/sae_id`, see `steerlab saes`): e.g.
    /// openai-community/gpt2-xl, EleutherAI/pythia-410m-deduped, google/gemma-2-2b,
    /// google/gemma-scope-2b-pt-res (with --include), gpt2-small-res-jb/blocks.6.hook_resid_pre.
    repo: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    revision: String,
    /// Files to fetch, as patterns where `*` matches anything (`/` too), e.g.
    /// 'layer_20/width_16k/average_l0_71/*'. Default: what a model needs (config.json, tokenizer.json and
    /// model.safetensors or its index and shards).
    #[arg(long)]
    include: Vec<String>,
    /// The hub or a mirror of it. Default: $HF_ENDPOINT, else https://huggingface.co.
    #[arg(long)]
    hub: Option<String>,
    /// Cache folder. Default: the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub),
    /// where `steerlab serve` looks.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Times to resume a file after a dropped connection before giving up.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Seconds without a byte from the server before a transfer is dropped and resumed.
    #[arg(long, default_value_t = 60)]
    read_timeout: u64,
    /// Send the access token to an http:// hub too (anyone on the way can read it); by default it goes only over
    /// https://.
    #[arg(long)]
    allow_insecure_token: bool,
}

pub fn run(mut args: FetchArgs) -> Result<()> {
    // A SAELens id (`gpt2-small-res-jb/blocks.6.hook_resid_pre`) names its release's repository and one folder.
    if args.include.is_empty()
        && let Ok((release, sae)) = steerlab::sae::releases::resolve(&args.repo)
    {
        eprintln!("{}: {} in {}", args.repo, sae.path, release.repo);
        args.include = release.files_of(sae);
        args.repo = release.repo.to_string();
    }
    let snapshot = download(&args)?;
    println!("{}", snapshot.display());
    Ok(())
}

impl FetchArgs {
    /// What `steerlab fetch REPO --include PATTERN…` does, with the defaults for everything else.
    pub fn files(repo: &str, revision: &str, include: Vec<String>) -> Self {
        Self {
            repo: repo.into(),
            revision: revision.into(),
            include,
            hub: None,
            cache: None,
            retries: 5,
            read_timeout: 60,
            allow_insecure_token: false,
        }
    }
}

/// Downloads what `args` asks for into the cache and returns the snapshot folder.
pub fn download(args: &FetchArgs) -> Result<PathBuf> {
    check_repo(&args.repo)?;
    check_revision(&args.revision)?;
    let cache = args
        .cache
        .clone()
        .or_else(crate::serve::library::hub_cache)
        .ok_or_else(|| Error::invalid("no cache folder: pass --cache DIR"))?;
    let endpoint = args.hub.clone().or_else(|| std::env::var("HF_ENDPOINT").ok().filter(|v| !v.is_empty()));
    let endpoint = endpoint.as_deref().unwrap_or("https://huggingface.co");
    let mut token = token();
    if token.is_some() && endpoint.starts_with("http://") && !args.allow_insecure_token {
        eprintln!(
            "note: the access token is not sent to {endpoint} (plain http): pass --allow-insecure-token to send it"
        );
        token = None;
    }
    let read_timeout = std::time::Duration::from_secs(args.read_timeout.max(1));
    let hub = Hub::new(endpoint, token, read_timeout)?;

    let listing = hub.revision(&args.repo, &args.revision)?;
    let patterns: Vec<&str> = match args.include.is_empty() {
        true => MODEL_FILES.to_vec(),
        false => args.include.iter().map(String::as_str).collect(),
    };
    let files: Vec<&Sibling> = listing.siblings.iter().filter(|s| patterns.iter().any(|p| glob(p, &s.path))).collect();
    if files.is_empty() {
        let some: Vec<&str> = listing.siblings.iter().take(12).map(|s| s.path.as_str()).collect();
        return Err(Error::invalid(format!(
            "nothing in {}@{} matches {}; pick files with --include (it has: {}{})",
            args.repo,
            args.revision,
            patterns.join(", "),
            some.join(", "),
            if listing.siblings.len() > some.len() { ", …" } else { "" }
        )));
    }
    if args.include.is_empty() {
        for needed in ["config.json", "tokenizer.json"] {
            if !files.iter().any(|f| f.path == needed) {
                eprintln!("warning: {} has no {needed}; steerlab needs one to load it as a model", args.repo);
            }
        }
    }

    let repo_dir = cache.join(format!("models--{}", args.repo.replace('/', "--")));
    let snapshot = repo_dir.join("snapshots").join(&listing.commit);
    let total: u64 = files.iter().map(|f| f.size).sum();
    eprintln!(
        "fetching {} file(s), {}, of {}@{} ({}) into {}",
        files.len(),
        download::human_bytes(total),
        args.repo,
        args.revision,
        &listing.commit[..8],
        repo_dir.display()
    );
    for (i, file) in files.iter().enumerate() {
        let blob = repo_dir.join("blobs").join(&file.oid);
        let label = format!("[{}/{}] {}", i + 1, files.len(), file.path);
        // A cached blob is trusted only once its checksum matches (a right-sized file can still be wrong).
        let cached = std::fs::metadata(&blob).is_ok_and(|m| m.len() == file.size);
        let cached = cached
            && match download::verify(&blob, &file.check, file.size) {
                Ok(()) => true,
                Err(why) => {
                    eprintln!("{label}: the cached copy is damaged ({why}); fetching it afresh");
                    std::fs::remove_file(&blob).map_err(|e| Error::file(blob.display().to_string(), e))?;
                    false
                }
            };
        if cached {
            eprintln!("{label}: already in the cache");
        } else {
            let url = hub.resolve_url(&args.repo, &listing.commit, &file.path);
            let job = Download { url: &url, size: file.size, check: &file.check, retries: args.retries };
            job.run(&hub, &blob, &mut Progress::new(&label, file.size))?;
        }
        link(&snapshot, &file.path, &blob)?;
    }
    if args.revision != listing.commit {
        let refs = repo_dir.join("refs").join(&args.revision);
        write_file(&refs, listing.commit.as_bytes())?;
    }
    eprintln!("done: `steerlab serve` offers it as {}@{}", args.repo, &listing.commit[..8]);
    Ok(snapshot)
}

fn check_repo(repo: &str) -> Result<()> {
    steerlab::hub_names::check_repo(repo).map_err(Error::invalid)
}

fn check_revision(rev: &str) -> Result<()> {
    steerlab::hub_names::check_revision(rev).map_err(Error::invalid)
}

/// The access token for gated or private repositories (Gemma): $HF_TOKEN, else the one `hf auth login` saved.
fn token() -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    env("HF_TOKEN").or_else(|| {
        let path = env("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
            let home = env("HF_HOME")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache/huggingface")));
            home.map(|h| h.join("token"))
        })?;
        std::fs::read_to_string(path).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
    })
}

/// `*` matches any run of characters, `/` included; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Points `snapshot/path` at the blob: a relative symlink where the system has them (as huggingface_hub does),
/// a copy elsewhere.
fn link(snapshot: &Path, path: &str, blob: &Path) -> Result<()> {
    let dest = snapshot.join(path);
    let parent = dest.parent().expect("a file in the snapshot");
    std::fs::create_dir_all(parent).map_err(|e| Error::file(parent.display().to_string(), e))?;
    let _ = std::fs::remove_file(&dest);
    #[cfg(unix)]
    {
        let up = "../".repeat(path.matches('/').count() + 2);
        let target = format!("{up}blobs/{}", blob.file_name().unwrap().to_string_lossy());
        std::os::unix::fs::symlink(target, &dest).map_err(|e| Error::file(dest.display().to_string(), e))
    }
    #[cfg(not(unix))]
    {
        std::fs::copy(blob, &dest).map(drop).map_err(|e| Error::file(dest.display().to_string(), e))
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().expect("a file in the cache");
    std::fs::create_dir_all(parent).map_err(|e| Error::file(parent.display().to_string(), e))?;
    std::fs::write(path, bytes).map_err(|e| Error::file(path.display().to_string(), e))
}
