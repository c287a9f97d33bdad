//! Parity on the CPU and on wgpu: the models against transformers (models), the SAEs against sae-lens (sae),
//! propensity and steerability against transformers (steering), and batched passes against one-sequence ones
//! (batch). One test binary, because wgpu tunes its kernels once per process for each shape (the tuning cache is
//! opt-in): the four run the same fixture models, so here they share one tuning of each shape instead of paying
//! for it four times.

#[path = "../common/mod.rs"]
mod common;

mod batch;
mod models;
mod sae;
mod steering;
