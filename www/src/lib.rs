//! What the page and its engine worker say to each other: JSON messages over `postMessage`.

use serde::{Deserialize, Serialize};
use steerlab::engine::{Event, Reply, Request};

/// Where the embedded default model is served, in the Hugging Face hub's URL layout, relative to the page.
pub const DEFAULT_HUB: &str = "hub";
pub const DEFAULT_REPO: &str = "steerlab/gpt2-tiny";
pub const DEFAULT_REVISION: &str = "main";
pub const DEFAULT_LABEL: &str = "gpt2-tiny (embedded, random weights)";

/// The files of a hub model directory.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// `{base}/{repo}/resolve/{revision}/{file}`, as the hub serves files.
pub fn hub_url(base: &str, repo: &str, revision: &str, file: &str) -> String {
    format!("{}/{repo}/resolve/{revision}/{file}", base.trim_end_matches('/'))
}

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Run an engine request; its events and reply carry `id`.
    Run { id: u32, request: Request },
    /// Stop request `id` at its next step.
    Cancel { id: u32 },
}

/// Worker → page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// Start-up progress, in words.
    Status {
        text: String,
    },
    /// The engine is ready: which device it runs on, whether that is the CPU fallback, and the model.
    Ready {
        device: String,
        fallback: bool,
        model: String,
        n_layers: usize,
    },
    /// Something failed outside any request (start-up, a message the worker could not read), in words.
    Failed {
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
    fn messages_round_trip() {
        let m = ToWorker::Run { id: 3, request: Request::Status };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"type":"run","id":3,"request":{"op":"status"}}"#);
        assert!(matches!(serde_json::from_str(&json).unwrap(), ToWorker::Run { id: 3, .. }));
        assert_eq!(hub_url("hub/", "a/b", "main", "config.json"), "hub/a/b/resolve/main/config.json");
    }
}
