//! Getting a model's or SAE's files into the worker: from a hub-layout URL through Cache Storage (so the next
//! visit, and offline use, reads them from the browser), streamed with progress; or from files the user dropped.

use super::worker::post;
use std::cell::Cell;
use steerlab_www::fetch::{Fetch, fetch_cached, js_error};
use steerlab_www::{FromWorker, MAX_DOWNLOAD_BYTES, Source, hub_url, too_large};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The Cache Storage bucket for model and SAE files; the page shows its size and clears it.
pub const CACHE: &str = steerlab_www::MODEL_CACHE;

/// The bytes of each requested file, in the order asked.
pub struct Files(pub Vec<Vec<u8>>);

pub async fn read_files(
    source: &Source,
    names: &[&str],
    dropped: &js_sys::Array,
    cancel: &Cell<bool>,
) -> Result<Files, String> {
    let mut out = Vec::new();
    match source {
        Source::Hub { base, repo, revision, folder } => {
            for name in names {
                let path = match folder {
                    Some(f) => format!("{f}/{name}"),
                    None => name.to_string(),
                };
                out.push(download(&hub_url(base, repo, revision, &path)?, name, cancel).await?);
            }
        }
        Source::Random { .. } => return Err("random weights have no files".into()),
        Source::Local { .. } => {
            let files: Vec<web_sys::File> = dropped.iter().filter_map(|f| f.dyn_into().ok()).collect();
            for name in names {
                let Some(file) = files.iter().find(|f| f.name() == *name) else {
                    let got: Vec<String> = files.iter().map(|f| f.name()).collect();
                    return Err(format!(
                        "{name} is missing: drop {} together (got: {})",
                        names.join(", "),
                        got.join(", ")
                    ));
                };
                let buf = JsFuture::from(file.array_buffer())
                    .await
                    .map_err(|e| format!("reading {name}: {}", js_error(e)))?;
                let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                post(FromWorker::Progress {
                    file: name.to_string(),
                    loaded: bytes.len() as u64,
                    total: Some(bytes.len() as u64),
                    cached: true,
                });
                out.push(bytes);
            }
        }
    }
    Ok(Files(out))
}

/// One file: from the cache when it is there, else fetched with progress and stored.
async fn download(url: &str, name: &str, cancel: &Cell<bool>) -> Result<Vec<u8>, String> {
    let fetched = fetch_cached(Fetch {
        url,
        bucket: CACHE,
        max_bytes: MAX_DOWNLOAD_BYTES,
        too_large: &|n| too_large(url, n),
        progress: &mut |loaded, total, cached| {
            post(FromWorker::Progress { file: name.into(), loaded, total, cached });
        },
        cancelled: &|| cancel.get(),
    })
    .await?;
    if let Some(why) = fetched.not_kept {
        post(FromWorker::Status { text: format!("{name} could not be kept for offline use: {why}") });
    }
    Ok(fetched.bytes)
}
