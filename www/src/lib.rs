//! The browser lab's shared pieces: what the page and its engine worker say to each other (JSON messages over
//! `postMessage`), the model catalogue, download-progress wording and the SVG plots, all unit-tested natively;
//! and, in wasm32 only, the cached download both bins use (`fetch`).

pub mod catalog;
#[cfg(target_arch = "wasm32")]
pub mod fetch;
pub mod plot;
pub mod progress;
pub mod reading;

use serde::{Deserialize, Serialize};
pub use steerlab::device::Precision;
use steerlab::engine::{Event, Reply, Request};

/// The Cache Storage bucket holding downloaded model and SAE files (the service worker keeps the site apart).
pub const MODEL_CACHE: &str = "steerlab-models-v1";

/// `{base}/{repo}/resolve/{revision}/{file}`, as the Hugging Face hub serves files: each part checked (a revision
/// may come from a shared permalink) and percent-encoded.
pub fn hub_url(base: &str, repo: &str, revision: &str, file: &str) -> Result<String, String> {
    steerlab::hub_names::resolve_url(base, repo, revision, file)
}

/// The largest file the browser downloads: the tab holds it whole in wasm32's 4 GiB, beside the model it becomes.
/// GPT-2 small is 548 MB and Pythia-410M 911 MB; larger models run in the helper.
pub const MAX_DOWNLOAD_BYTES: u64 = 1536 << 20;

/// Why a download of `n` bytes is refused.
pub fn too_large(url: &str, n: u64) -> String {
    format!("{url} is {n} bytes, over the {MAX_DOWNLOAD_BYTES} a browser tab can hold: load it in the native helper")
}

/// Why a random SAE (`Source::Random`) of `d_in` × `d_sae` is refused: its f32 encoder and decoder, made in the
/// tab, would take more than a download may.
pub fn random_sae_too_large(d_in: usize, d_sae: usize) -> Option<String> {
    let bytes = (d_in as u64).saturating_mul(d_sae as u64).saturating_mul(2 * 4);
    (bytes > MAX_DOWNLOAD_BYTES).then(|| too_large(&format!("a random {d_in} x {d_sae} SAE"), bytes))
}

/// The engine device a learner asked for (`?device=` in the page URL, else the saved choice): `auto` takes a
/// hardware WebGPU adapter and else the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    WebGpu,
    Cpu,
}

impl DeviceChoice {
    pub const ALL: [DeviceChoice; 3] = [DeviceChoice::Auto, DeviceChoice::WebGpu, DeviceChoice::Cpu];

    /// From its name; anything else is `Auto`.
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "webgpu" | "gpu" => Self::WebGpu,
            "cpu" => Self::Cpu,
            _ => Self::Auto,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::WebGpu => "webgpu",
            Self::Cpu => "cpu",
        }
    }

    /// The `device` value of a URL query such as `?device=cpu&x=1`.
    pub fn from_query(search: &str) -> Option<Self> {
        query_value(search, "device").map(Self::parse)
    }
}

/// `key`'s value in a URL query such as `?device=cpu&precision=f16`.
fn query_value<'a>(search: &'a str, key: &str) -> Option<&'a str> {
    search.trim_start_matches('?').split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The weights' precision a URL query asks for (`precision=f16`; anything else is f32), if it names one.
pub fn precision_from_query(search: &str) -> Option<Precision> {
    query_value(search, "precision").map(|p| p.parse().unwrap_or_default())
}

/// Whether a WebGPU adapter is a software renderer (SwiftShader, llvmpipe, lavapipe, WARP): one the browser marks
/// as a fallback, or whose vendor, architecture or description names one. On those the CPU fallback is much
/// faster (measured: CAA 15.6 s on SwiftShader against 0.14 s on the CPU; the diagnostics 511 s against 8.9 s).
pub fn software_adapter(fallback_flag: bool, descriptions: &[String]) -> bool {
    const SOFTWARE: [&str; 6] = ["swiftshader", "llvmpipe", "lavapipe", "software", "basic render", "warp"];
    fallback_flag || descriptions.iter().any(|d| SOFTWARE.iter().any(|s| d.to_ascii_lowercase().contains(s)))
}

/// Where a model or SAE comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    /// Files under `{base}/{repo}/resolve/{revision}/{folder}/`.
    Hub { base: String, repo: String, revision: String, folder: Option<String> },
    /// Files the user dropped or picked; they travel beside the message as `File` objects.
    Local { names: Vec<String> },
    /// Random weights for `config`, without a download, for full-size benchmarks: a model's config.json (with
    /// the embedded GPT-2 tokenizer) or an SAE's cfg.json.
    Random { config: String },
}

/// What to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Model,
    Sae,
}

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Load a model (dropping an SAE that no longer fits) or an SAE; `label` names it on the page. SAE configs get
    /// `config_overrides` (a JSON object) merged in first. `id` lets a Cancel stop the download.
    Load {
        id: u32,
        kind: Kind,
        label: String,
        source: Source,
        #[serde(default)]
        config_overrides: Option<String>,
    },
    /// Run an engine request; its events and reply carry `id`.
    Run { id: u32, request: Request },
    /// Stop request `id` (or a load) at its next step.
    Cancel { id: u32 },
}

/// Worker → page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The device the engine runs on, whether it is the CPU fallback, and why it was chosen.
    Device {
        device: String,
        fallback: bool,
        #[serde(default)]
        why: String,
    },
    /// Start-up or loading progress, in words.
    Status {
        text: String,
    },
    /// Bytes of one file so far; `total` when the server says it; `cached` when read from Cache Storage.
    Progress {
        file: String,
        loaded: u64,
        total: Option<u64>,
        cached: bool,
    },
    /// A model or SAE is loaded: its label, the model's layer count, the SAE's hook.
    Loaded {
        kind: Kind,
        label: String,
        n_layers: usize,
        hook: Option<String>,
    },
    /// Loading failed; what was loaded before stays loaded.
    LoadFailed {
        kind: Kind,
        error: String,
    },
    /// Something failed outside any request (start-up, a message the worker could not read), in words.
    Failed {
        error: String,
    },
    /// The engine panicked (a burn or wgpu panic: a lost GPU, a buffer the adapter refused): the worker's wasm
    /// aborts right after this message, and everything it held is gone. The page restarts the worker.
    Crashed {
        error: String,
    },
    Event {
        id: u32,
        event: Event,
    },
    Reply {
        id: u32,
        reply: Reply,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choices_and_software_adapters() {
        assert_eq!(DeviceChoice::from_query("?x=1&device=cpu"), Some(DeviceChoice::Cpu));
        assert_eq!(DeviceChoice::from_query("?device=WebGPU"), Some(DeviceChoice::WebGpu));
        assert_eq!(DeviceChoice::from_query("?device=nonsense"), Some(DeviceChoice::Auto));
        assert_eq!(DeviceChoice::from_query(""), None);
        assert_eq!(DeviceChoice::from_query("?devices=cpu"), None);
        assert_eq!(precision_from_query("?device=webgpu&precision=f16"), Some(Precision::F16));
        assert_eq!(precision_from_query("?precision=f64"), Some(Precision::F32));
        assert_eq!(precision_from_query("?device=cpu"), None);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(software_adapter(false, &s(&["google", "swiftshader", "SwiftShader Device (Subzero)"])));
        assert!(software_adapter(false, &s(&["mesa", "llvmpipe (LLVM 15.0.6, 256 bits)"])));
        assert!(software_adapter(true, &s(&[])));
        assert!(!software_adapter(false, &s(&["nvidia", "ampere", "NVIDIA GeForce RTX 3080"])));
        assert!(!software_adapter(false, &s(&["apple", "metal-3"])));
    }

    #[test]
    fn messages_round_trip() {
        let m = ToWorker::Run { id: 3, request: Request::Status };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"type":"run","id":3,"request":{"op":"status"}}"#);
        assert!(matches!(serde_json::from_str(&json).unwrap(), ToWorker::Run { id: 3, .. }));
        let load = ToWorker::Load {
            id: 1,
            config_overrides: None,
            kind: Kind::Sae,
            label: "x".into(),
            source: Source::Local { names: vec!["cfg.json".into()] },
        };
        let back: ToWorker = serde_json::from_str(&serde_json::to_string(&load).unwrap()).unwrap();
        assert!(matches!(back, ToWorker::Load { kind: Kind::Sae, source: Source::Local { .. }, .. }));
        // The worker's panic hook sends this; tests/e2e sends it as the hook would.
        let crashed = serde_json::to_string(&FromWorker::Crashed { error: "panicked at x".into() }).unwrap();
        assert_eq!(crashed, r#"{"type":"crashed","error":"panicked at x"}"#);
        assert_eq!(hub_url("hub/", "a/b", "main", "config.json").unwrap(), "hub/a/b/resolve/main/config.json");
        let e = hub_url("https://hf.co", "a/b", "../../evil?x=", "config.json").unwrap_err();
        assert!(e.contains("is not a revision"), "{e}");
        assert!(too_large("u", 1 << 31).contains("over the 1610612736 a browser tab can hold"));
        // GPT-2 small's 24,576-feature SAE is made in the tab; Gemma Scope's 1M-feature one is refused.
        assert_eq!(random_sae_too_large(768, 24_576), None);
        let e = random_sae_too_large(2304, 1 << 20).unwrap();
        assert!(e.starts_with("a random 2304 x 1048576 SAE is 19327352832 bytes, over the"), "{e}");
        assert!(random_sae_too_large(usize::MAX, usize::MAX).is_some());
    }
}
