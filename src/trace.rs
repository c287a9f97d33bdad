//! One forward pass, recorded: tokens, logits and residual-stream activations as named tensors.

use crate::device::read;
use crate::error::Result;
use crate::model::Model;
use crate::model::hooks::{HookPoint, Hooks, Intervention};
use crate::tensor_file::NamedTensor;

/// Runs `tokens` with `interventions` and returns `tokens` I64 [seq], `logits` F32 [seq, vocab], every
/// `blocks.{L}.hook_resid_pre` and the last block's `hook_resid_post` (F32 [seq, d_model]).
pub async fn trace(model: &Model, tokens: &[u32], interventions: Vec<Intervention>) -> Result<Vec<NamedTensor>> {
    let n_layers = model.cfg().n_layers;
    let points: Vec<HookPoint> =
        (0..n_layers).map(HookPoint::ResidPre).chain([HookPoint::ResidPost(n_layers - 1)]).collect();
    let mut hooks = Hooks { interventions, capture: points.clone(), ..Default::default() };
    let logits = model.forward(tokens, &mut hooks)?;
    let seq = tokens.len();
    let mut out = vec![NamedTensor::i64("tokens", vec![seq], tokens.iter().map(|&t| t as i64).collect())];
    let logits = read(logits).await?;
    out.push(NamedTensor::f32("logits", vec![seq, logits.shape[2]], logits.data));
    for p in points {
        let t = read(hooks.take(p).expect("every requested hook runs")).await?;
        out.push(NamedTensor::f32(p.to_string(), vec![seq, t.shape[2]], t.data));
    }
    Ok(out)
}
