//! Language models: load a Hugging Face model directory (or its files' bytes) and run it with hooks.

pub mod batch;
#[cfg(feature = "engine")]
pub mod chunked;
pub mod config;
#[cfg(feature = "engine")]
pub mod cpu_gelu;
#[cfg(feature = "engine")]
pub mod cpu_matvec;
#[cfg(feature = "engine")]
pub mod gemma2;
pub mod generate;
#[cfg(feature = "engine")]
pub mod gpt2;
pub mod hooks;
#[cfg(feature = "engine")]
pub mod kv_cache;
#[cfg(feature = "engine")]
pub mod layers;
#[cfg(feature = "engine")]
pub mod neox;
#[cfg(feature = "engine")]
pub mod random;
pub mod sampling;
#[cfg(all(feature = "engine", target_arch = "wasm32"))]
pub mod simd128;
#[cfg(feature = "engine")]
pub mod transformer;
pub mod weights;

use std::rc::Rc;
#[cfg(feature = "engine")]
use {
    crate::device::{Precision, read},
    crate::error::{Error, Result},
    crate::tokenizer::Tokenizer,
    batch::Limits,
    burn::tensor::{Device, Tensor},
    config::{Arch, ModelConfig},
    hooks::{HookPoint, Hooks},
    kv_cache::KvCache,
    std::sync::Arc,
    transformer::{Input, Transformer},
    weights::{HostTensor, SafetensorsWeights, Weights},
};

/// Where each architecture's checkpoints may put its tensors.
#[cfg(feature = "engine")]
fn prefixes(cfg: &ModelConfig) -> &'static [&'static str] {
    match cfg.arch {
        Arch::Gpt2 => gpt2::PREFIXES,
        Arch::GptNeox => neox::PREFIXES,
        Arch::Gemma2 => gemma2::PREFIXES,
    }
}

/// The three files of a hub model directory.
#[cfg(feature = "engine")]
pub struct ModelFiles<'a> {
    pub config_json: &'a str,
    pub safetensors: &'a [u8],
    pub tokenizer_json: &'a [u8],
}

/// Asked during a request whether its caller wants it stopped (the page's Stop, a client that went away).
pub type Stop = Rc<dyn Fn() -> bool>;

/// Told during a request how far its current stage is: (stage, rows done, rows in the stage).
pub type Progress = Rc<dyn Fn(&str, usize, usize)>;

/// A loaded model and its tokenizer.
#[cfg(feature = "engine")]
pub struct Model {
    pub name: String,
    pub net: Arc<Transformer>,
    pub tokenizer: Arc<Tokenizer>,
    /// Asked before each forward pass: once it says stop, the pass fails with `Error::Cancelled`, so a stopped
    /// sweep or diagnostic ends at its next pass (see `stopping`).
    stop: Option<Stop>,
    /// Told after each batch of a multi-prompt flow how far its stage is (see `reporting`).
    progress: Option<Progress>,
    /// How large a batch one pass may take on this model's device (`chunks`).
    pub limits: Limits,
}

#[cfg(feature = "engine")]
impl Model {
    pub fn new(name: &str, net: Transformer, tokenizer: Tokenizer) -> Self {
        let limits = Limits::default();
        let (net, tokenizer) = (Arc::new(net), Arc::new(tokenizer));
        Self { name: name.to_string(), net, tokenizer, stop: None, progress: None, limits }
    }

    /// The same model (its weights shared, not copied) whose forward passes fail with `Error::Cancelled` once
    /// `stop` says so: the engine runs each request on one of these.
    pub fn stopping(&self, stop: Stop) -> Self {
        Self {
            name: self.name.clone(),
            net: self.net.clone(),
            tokenizer: self.tokenizer.clone(),
            stop: Some(stop),
            progress: self.progress.clone(),
            limits: self.limits,
        }
    }

    /// The same view, telling `progress` how far each stage of a flow is.
    pub fn reporting(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Reports that `done` of a stage's `total` rows are through (the flows call this after each batch).
    pub fn report(&self, stage: &str, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            p(stage, done, total);
        }
    }

    /// Fails with `Error::Cancelled` once the caller has asked to stop: for long loops that are not forward
    /// passes (gradient pursuit) to check between steps.
    pub fn check_stop(&self) -> Result<()> {
        match &self.stop {
            Some(stop) if stop() => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }

    pub fn cfg(&self) -> &ModelConfig {
        &self.net.cfg
    }

    /// The model with its weight matrices held in `precision` (`Transformer::set_precision`), for a model whose
    /// weights no other handle shares yet.
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        if precision != self.precision() {
            Arc::get_mut(&mut self.net)
                .ok_or_else(|| Error::invalid("the model's weights are shared: set its precision when loading it"))?
                .set_precision(precision)?;
        }
        Ok(self)
    }

    /// How the weight matrices are held.
    pub fn precision(&self) -> Precision {
        self.net.precision()
    }

    /// Loads from the files' contents; `name` labels the model in errors and outputs.
    pub fn from_files(name: &str, files: ModelFiles<'_>, device: &Device) -> Result<Self> {
        let cfg = ModelConfig::from_json(files.config_json, &format!("{name}/config.json"))?;
        let weights =
            SafetensorsWeights::parse(files.safetensors, &format!("{name}/model.safetensors"), prefixes(&cfg))?;
        let tokenizer = Tokenizer::from_bytes(files.tokenizer_json, &format!("{name}/tokenizer.json"))?;
        Ok(Self::new(name, Self::build(cfg, &weights, device)?, tokenizer))
    }

    /// Builds the network for `cfg` from any weight source.
    pub fn build(cfg: ModelConfig, weights: &dyn Weights, device: &Device) -> Result<Transformer> {
        match cfg.arch {
            Arch::Gpt2 => gpt2::load(cfg, weights, device),
            Arch::GptNeox => neox::load(cfg, weights, device),
            Arch::Gemma2 => gemma2::load(cfg, weights, device),
        }
    }

    /// Loads `config.json`, the weights and `tokenizer.json` from a directory. The weights are
    /// `model.safetensors`, or the shards that `model.safetensors.index.json` lists (mapped, not read).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path, device: &Device) -> Result<Self> {
        Self::from_dir_reporting(dir, device, &|_, _| {})
    }

    /// `from_dir`, calling `report(bytes read, bytes in all)` as the weights are read.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir_reporting(dir: &std::path::Path, device: &Device, report: &dyn Fn(u64, u64)) -> Result<Self> {
        use crate::files::{map_bytes, read_bytes, read_text};
        use weights::{ShardedWeights, shard_files};
        let name = dir.display().to_string();
        let cfg = ModelConfig::from_json(&read_text(&dir.join("config.json"))?, &format!("{name}/config.json"))?;
        let tokenizer =
            Tokenizer::from_bytes(&read_bytes(&dir.join("tokenizer.json"))?, &format!("{name}/tokenizer.json"))?;
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files = if single.exists() || !index.exists() {
            vec!["model.safetensors".to_string()]
        } else {
            shard_files(&read_text(&index)?, &index.display().to_string())?
        };
        let maps = files.iter().map(|f| map_bytes(&dir.join(f))).collect::<Result<Vec<_>>>()?;
        let shards = files
            .iter()
            .zip(&maps)
            .map(|(f, m)| SafetensorsWeights::parse(m, &format!("{name}/{f}"), prefixes(&cfg)))
            .collect::<Result<Vec<_>>>()?;
        let weights = ShardedWeights::new(&format!("{name}/{}", files.join(", ")), shards).reporting(report);
        Ok(Self::new(&name, Self::build(cfg, &weights, device)?, tokenizer))
    }

    /// Tokenises `text` as tokenizer.json does, after the BOS token when asked or when the model needs it
    /// (`ModelConfig::always_bos`).
    pub fn encode(&self, text: &str, prepend_bos: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if prepend_bos || self.cfg().always_bos() {
            let bos =
                self.cfg().bos_token_id.ok_or_else(|| Error::invalid("this model's config has no bos_token_id"))?;
            ids.push(bos);
        }
        ids.extend(self.tokenizer.encode(text)?);
        Ok(ids)
    }

    /// Tokenises a text a pass will read at its last token (`encode` without a forced BOS), checking it has a
    /// token and fits the context, so a batch fails on no row.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let tokens = self.encode(text, false)?;
        let n_ctx = self.cfg().n_ctx;
        if tokens.is_empty() {
            return Err(Error::invalid("empty prompt: at least one token is needed"));
        }
        if tokens.len() > n_ctx {
            return Err(Error::invalid(format!(
                "sequence too long: {} tokens, but the model's context is {n_ctx} tokens",
                tokens.len()
            )));
        }
        Ok(tokens)
    }

    /// One full forward pass from position 0: logits [1, seq, vocab].
    pub fn forward(&self, tokens: &[u32], hooks: &mut Hooks) -> Result<Tensor<3>> {
        self.check_stop()?;
        self.net.forward(tokens, &mut KvCache::new(self.cfg().n_layers), hooks)
    }

    /// One pass from position 0, unembedding only the last position: the next token's logits [vocab].
    pub fn next_token_logits(&self, tokens: &[u32], hooks: &mut Hooks) -> Result<Tensor<1>> {
        self.check_stop()?;
        self.net.next_token_logits(tokens, &mut KvCache::new(self.cfg().n_layers), hooks)
    }

    /// One (batched) pass as far as `point` (`LnFinal`: ln_final's output): [rows, seq, d_model] on the device.
    pub fn run_to(&self, input: Input<'_>, hooks: &mut Hooks, point: HookPoint) -> Result<Tensor<3>> {
        self.check_stop()?;
        self.net.run_to(input, hooks, point)
    }

    /// The activations at `point` of every position of `tokens`, on the host: [seq, d_model]. The pass stops there.
    pub async fn activations(&self, tokens: &[u32], point: HookPoint) -> Result<HostTensor> {
        self.check_stop()?;
        let acts = self.net.activations(tokens, &mut Hooks::default(), point)?; // [1, s, d]
        let [_, s, d] = acts.dims();
        read(acts.reshape([s, d])).await
    }
}
