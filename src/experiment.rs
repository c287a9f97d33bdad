//! An experiment as a permalink: the versioned, serialisable description of what the lab shows (model, SAE,
//! dataset, hook, multiplier, prompt), packed compactly into a URL fragment. Opening the link restores it and
//! recomputes; a damaged link, or one from a newer steerlab, gets a message that says so.
//!
//! Fragment format: `x{version}.{base64url(deflate(JSON))}`.

use crate::engine::DatasetRef;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The version this build writes and the newest it reads.
pub const VERSION: u32 = 1;

/// Longest experiment JSON a link may unpack to, so that a crafted link cannot exhaust memory.
const MAX_JSON: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Experiment {
    /// The model, by the lab's catalogue id (`gpt2`, `pythia-70m-deduped`, or `embedded` for the built-in default).
    pub model: String,
    pub revision: Option<String>,
    /// The SAE, if one is used: the hook it reads, in the model's SAE release, or a SAELens id
    /// (`release/sae_id`; hooks have no `/`).
    pub sae: Option<String>,
    pub dataset: DatasetRef,
    /// Hook the steering vector is read at and added to.
    pub hook: String,
    pub multiplier: f32,
    pub prompt: String,
    pub max_new_tokens: usize,
    /// What else the link recomputes once it opens (left out of links that had none of it, so older links and
    /// newer ones without results read the same): the multiplier sweep, the layer sweep, the SAE diagnostics,
    /// and the scores of the features promoting this token.
    #[serde(skip_serializing_if = "is_false")]
    pub sweep: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub layer_sweep: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub diagnostics: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// Whether the diagnostics, feature scores and populations read WikiText-2 as background text (fetched when
    /// the link opens) instead of the built-in passages.
    #[serde(skip_serializing_if = "is_false")]
    pub wikitext: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Default for Experiment {
    fn default() -> Self {
        Self {
            model: "embedded".into(),
            revision: None,
            sae: None,
            dataset: DatasetRef::built_in("love-hate.jsonl"),
            hook: "blocks.1.hook_resid_pre".into(),
            multiplier: 4.0,
            prompt: "I think that".into(),
            max_new_tokens: 24,
            sweep: false,
            layer_sweep: false,
            diagnostics: false,
            features: None,
            wikitext: false,
        }
    }
}

impl Experiment {
    /// The URL fragment (without `#`) that restores this experiment.
    pub fn to_fragment(&self) -> String {
        let json = serde_json::to_vec(self).expect("experiments serialise");
        format!("x{VERSION}.{}", base64url(&miniz_oxide::deflate::compress_to_vec(&json, 9)))
    }

    /// Reads a fragment (with or without `#`), saying clearly why a link cannot be read.
    pub fn from_fragment(fragment: &str) -> Result<Self> {
        let fragment = fragment.trim().trim_start_matches('#');
        let bad = |why: &str| Error::invalid(format!("this link does not hold a steerlab experiment: {why}"));
        let (version, data) = fragment
            .strip_prefix('x')
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(|| bad("it does not start with x<version>."))?;
        let version: u32 = version.parse().map_err(|_| bad("its version is not a number"))?;
        if version > VERSION {
            return Err(Error::invalid(format!(
                "this link was made by a newer steerlab (experiment version {version}; this one reads up to {VERSION}): \
                 reload the page to update it"
            )));
        }
        if version == 0 {
            return Err(bad("version 0 does not exist"));
        }
        let packed = from_base64url(data).ok_or_else(|| bad("it is cut short or was changed (bad characters)"))?;
        let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&packed, MAX_JSON)
            .map_err(|_| bad("it is cut short or was changed (it does not unpack)"))?;
        let e: Self = serde_json::from_slice(&json).map_err(|e| bad(&format!("its contents do not parse ({e})")))?;
        // What a link carries flows into download URLs and the engine: checked here, where it enters.
        if let Some(rev) = &e.revision {
            crate::hub_names::check_revision(rev).map_err(|why| bad(&why))?;
        }
        if !e.multiplier.is_finite() {
            return Err(bad("its multiplier is not a number"));
        }
        Ok(e)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with the URL-safe alphabet and no padding.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn from_base64url(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u32> =
        text.bytes().map(|c| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)).collect::<Option<_>>()?;
    if values.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() * 3 / 4);
    for chunk in values.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &v)| n | v << (18 - 6 * i));
        out.extend((0..chunk.len() - 1).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(from_base64url(&base64url(&bytes)).unwrap(), bytes, "{len} bytes");
        }
        assert_eq!(base64url(b"Man"), "TWFu");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(from_base64url("TW=u"), None);
        assert_eq!(from_base64url("A"), None);
    }

    #[test]
    fn links_round_trip() {
        let e = Experiment {
            sae: Some("blocks.6.hook_resid_pre".into()),
            dataset: DatasetRef::Inline {
                name: "typed".into(),
                text: r#"{"positive": "I love it", "negative": "I hate it"}"#.into(),
                part: Some(crate::engine::Part::Train),
            },
            prompt: "Ünïcode & spaces / slashes?".into(),
            sweep: true,
            layer_sweep: true,
            diagnostics: true,
            features: Some(" love".into()),
            wikitext: true,
            ..Default::default()
        };
        let link = e.to_fragment();
        assert!(link.starts_with("x1.") && link.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)));
        assert_eq!(Experiment::from_fragment(&format!("#{link}")).unwrap(), e);
        // Fields a link leaves out take their defaults, so older links keep opening.
        let sparse = format!("x1.{}", base64url(&miniz_oxide::deflate::compress_to_vec(br#"{"prompt":"Hi"}"#, 9)));
        let e = Experiment::from_fragment(&sparse).unwrap();
        assert_eq!((e.prompt.as_str(), e.model.as_str()), ("Hi", "embedded"));
    }

    #[test]
    fn bad_links_say_why() {
        let link = Experiment::default().to_fragment();
        let err = |s: &str| Experiment::from_fragment(s).unwrap_err().to_string();
        assert!(err("").contains("does not start with x<version>"));
        assert!(err("hello").contains("does not start with x<version>"));
        assert!(err(&link.replacen("x1.", "x9.", 1)).contains("made by a newer steerlab (experiment version 9"));
        assert!(err(&link[..link.len() / 2]).contains("cut short or was changed"));
        assert!(err(&format!("{link}!")).contains("bad characters"));
        assert!(err("x0.AAAA").contains("version 0"));
        let not_json = format!("x1.{}", base64url(&miniz_oxide::deflate::compress_to_vec(b"[1,2]", 9)));
        assert!(err(&not_json).contains("contents do not parse"));
    }

    #[test]
    fn links_with_unsafe_revisions_or_numbers_are_refused() {
        let pack = |json: &str| format!("x1.{}", base64url(&miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 9)));
        let e = Experiment::from_fragment(&pack(r#"{"revision":"../../evil?x="}"#)).unwrap_err().to_string();
        assert!(e.contains("is not a revision"), "{e}");
        let ok = Experiment::from_fragment(&pack(r#"{"revision":"refs/pr/3"}"#)).unwrap();
        assert_eq!(ok.revision.as_deref(), Some("refs/pr/3"));
    }
}
