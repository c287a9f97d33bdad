//! `steerlab fetch-data NAME...`: Rimsky et al.'s CAA A/B sets and a background corpus (`steer::remote`), fetched
//! at pinned commits into a cache folder with progress, checked (the A/B sets parse; the corpus becomes one passage
//! a line) and named as the other commands take them (`--pairs`, `--eval`, `--corpus`). A file already in the
//! cache is not fetched again: at a pinned commit it cannot have changed.

use super::download::{CopyError, Progress, copy_body, human_bytes};
use super::hub::Hub;
use std::path::{Path, PathBuf};
use steerlab::error::{Error, Result};
use steerlab::steer::dataset::Dataset;
use steerlab::steer::remote::{
    CAA_BEHAVIOURS, MAX_REMOTE_BYTES, RAW_BASE, RemoteFile, WIKITEXT, WIKITEXT_NAME, behaviour, wikitext_passages,
};

#[derive(clap::Args)]
pub struct FetchDataArgs {
    /// `caa/BEHAVIOUR` (sycophancy, hallucination, refusal, survival-instinct, myopic-reward,
    /// corrigible-neutral-HHH, coordinate-other-ais), `caa` for all seven, or `wikitext-2` (a background corpus of
    /// about 280k GPT-2 tokens).
    #[arg(required = true)]
    names: Vec<String>,
    /// Where the raw files are served, as `{base}/{repo}/{commit}/{path}`. Default: $STEERLAB_DATA_BASE, else
    /// https://raw.githubusercontent.com.
    #[arg(long)]
    base: Option<String>,
    /// Cache folder. Default: $STEERLAB_DATA, else ~/.cache/steerlab/data.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seconds without a byte from the server before giving up.
    #[arg(long, default_value_t = 60)]
    read_timeout: u64,
}

pub fn run(a: FetchDataArgs) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let base = a.base.or_else(|| env("STEERLAB_DATA_BASE")).unwrap_or_else(|| RAW_BASE.to_string());
    let dir = a
        .dir
        .or_else(|| env("STEERLAB_DATA").map(PathBuf::from))
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache/steerlab/data")))
        .ok_or_else(|| Error::invalid("no cache folder: pass --dir DIR"))?;
    let http = Hub::new(&base, None, std::time::Duration::from_secs(a.read_timeout.max(1)))?;
    // Every name is checked before anything is fetched.
    let mut wanted = Vec::new();
    for name in &a.names {
        match name.as_str() {
            "caa" => wanted.extend(CAA_BEHAVIOURS.iter().map(Some)),
            n if n == WIKITEXT_NAME => wanted.push(None),
            n => wanted.push(Some(behaviour(n)?)),
        }
    }
    for item in wanted {
        match item {
            Some(b) => {
                let train = fetch(&http, &base, &b.train, &dir)?;
                let test = fetch(&http, &base, &b.test, &dir)?;
                let (n_train, n_test) = (ab_items(&train)?, ab_items(&test)?);
                println!("caa/{}: {n_train} A/B items to build the vector from, {n_test} held out", b.name);
                println!("  --pairs {} --eval {}", train.display(), test.display());
            }
            None => {
                let raw = fetch(&http, &base, &WIKITEXT, &dir)?;
                let passages = raw.with_extension("passages.txt");
                let text = read(&raw)?;
                let out = wikitext_passages(&text);
                std::fs::write(&passages, &out).map_err(|e| Error::file(passages.display().to_string(), e))?;
                println!("{WIKITEXT_NAME}: {} passages, {}", out.lines().count(), human_bytes(out.len() as u64));
                println!("  --corpus {}", passages.display());
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::file(path.display().to_string(), e))
}

/// How many A/B items a fetched file holds; a file that is not an A/B set is removed, so the next run fetches it
/// again.
fn ab_items(path: &Path) -> Result<usize> {
    let name = path.display().to_string();
    match Dataset::parse(&read(path)?, &name) {
        Ok(d @ Dataset::Ab(_)) => Ok(d.len()),
        other => {
            let _ = std::fs::remove_file(path);
            let why = other.err().map_or_else(|| "contrastive pairs, not A/B items".to_string(), |e| e.to_string());
            Err(Error::file(name, format!("not an A/B set ({why}); removed it")))
        }
    }
}

/// One file into `dir/repo/commit/path`, unless it is there already: into `.incomplete`, then renamed.
fn fetch(http: &Hub, base: &str, file: &RemoteFile, dir: &Path) -> Result<PathBuf> {
    let path = dir.join(file.cache_path());
    if path.is_file() {
        return Ok(path);
    }
    let url = file.url(base);
    let resp = http.get(&url, 0).map_err(|e| Error::invalid(format!("cannot reach {url}: {e}")))?;
    let status = resp.status().as_u16();
    if status == 404 {
        return Err(Error::invalid(format!("{url}: no such file (404): is the mirror at {base} complete?")));
    }
    if !(200..300).contains(&status) {
        return Err(Error::invalid(format!("{url}: the server answered {status}")));
    }
    let total = resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = total.filter(|&n| n > MAX_REMOTE_BYTES) {
        return Err(Error::invalid(format!("{url} is {}, more than a dataset here may be", human_bytes(n))));
    }
    let parent = path.parent().expect("a file path has a folder");
    std::fs::create_dir_all(parent).map_err(|e| Error::file(parent.display().to_string(), e))?;
    let part = path.with_extension("incomplete");
    let io = |e: std::io::Error| Error::file(part.display().to_string(), e);
    let mut out = std::fs::File::create(&part).map_err(io)?;
    // An unknown length (no Content-Length) is allowed, bounded by what a dataset may be.
    let mut progress = Progress::new(file.path, total.unwrap_or(0));
    let copied = copy_body(&mut resp.into_body().into_reader(), &mut out, 0, MAX_REMOTE_BYTES, &mut progress);
    progress.finish_line();
    drop(out);
    let done = match copied {
        Ok(done) if total.is_none_or(|t| t == done) => done,
        failed => {
            let _ = std::fs::remove_file(&part);
            return Err(match failed {
                Ok(done) => {
                    Error::invalid(format!("{url}: the transfer stopped at {done} of {} bytes", total.unwrap_or(0)))
                }
                Err(CopyError::Lost(e)) => Error::invalid(format!("{url}: the transfer broke: {e}")),
                Err(CopyError::TooLong) => {
                    Error::invalid(format!("{url} goes on past {}: not a dataset", human_bytes(MAX_REMOTE_BYTES)))
                }
                Err(CopyError::Write(e)) => io(e),
            });
        }
    };
    std::fs::rename(&part, &path).map_err(|e| Error::file(path.display().to_string(), e))?;
    eprintln!("fetched {} ({})", path.display(), human_bytes(done));
    Ok(path)
}
