//! steerlab's engine: GPT-2 and Pythia in burn with TransformerLens-style hooks, steering vectors and
//! sparse autoencoders. The same code runs natively (CLI, helper) and in the browser (wasm32, WebGPU).

pub mod analysis;
pub mod device;
pub mod engine;
pub mod error;
pub mod experiment;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;
pub mod gguf;
pub mod hub_names;
pub mod model;
pub mod npz;
pub mod sae;
pub mod stats;
pub mod steer;
pub mod tensor_file;
#[cfg(feature = "engine")]
pub mod tokenizer;
#[cfg(feature = "engine")]
pub mod trace;

pub use error::{Error, Result};
