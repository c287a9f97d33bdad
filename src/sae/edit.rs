//! Feature editing (after Conmy & Nanda 2024): a steering vector restricted to chosen SAE features, or with them
//! taken out. "Restricted" is the least-squares fit of the vector by those features' decoder rows (signed
//! coefficients, so it is the vector's orthogonal projection onto their span); "minus" is the vector less that
//! fit. Neither depends on the encoder: an edit says what those decoder directions carry of the vector.

use crate::error::{Error, Result};
#[cfg(feature = "engine")]
use {super::Sae, crate::device::read};

/// Which part of the vector an edit keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditMode {
    /// Only what the features carry: the fit.
    Keep,
    /// Everything but what the features carry: the vector minus the fit.
    Remove,
}

/// A vector edit: keep only, or remove, what these features' decoder rows carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureEdit {
    pub features: Vec<usize>,
    pub mode: EditMode,
}

impl FeatureEdit {
    /// How the edit is named in tables: "SV restricted to features 12, 34" or "SV minus features 12, 34".
    pub fn label(&self) -> String {
        let ids: Vec<String> = self.features.iter().map(|f| f.to_string()).collect();
        let what = if self.features.len() == 1 { "feature" } else { "features" };
        match self.mode {
            EditMode::Keep => format!("SV restricted to {what} {}", ids.join(", ")),
            EditMode::Remove => format!("SV minus {what} {}", ids.join(", ")),
        }
    }
}

/// Feature numbers as people type them: `12, 345 #7`.
pub fn parse_features(text: &str) -> Result<Vec<usize>> {
    text.split([',', ' '])
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let t = t.trim();
            t.trim_start_matches('#')
                .parse::<usize>()
                .map_err(|_| Error::invalid(format!("\"{t}\" is not a feature number")))
        })
        .collect()
}

/// A feature and its steering strength written `INDEX:STRENGTH` (`#` allowed before the index).
pub fn parse_feature_strength(text: &str) -> Result<(usize, f32)> {
    let bad = || Error::invalid(format!("\"{text}\": expected INDEX:STRENGTH, e.g. 1234:40"));
    let (index, strength) = text.split_once(':').ok_or_else(bad)?;
    let strength: f32 = strength.trim().parse().map_err(|_| bad())?;
    if !strength.is_finite() {
        return Err(bad());
    }
    Ok((index.trim().trim_start_matches('#').parse().map_err(|_| bad())?, strength))
}

/// Several `INDEX:STRENGTH` items, separated by commas or spaces: `12:8, 345:-4`.
pub fn parse_feature_strengths(text: &str) -> Result<Vec<(usize, f32)>> {
    text.split([',', ' ']).filter(|t| !t.trim().is_empty()).map(parse_feature_strength).collect()
}

#[cfg(feature = "engine")]
impl Sae {
    /// The least-squares fit of `v` by the decoder rows of `features`: its projection onto their span, [d_in].
    /// Rows that add nothing to the span (repeats, linear combinations of earlier ones) are skipped.
    pub async fn span_fit(&self, v: &[f32], features: &[usize]) -> Result<Vec<f32>> {
        let d = self.cfg.d_in;
        if v.len() != d {
            return Err(Error::invalid(format!("vector has {} dims but the SAE's d_in is {d}", v.len())));
        }
        if features.is_empty() {
            return Err(Error::invalid("an edit needs at least one feature"));
        }
        if features.len() > d {
            return Err(Error::invalid(format!(
                "{} features in one edit: at most d_in = {d} can span independent directions",
                features.len()
            )));
        }
        let rows = read(self.decoder_rows(features)?).await?.data; // [k, d]
        // Modified Gram–Schmidt in f64: an orthonormal basis of the rows' span, then v's projection onto it.
        let mut basis: Vec<Vec<f64>> = Vec::with_capacity(features.len());
        for row in rows.chunks(d) {
            let mut q: Vec<f64> = row.iter().map(|&x| x as f64).collect();
            let before = q.iter().map(|x| x * x).sum::<f64>().sqrt();
            for b in &basis {
                let dot: f64 = q.iter().zip(b).map(|(x, y)| x * y).sum();
                q.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
            }
            let after = q.iter().map(|x| x * x).sum::<f64>().sqrt();
            if after > 1e-6 * before.max(f64::MIN_POSITIVE) {
                q.iter_mut().for_each(|x| *x /= after);
                basis.push(q);
            }
        }
        let mut fit = vec![0.0f64; d];
        for b in &basis {
            let dot: f64 = v.iter().zip(b).map(|(&x, y)| x as f64 * y).sum();
            fit.iter_mut().zip(b).for_each(|(f, y)| *f += dot * y);
        }
        Ok(fit.into_iter().map(|x| x as f32).collect())
    }

    /// `v` edited: restricted to the features' span, or with it taken out.
    pub async fn edit(&self, v: &[f32], edit: &FeatureEdit) -> Result<Vec<f32>> {
        let fit = self.span_fit(v, &edit.features).await?;
        Ok(match edit.mode {
            EditMode::Keep => fit,
            EditMode::Remove => v.iter().zip(&fit).map(|(x, f)| x - f).collect(),
        })
    }
}
