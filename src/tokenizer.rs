//! The model's own tokenizer.json, through Hugging Face `tokenizers` (wasm-compatible build).

use crate::error::{Error, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self> {
        // `tokenizers` panics (an `expect`) on some malformed text inside its component objects, so the file is
        // checked as JSON first; a panic that still comes (native builds, where panics unwind) is an error too.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| Error::file(file, format!("not a valid tokenizer.json: not JSON ({e})")))?;
        let parsed = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(bytes))
            .map_err(|_| Error::file(file, "not a valid tokenizer.json: the tokenizer library could not read it"))?;
        let mut inner = parsed.map_err(|e| Error::file(file, format!("not a valid tokenizer.json: {e}")))?;
        // GPT-2's tokenizer.json carries a 50-token truncation that transformers ignores; a prompt is
        // never silently cut (over-long ones are refused against the model's context instead).
        inner.with_truncation(None).map_err(|e| Error::file(file, e))?;
        inner.with_padding(None);
        Ok(Self { inner })
    }

    /// Token ids of `text`, adding no special tokens (as `tokenizer(text, add_special_tokens=False)`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::invalid(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; ids outside the vocabulary (Pythia's padding rows) are skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let size = self.inner.get_vocab_size(true) as u32;
        let ids: Vec<u32> = ids.iter().copied().filter(|&i| i < size).collect();
        self.inner.decode(&ids, false).map_err(|e| Error::invalid(format!("tokenizer: {e}")))
    }
}
