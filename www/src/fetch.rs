//! One download through Cache Storage, for the page (datasets) and the engine worker (models and SAEs) alike:
//! the cached copy when there is one (so a second visit, and offline use, read from the browser), else the body
//! streamed chunk by chunk under a byte cap, with progress and a way to stop, then kept in the cache.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// What a download may take and how it reports.
pub struct Fetch<'a> {
    pub url: &'a str,
    /// The Cache Storage bucket it is kept in.
    pub bucket: &'a str,
    /// The most bytes it may be, and the message when it is more (given the size seen so far).
    pub max_bytes: u64,
    pub too_large: &'a dyn Fn(u64) -> String,
    /// (bytes so far, the size the server gave, whether from the cache): at the start, about ten times a second,
    /// and at the end.
    pub progress: &'a mut dyn FnMut(u64, Option<u64>, bool),
    /// Checked before each chunk: stop and answer "cancelled".
    pub cancelled: &'a dyn Fn() -> bool,
}

/// The bytes, and why they could not be kept in the cache if they could not (they are still good).
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub not_kept: Option<String>,
}

pub fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// The global scope this runs in: the page's window or the worker's, which both fetch and have Cache Storage.
enum Scope {
    Window(web_sys::Window),
    Worker(web_sys::WorkerGlobalScope),
}

impl Scope {
    fn here() -> Self {
        match js_sys::global().dyn_into::<web_sys::Window>() {
            Ok(w) => Self::Window(w),
            Err(g) => Self::Worker(g.unchecked_into()),
        }
    }

    fn caches(&self) -> Result<web_sys::CacheStorage, JsValue> {
        match self {
            Self::Window(w) => w.caches(),
            Self::Worker(w) => w.caches(),
        }
    }

    fn fetch(&self, url: &str) -> js_sys::Promise {
        match self {
            Self::Window(w) => w.fetch_with_str(url),
            Self::Worker(w) => w.fetch_with_str(url),
        }
    }
}

pub async fn fetch_cached(f: Fetch<'_>) -> Result<Fetched, String> {
    let url = f.url;
    let fail = |e: JsValue| format!("downloading {url} failed: {}", js_error(e));
    let scope = Scope::here();
    // Cache Storage is missing on insecure origins and in some private modes: then files are just downloaded.
    let cache: Option<web_sys::Cache> = match scope.caches() {
        Ok(c) => JsFuture::from(c.open(f.bucket)).await.ok().and_then(|c| c.dyn_into().ok()),
        Err(_) => None,
    };
    if let Some(cache) = &cache
        && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
        && let Ok(resp) = hit.dyn_into::<web_sys::Response>()
    {
        let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        let n = bytes.len() as u64;
        if n > f.max_bytes {
            return Err((f.too_large)(n));
        }
        (f.progress)(n, Some(n), true);
        return Ok(Fetched { bytes, not_kept: None });
    }

    let resp: web_sys::Response = JsFuture::from(scope.fetch(url))
        .await
        .map_err(|e| format!("cannot reach {url} ({}): check the address and your connection", js_error(e)))?
        .unchecked_into();
    if !resp.ok() {
        let why = match resp.status() {
            401 | 403 => "the repository is gated or private",
            404 => "no such file: check the repository, revision and path",
            _ => "the server refused",
        };
        return Err(format!("downloading {url} failed: HTTP {} ({why})", resp.status()));
    }
    let total = resp.headers().get("content-length").ok().flatten().and_then(|l| l.parse::<u64>().ok());
    if let Some(n) = total.filter(|&n| n > f.max_bytes) {
        return Err((f.too_large)(n));
    }
    let body = resp.body().ok_or_else(|| format!("{url} came back without a body"))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    let reserve = total.unwrap_or(0) as usize;
    bytes.try_reserve_exact(reserve).map_err(|_| format!("no memory for {url} ({reserve} bytes) in this tab"))?;
    let mut last_report = 0.0;
    (f.progress)(0, total, false);
    loop {
        if (f.cancelled)() {
            let _ = reader.cancel();
            return Err("cancelled".into());
        }
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if js_sys::Reflect::get(&chunk, &"done".into()).map_err(fail)?.as_bool() == Some(true) {
            break;
        }
        let value: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(fail)?.unchecked_into();
        let at = bytes.len();
        // The server may send more than it said (or say nothing): the cap holds all the same.
        let end = at + value.length() as usize;
        if end as u64 > f.max_bytes {
            let _ = reader.cancel();
            return Err((f.too_large)(end as u64));
        }
        bytes.try_reserve(end - at).map_err(|_| format!("no memory for {url} past {at} bytes in this tab"))?;
        bytes.resize(end, 0);
        value.copy_to(&mut bytes[at..]);
        // A report per chunk would flood the page: about ten a second.
        let now = js_sys::Date::now();
        if now - last_report > 100.0 {
            last_report = now;
            (f.progress)(bytes.len() as u64, total, false);
        }
    }
    (f.progress)(bytes.len() as u64, total, false);
    let not_kept = match &cache {
        None => None,
        Some(cache) => match web_sys::Response::new_with_opt_u8_array(Some(&mut bytes)) {
            Ok(r) => JsFuture::from(cache.put_with_str(url, &r)).await.err().map(js_error),
            Err(e) => Some(js_error(e)),
        },
    };
    Ok(Fetched { bytes, not_kept })
}
