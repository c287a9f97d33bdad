//! Diagnostic 2: is the encoder bias in charge? The top features of encode(SV) next to encode(0) and
//! encode(s · SV): when SV is short, its encoding is nearly encode(0) (Mayne et al. 2024).

#[cfg(feature = "engine")]
use {
    super::top_indices,
    crate::device::read,
    crate::error::Result,
    crate::sae::Sae,
    crate::stats::cosine,
    burn::tensor::{Tensor, TensorData},
};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureActs {
    pub feature: usize,
    /// Activation in encode(0).
    pub zero: f32,
    /// Activation in encode(s · SV), one per scale.
    pub scaled: Vec<f32>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BiasDominance {
    pub scales: Vec<f32>,
    /// The union of each encoding's top features, by activation at the first scale, then in encode(0).
    pub features: Vec<FeatureActs>,
    /// cos(encode(s · SV), encode(0)) per scale: near 1 means the bias decides the encoding.
    pub cosine_with_zero: Vec<f32>,
    /// Share of encode(s · SV)'s top-k features that are also encode(0)'s, per scale.
    pub top_k_overlap: Vec<f32>,
    pub k: usize,
}

impl BiasDominance {
    /// Which of `scales` is the vector as it is (scale 1); the first if none is.
    pub fn unit_scale(&self) -> usize {
        self.scales.iter().position(|&s| (s - 1.0).abs() < 1e-6).unwrap_or(0)
    }
}

#[cfg(feature = "engine")]
pub async fn bias_dominance(sae: &Sae, sv: &[f32], scales: &[f32], k: usize) -> Result<BiasDominance> {
    let d = sae.cfg.d_in;
    let mut rows = vec![0.0; d]; // encode(0) first
    for s in scales {
        rows.extend(sv.iter().map(|v| v * s));
    }
    let x = Tensor::<2>::from_data(TensorData::new(rows, [scales.len() + 1, d]), &sae.w_dec.device());
    let acts = read(sae.encode(x)).await?.data;
    let rows: Vec<&[f32]> = acts.chunks(sae.cfg.d_sae).collect();
    let (zero, scaled) = (rows[0], &rows[1..]);
    let top = |r: &[f32]| top_indices(r, k, |v| v).into_iter().filter(|&f| r[f] > 0.0).collect::<Vec<_>>();
    let zero_top = top(zero);
    let mut features: Vec<usize> = zero_top.clone();
    for r in scaled {
        features.extend(top(r));
    }
    features.sort_by(|&a, &b| scaled[0][b].total_cmp(&scaled[0][a]).then(zero[b].total_cmp(&zero[a])));
    features.dedup();
    let overlap = |r: &[f32]| {
        let t = top(r);
        t.iter().filter(|f| zero_top.contains(f)).count() as f32 / t.len().max(1) as f32
    };
    Ok(BiasDominance {
        scales: scales.to_vec(),
        features: features
            .into_iter()
            .map(|f| FeatureActs { feature: f, zero: zero[f], scaled: scaled.iter().map(|r| r[f]).collect() })
            .collect(),
        cosine_with_zero: scaled.iter().map(|r| cosine(r, zero)).collect(),
        top_k_overlap: scaled.iter().map(|r| overlap(r)).collect(),
        k,
    })
}

/// One steering vector's row in a table of several against encode(0) (Mayne et al.'s Table 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VectorVsZero {
    pub name: String,
    pub norm: f32,
    /// cos(encode(SV), encode(0)).
    pub cosine_with_zero: f32,
    /// Share of encode(SV)'s top-k features that are also encode(0)'s.
    pub top_k_overlap: f32,
}

/// Several named vectors against encode(0), each as it is (scale 1).
#[cfg(feature = "engine")]
pub async fn vectors_vs_zero(sae: &Sae, vectors: &[(String, Vec<f32>)], k: usize) -> Result<Vec<VectorVsZero>> {
    let mut rows = Vec::with_capacity(vectors.len());
    for (name, v) in vectors {
        let b = bias_dominance(sae, v, &[1.0], k).await?;
        rows.push(VectorVsZero {
            name: name.clone(),
            norm: crate::stats::norm(v),
            cosine_with_zero: b.cosine_with_zero[0],
            top_k_overlap: b.top_k_overlap[0],
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sae::tests::hand_built;

    #[test]
    fn a_short_vector_encodes_like_zero() {
        // Feature 2's encoder bias of 5 fires in encode(0); a short vector along x0 barely adds feature 0.
        let sae = hand_built("standard", "");
        let b = pollster::block_on(bias_dominance(&sae, &[0.01, 0.0], &[1.0, 1000.0], 2)).unwrap();
        assert_eq!(b.features[0].feature, 2);
        assert_eq!(b.features[0].zero, 5.0);
        assert!(b.cosine_with_zero[0] > 0.9999, "{b:?}");
        assert_eq!(b.top_k_overlap[0], 0.5); // {2, 0} vs {2}
        // Scaled to a typical activation's size, feature 0 (10) outweighs the bias feature.
        assert!(b.cosine_with_zero[1] < 0.5, "{b:?}");
        assert_eq!(b.features.iter().map(|f| f.feature).collect::<Vec<_>>(), vec![2, 0]);
    }
}
