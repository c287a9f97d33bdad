//! Getting a model's or SAE's files into the worker: from a hub-layout URL through Cache Storage (so the next
//! visit, and offline use, reads them from the browser), streamed with progress; or from files the user dropped.

use super::worker::post;
use std::cell::Cell;
use steerlab_www::{FromWorker, MAX_DOWNLOAD_BYTES, Source, download_reservation, hub_url, too_large};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The Cache Storage bucket for model and SAE files; the page shows its size and clears it.
pub const CACHE: &str = steerlab_www::MODEL_CACHE;

/// The bytes of each requested file, in the order asked.
pub struct Files(pub Vec<Vec<u8>>);

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}

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
        Source::Random { .. } => return Err("random models have no files".into()),
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

async fn open_cache() -> Option<web_sys::Cache> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    // Cache Storage is missing on insecure origins and in some private modes: then files are just downloaded.
    let caches = scope.caches().ok()?;
    JsFuture::from(caches.open(CACHE)).await.ok()?.dyn_into().ok()
}

/// One file: from the cache when it is there, else fetched with progress and stored.
async fn download(url: &str, name: &str, cancel: &Cell<bool>) -> Result<Vec<u8>, String> {
    let fail = |e: JsValue| format!("downloading {url} failed: {}", js_error(e));
    let cache = open_cache().await;
    if let Some(cache) = &cache
        && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
        && let Ok(resp) = hit.dyn_into::<web_sys::Response>()
    {
        let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        let n = bytes.len() as u64;
        post(FromWorker::Progress { file: name.into(), loaded: n, total: Some(n), cached: true });
        return Ok(bytes);
    }

    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp: web_sys::Response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(|e| format!("cannot reach {url} ({}): check the hub URL and your connection", js_error(e)))?
        .unchecked_into();
    if !resp.ok() {
        let why = match resp.status() {
            401 | 403 => "the repository is gated or private",
            404 => "no such file: check the repository, revision and folder",
            _ => "the server refused",
        };
        return Err(format!("downloading {url} failed: HTTP {} ({why})", resp.status()));
    }
    let total = resp.headers().get("content-length").ok().flatten().and_then(|l| l.parse::<u64>().ok());
    let body = resp.body().ok_or_else(|| format!("{url} came back without a body"))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    let reserve = download_reservation(url, total)?;
    bytes.try_reserve_exact(reserve).map_err(|_| format!("no memory for {url} ({reserve} bytes) in this tab"))?;
    let mut last_post = 0.0;
    post(FromWorker::Progress { file: name.into(), loaded: 0, total, cached: false });
    loop {
        if cancel.get() {
            let _ = reader.cancel();
            return Err("cancelled".into());
        }
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if js_sys::Reflect::get(&chunk, &"done".into()).map_err(fail)?.as_bool() == Some(true) {
            break;
        }
        let value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(fail)?.unchecked_into();
        let at = bytes.len();
        // The server may send more than it said (or say nothing): the cap holds all the same, without aborting.
        let end = at + value.length() as usize;
        if end as u64 > MAX_DOWNLOAD_BYTES {
            let _ = reader.cancel();
            return Err(too_large(url, end as u64));
        }
        bytes.try_reserve(end - at).map_err(|_| format!("no memory for {url} past {at} bytes in this tab"))?;
        bytes.resize(end, 0);
        value.copy_to(&mut bytes[at..]);
        // A message per chunk would flood the page: about ten a second.
        let now = js_sys::Date::now();
        if now - last_post > 100.0 {
            last_post = now;
            post(FromWorker::Progress { file: name.into(), loaded: bytes.len() as u64, total, cached: false });
        }
    }
    post(FromWorker::Progress { file: name.into(), loaded: bytes.len() as u64, total, cached: false });
    if let Some(cache) = cache {
        let stored = web_sys::Response::new_with_opt_u8_array(Some(&mut bytes));
        match stored {
            Ok(r) => {
                if let Err(e) = JsFuture::from(cache.put_with_str(url, &r)).await {
                    post(FromWorker::Status {
                        text: format!("{name} could not be kept for offline use: {}", js_error(e)),
                    });
                }
            }
            Err(e) => post(FromWorker::Status { text: format!("{name} could not be kept: {}", js_error(e)) }),
        }
    }
    Ok(bytes)
}
