//! Real datasets (`steerlab::steer::remote`: Rimsky et al.'s CAA A/B sets) fetched by the page at their pinned
//! commits, through Cache Storage so a second visit, and offline use, read them from the browser. `?data=URL` in
//! the page's address points at a mirror laid out as raw.githubusercontent.com is (`/{repo}/{commit}/{path}`).

use super::bridge::{self, Status};
use super::steer::Exp;
use leptos::prelude::*;
use steerlab::steer::dataset::Dataset;
use steerlab::steer::remote::{
    Behaviour, MAX_REMOTE_BYTES, RAW_BASE, RemoteFile, WIKITEXT, behaviour, wikitext_passages,
};
use steerlab_www::fetch::{Fetch, fetch_cached};

/// The Cache Storage bucket for datasets.
pub const DATA_CACHE: &str = "steerlab-data";

/// A behaviour's sets, downloaded.
#[derive(Clone, PartialEq)]
pub struct RemoteSets {
    pub name: String,
    pub train: String,
    pub test: String,
}

/// Where raw files come from: the page's `?data=` or raw.githubusercontent.com.
pub fn data_base() -> String {
    let search = window().location().search().unwrap_or_default();
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()
        .and_then(|p| p.get("data"))
        .filter(|b| b.starts_with("https://") || b.starts_with("http://"))
        .unwrap_or_else(|| RAW_BASE.to_string())
}

/// One file's text: from the cache, else fetched (at most `MAX_REMOTE_BYTES`, its progress in the status line)
/// and kept there.
async fn fetch_text(file: &RemoteFile) -> Result<String, String> {
    let url = file.url(&data_base());
    let lab = bridge::lab();
    let mut last = 0.0;
    let fetched = fetch_cached(Fetch {
        url: &url,
        bucket: DATA_CACHE,
        max_bytes: MAX_REMOTE_BYTES,
        too_large: &|_| format!("{url} is larger than a dataset here may be"),
        progress: &mut |loaded, total, cached| {
            let now = js_sys::Date::now();
            if !cached && now - last > 200.0 {
                last = now;
                let of = total.map_or_else(String::new, |t| format!(" of {}", steerlab_www::progress::bytes(t)));
                let so_far = steerlab_www::progress::bytes(loaded);
                lab.status.set(Status::Info(format!("Fetching {}: {so_far}{of}…", file.path)));
            }
        },
        cancelled: &|| false,
    })
    .await?;
    String::from_utf8(fetched.bytes).map_err(|_| format!("{url} is not UTF-8 text"))
}

/// The chosen remote behaviour, if the dataset picker names one (`caa/NAME`).
pub fn chosen(exp: &Exp) -> Option<&'static Behaviour> {
    let name = exp.dataset.get_untracked();
    name.starts_with("caa/").then(|| behaviour(&name).ok()).flatten()
}

/// Whether the chosen dataset must be downloaded before anything can use it.
pub fn needs_download(exp: &Exp) -> bool {
    chosen(exp).is_some_and(|b| exp.remote.with_untracked(|r| r.as_ref().is_none_or(|r| r.name != b.name)))
}

/// Downloads the chosen behaviour's sets (or reads them from the cache), checks they are A/B sets, and keeps them
/// in `exp.remote`.
pub async fn download(exp: Exp) -> Result<(), String> {
    let Some(b) = chosen(&exp) else { return Ok(()) };
    let lab = bridge::lab();
    lab.status.set(Status::Info(format!("Fetching Rimsky et al.'s {} sets ({})…", b.label, data_base())));
    let (train, test) = (fetch_text(&b.train).await?, fetch_text(&b.test).await?);
    let mut counts = Vec::new();
    for (text, file) in [(&train, &b.train), (&test, &b.test)] {
        match Dataset::parse(text, file.path) {
            Ok(d @ Dataset::Ab(_)) => counts.push(d.len()),
            Ok(_) => return Err(format!("{} holds pairs, not A/B items", file.path)),
            Err(e) => return Err(e.to_string()),
        }
    }
    exp.remote.set(Some(RemoteSets { name: b.name.to_string(), train, test }));
    lab.status.set(Status::Info(format!(
        "Rimsky et al.'s {}: {} A/B items to build the vector from, {} held out to measure it.",
        b.label, counts[0], counts[1]
    )));
    Ok(())
}

/// Runs `then` once the chosen dataset is in (at once when it needs no download).
pub fn when_ready(exp: Exp, then: impl FnOnce() + 'static) {
    if !needs_download(&exp) {
        return then();
    }
    wasm_bindgen_futures::spawn_local(async move {
        match download(exp).await {
            Ok(()) => then(),
            Err(e) => bridge::lab().status.set(Status::Error(e)),
        }
    });
}

/// The background text the diagnostics, feature scores and populations read: the built-in passages, or
/// WikiText-2's test split (about 280k GPT-2 tokens), downloaded once when chosen.
#[derive(Clone, Copy)]
pub struct Background {
    pub wikitext: RwSignal<bool>,
    passages: RwSignal<Option<String>>,
}

thread_local! {
    static BACKGROUND: std::cell::Cell<Option<Background>> = const { std::cell::Cell::new(None) };
}

/// The page's background choice, for code that runs outside a component (event handlers, callbacks).
pub fn background() -> Background {
    BACKGROUND.with(|b| b.get()).expect("the background choice starts before any view")
}

impl Background {
    /// The page's one background choice; `background()` finds it from then on.
    pub fn start() -> Self {
        let b = Self { wikitext: RwSignal::new(false), passages: RwSignal::new(None) };
        BACKGROUND.with(|c| c.set(Some(b)));
        b
    }

    /// Runs `then` with the corpus a request should carry (None: the built-in one), fetching WikiText-2 first when
    /// it is chosen and not yet in.
    pub fn with_corpus(self, then: impl FnOnce(Option<String>) + 'static) {
        if !self.wikitext.get_untracked() {
            return then(None);
        }
        if let Some(p) = self.passages.get_untracked() {
            return then(Some(p));
        }
        wasm_bindgen_futures::spawn_local(async move {
            let lab = bridge::lab();
            lab.status.set(Status::Info(format!("Fetching WikiText-2's test split ({})…", data_base())));
            match fetch_text(&WIKITEXT).await {
                Ok(raw) => {
                    let passages = wikitext_passages(&raw);
                    lab.status.set(Status::Info(format!(
                        "WikiText-2's test split: {} passages of background text.",
                        passages.lines().count()
                    )));
                    self.passages.set(Some(passages.clone()));
                    then(Some(passages));
                }
                Err(e) => lab.status.set(Status::Error(e)),
            }
        });
    }
}

/// The choice of background text, for the panels that read one.
#[component]
pub fn BackgroundChoice() -> impl IntoView {
    let bg = background();
    view! {
        <label class="note"><input type="checkbox" aria-label="WikiText-2 background text"
            prop:checked=move || bg.wikitext.get() on:change=move |_| bg.wikitext.update(|w| *w = !*w) />
            " Background text: WikiText-2's test split (about 280k tokens, downloaded once; its <unk> markers \
            dropped) instead of the 30 built-in passages — for the norms, default components, feature scores and \
            populations. Slower: every token runs through the model."</label>
    }
}
