//! Language models: load a Hugging Face model directory (or its files' bytes) and run it with hooks.

pub mod chunked;
pub mod config;
pub mod generate;
pub mod gpt2;
pub mod hooks;
pub mod kv_cache;
pub mod layers;
pub mod neox;
pub mod random;
pub mod sampling;
pub mod transformer;
pub mod weights;

use crate::device::read;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use burn::tensor::{Device, Tensor};
use config::{Arch, ModelConfig};
use hooks::{HookPoint, Hooks};
use kv_cache::KvCache;
use transformer::Transformer;
use weights::{HostTensor, SafetensorsWeights, Weights};

/// The three files of a hub model directory.
pub struct ModelFiles<'a> {
    pub config_json: &'a str,
    pub safetensors: &'a [u8],
    pub tokenizer_json: &'a [u8],
}

/// A loaded model and its tokenizer.
pub struct Model {
    pub name: String,
    pub net: Transformer,
    pub tokenizer: Tokenizer,
}

impl Model {
    pub fn cfg(&self) -> &ModelConfig {
        &self.net.cfg
    }

    /// Loads from the files' contents; `name` labels the model in errors and outputs.
    pub fn from_files(name: &str, files: ModelFiles<'_>, device: &Device) -> Result<Self> {
        let cfg = ModelConfig::from_json(files.config_json, &format!("{name}/config.json"))?;
        let prefixes = match cfg.arch {
            Arch::Gpt2 => gpt2::PREFIXES,
            Arch::GptNeox => neox::PREFIXES,
        };
        let weights = SafetensorsWeights::parse(files.safetensors, &format!("{name}/model.safetensors"), prefixes)?;
        let tokenizer = Tokenizer::from_bytes(files.tokenizer_json, &format!("{name}/tokenizer.json"))?;
        Ok(Self { name: name.to_string(), net: Self::build(cfg, &weights, device)?, tokenizer })
    }

    /// Builds the network for `cfg` from any weight source.
    pub fn build(cfg: ModelConfig, weights: &dyn Weights, device: &Device) -> Result<Transformer> {
        match cfg.arch {
            Arch::Gpt2 => gpt2::load(cfg, weights, device),
            Arch::GptNeox => neox::load(cfg, weights, device),
        }
    }

    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from a directory.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path, device: &Device) -> Result<Self> {
        use crate::files::{read_bytes, read_text};
        let config = read_text(&dir.join("config.json"))?;
        let st = read_bytes(&dir.join("model.safetensors"))?;
        let tok = read_bytes(&dir.join("tokenizer.json"))?;
        let name = dir.display().to_string();
        Self::from_files(&name, ModelFiles { config_json: &config, safetensors: &st, tokenizer_json: &tok }, device)
    }

    /// Tokenises `text` as tokenizer.json does, optionally after the BOS token.
    pub fn encode(&self, text: &str, prepend_bos: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if prepend_bos {
            let bos =
                self.cfg().bos_token_id.ok_or_else(|| Error::invalid("this model's config has no bos_token_id"))?;
            ids.push(bos);
        }
        ids.extend(self.tokenizer.encode(text)?);
        Ok(ids)
    }

    /// One full forward pass from position 0: logits [1, seq, vocab].
    pub fn forward(&self, tokens: &[u32], hooks: &mut Hooks) -> Result<Tensor<3>> {
        self.net.forward(tokens, &mut KvCache::new(self.cfg().n_layers), hooks)
    }

    /// One pass from position 0, unembedding only the last position: the next token's logits [vocab].
    pub fn next_token_logits(&self, tokens: &[u32], hooks: &mut Hooks) -> Result<Tensor<1>> {
        self.net.next_token_logits(tokens, &mut KvCache::new(self.cfg().n_layers), hooks)
    }

    /// The activations at `point` of every position of `tokens`, on the host: [seq, d_model]. The pass stops there.
    pub async fn activations(&self, tokens: &[u32], point: HookPoint) -> Result<HostTensor> {
        let acts = self.net.activations(tokens, &mut Hooks::default(), point)?; // [1, s, d]
        let [_, s, d] = acts.dims();
        read(acts.reshape([s, d])).await
    }
}
