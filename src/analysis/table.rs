//! Diagnostic 5, the heart of the lab: where does the steering behaviour go? The steerability of the
//! steering vector next to that of its SAE reconstruction and of better decompositions.

use crate::sae::edit::EditMode;
#[cfg(feature = "engine")]
use {
    crate::device::read,
    crate::error::Result,
    crate::model::Model,
    crate::model::layers::row_tensor,
    crate::sae::Sae,
    crate::sae::decompose::Decomposed,
    crate::sae::edit::FeatureEdit,
    crate::stats::{cosine, norm},
    crate::steer::propensity::{Probes, steerabilities},
};

/// Held-out data (A/B items or contrastive pairs) to measure steerability on.
#[cfg(feature = "engine")]
pub struct Eval<'a> {
    pub model: &'a Model,
    pub probes: &'a Probes,
    pub multipliers: &'a [f32],
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableRow {
    pub method: String,
    /// Features used (None for the vector itself and the full reconstruction).
    pub features: Option<usize>,
    pub norm: f32,
    /// Cosine with the steering vector.
    pub cosine: f32,
    pub steerability: Option<f32>,
    /// steerability ÷ the steering vector's.
    pub relative: Option<f32>,
    /// Set on the rows of a feature edit (the vector restricted to or without chosen features), which are the
    /// vector changed by hand rather than a decomposition of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<EditMode>,
    /// The row's vector [d_in], to steer with or export.
    #[serde(default)]
    pub vector: Vec<f32>,
}

/// Rows: the vector; the vector restricted to or without chosen features (`edits`); its SAE reconstruction
/// (b_dec included, as the SAE outputs it); the bias-corrected reconstruction against `mean` and its top-k
/// subsets; gradient pursuit, non-negative and signed, for each k.
#[cfg(feature = "engine")]
pub async fn steerability_table(
    sae: &Sae,
    sv: &[f32],
    mean: &[f32],
    ks: &[usize],
    edits: &[FeatureEdit],
    eval: Option<Eval<'_>>,
    check: &dyn Fn() -> Result<()>,
) -> Result<Vec<TableRow>> {
    let x = row_tensor(sv, &sae.w_dec.device());
    let (acts, rec) = sae.reconstruct(x);
    let full = Decomposed { coefs: read(acts).await?.data, vector: read(rec).await?.data };
    let mut candidates: Vec<(String, Option<usize>, Vec<f32>)> = vec![("steering vector".into(), None, sv.to_vec())];
    for e in edits {
        let features = match e.mode {
            EditMode::Keep => Some(e.features.len()),
            EditMode::Remove => None,
        };
        candidates.push((e.label(), features, sae.edit(sv, e).await?));
    }
    let edit_modes: Vec<EditMode> = edits.iter().map(|e| e.mode).collect();
    candidates.push(("SAE reconstruction".into(), Some(full.active()), full.vector));
    let corrected = sae.bias_corrected(sv, mean).await?;
    for &k in ks {
        let d = sae.top_k_subset(&corrected.coefs, k).await?;
        candidates.push((format!("bias-corrected, top {k}"), Some(d.active()), d.vector));
    }
    candidates.push(("bias-corrected reconstruction".into(), Some(corrected.active()), corrected.vector));
    for signed in [false, true] {
        let label = if signed { "signed" } else { "non-negative" };
        for (k, d) in sae.gradient_pursuit(sv, ks, signed, check).await? {
            candidates.push((format!("gradient pursuit ({label}), k = {k}"), Some(d.active()), d.vector));
        }
    }
    // Every candidate × multiplier × item in one batched sweep.
    let steer = match &eval {
        Some(e) => {
            let vectors: Vec<&[f32]> = candidates.iter().map(|(_, _, v)| v.as_slice()).collect();
            let curves = steerabilities(e.model, e.probes, &sae.cfg.hook_name, &vectors, e.multipliers).await?;
            curves.into_iter().map(|c| Some(c.steerability)).collect()
        }
        None => vec![None; candidates.len()],
    };
    let reference = steer[0];
    Ok(candidates
        .into_iter()
        .zip(steer)
        .enumerate()
        .map(|(i, ((method, features, v), s))| {
            let relative = s.zip(reference).map(|(s, r)| if r != 0.0 { s / r } else { f32::NAN });
            // Rows 1..=edits are the edits, in order.
            let edit = i.checked_sub(1).and_then(|e| edit_modes.get(e).copied());
            let (norm, cosine) = (norm(&v), cosine(&v, sv));
            TableRow { method, features, norm, cosine, steerability: s, relative, edit, vector: v }
        })
        .collect())
}
