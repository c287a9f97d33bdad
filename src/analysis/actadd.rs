//! An ActAdd vector ([k, d_model]: one row per position of its prompt pair) through an SAE, as Conmy & Nanda
//! (2024) looked at Turner et al.'s anger and wedding vectors: each position's row, and their sum, with the top
//! features of its encoding next to encode(0) (for a short row the encoder bias picks them, Mayne et al. 2024);
//! and the vector with chosen features' decoder span taken out of, or kept in, every row.

use super::bias::FeatureActs;
#[cfg(feature = "engine")]
use {
    super::bias::bias_dominance,
    crate::error::{Error, Result},
    crate::sae::Sae,
    crate::sae::edit::FeatureEdit,
    crate::stats::norm,
};

/// One position's row (or, with `position` None, the rows summed).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PositionFeatures {
    pub position: Option<usize>,
    pub norm: f32,
    /// cos(encode(row), encode(0)).
    pub cosine_with_zero: f32,
    /// Share of encode(row)'s top features that encode(0) has too.
    pub top_k_overlap: f32,
    /// encode(row)'s top features (then encode(0)'s), each with its activation in encode(0).
    pub features: Vec<FeatureActs>,
}

/// `values` as `rows` rows of the SAE's width.
#[cfg(feature = "engine")]
fn rows_of<'a>(sae: &Sae, values: &'a [f32], rows: usize) -> Result<Vec<&'a [f32]>> {
    let d = sae.cfg.d_in;
    if rows == 0 || values.len() != rows * d {
        return Err(Error::invalid(format!(
            "a vector of {rows} rows at the SAE's width d_in = {d} needs {} values, but it has {}",
            rows * d,
            values.len()
        )));
    }
    Ok(values.chunks(d).collect())
}

/// Every position's row and their sum against encode(0), `top` features each; the sum comes first.
#[cfg(feature = "engine")]
pub async fn position_features(sae: &Sae, values: &[f32], rows: usize, top: usize) -> Result<Vec<PositionFeatures>> {
    let parts = rows_of(sae, values, rows)?;
    let summed: Vec<f32> = (0..sae.cfg.d_in).map(|j| parts.iter().map(|r| r[j]).sum()).collect();
    let mut out = Vec::with_capacity(rows + 1);
    for (position, row) in
        std::iter::once((None, summed.as_slice())).chain(parts.into_iter().enumerate().map(|(i, r)| (Some(i), r)))
    {
        let b = bias_dominance(sae, row, &[1.0], top).await?;
        out.push(PositionFeatures {
            position,
            norm: norm(row),
            cosine_with_zero: b.cosine_with_zero[0],
            top_k_overlap: b.top_k_overlap[0],
            features: b.features.into_iter().take(top).collect(),
        });
    }
    Ok(out)
}

/// Each row of `values` edited alike: restricted to the features' decoder span, or with it taken out.
#[cfg(feature = "engine")]
pub async fn edit_rows(sae: &Sae, values: &[f32], rows: usize, edit: &FeatureEdit) -> Result<Vec<f32>> {
    sae.check_features(&edit.features)?;
    let mut out = Vec::with_capacity(values.len());
    for row in rows_of(sae, values, rows)? {
        out.extend(sae.edit(row, edit).await?);
    }
    Ok(out)
}
