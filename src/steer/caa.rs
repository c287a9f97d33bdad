//! Contrastive activation addition (CAA, Rimsky et al.): the steering vector at a hook is the mean over
//! pairs of resid(positive) − resid(negative), each read at its text's last token.

use super::dataset::ContrastivePair;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::hooks::HookPoint;

/// The CAA vector [d_model] at the hook named `hook`.
pub async fn caa_vector(model: &Model, pairs: &[ContrastivePair], hook: &str) -> Result<Vec<f32>> {
    let point = HookPoint::parse(hook, model.cfg().n_layers)?;
    if pairs.is_empty() {
        return Err(Error::invalid("no contrastive pairs to average"));
    }
    let d = model.cfg().d_model;
    let mut sum = vec![0.0f64; d];
    for (i, pair) in pairs.iter().enumerate() {
        let pos = last_token_activation(model, &pair.positive, point).await.map_err(|e| e.in_record("pair", i))?;
        let neg = last_token_activation(model, &pair.negative, point).await.map_err(|e| e.in_record("pair", i))?;
        for ((s, p), n) in sum.iter_mut().zip(pos).zip(neg) {
            *s += (p - n) as f64;
        }
    }
    Ok(sum.into_iter().map(|s| (s / pairs.len() as f64) as f32).collect())
}

/// The activation at `point` of `text`'s last token: [d_model].
pub async fn last_token_activation(model: &Model, text: &str, point: HookPoint) -> Result<Vec<f32>> {
    let acts = model.activations(&model.encode(text, false)?, point).await?;
    let d = model.cfg().d_model;
    Ok(acts.data[acts.data.len() - d..].to_vec())
}
