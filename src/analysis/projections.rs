//! Diagnostic 4: signed projections. A steering vector has negative components along many decoder
//! directions; ReLU (and JumpReLU, TopK) cannot express them, so they are dropped, and the features whose
//! decoder points the opposite way (anti-aligned partners) fire in their place.

use super::top_indices;
use crate::device::read;
use crate::error::Result;
use crate::model::layers::{index_tensor, row_tensor, upload};
use crate::model::weights::HostTensor;
use crate::sae::Sae;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Projection {
    pub feature: usize,
    /// SV · W_enc[:, f].
    pub encoder: f32,
    /// SV · W_dec[f] / ‖W_dec[f]‖: the signed size of SV along the feature's output direction.
    pub decoder: f32,
    pub pre_activation: f32,
    pub activation: f32,
    /// The encoding sets it to zero.
    pub dropped: bool,
}

/// A feature with a negative decoder projection and its most anti-aligned decoder partner.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Partner {
    pub feature: usize,
    pub decoder: f32,
    pub partner: usize,
    /// cos(W_dec[feature], W_dec[partner]), near −1.
    pub cosine: f32,
    pub partner_activation: f32,
    /// The partner fires in encode(SV).
    pub fires: bool,
    /// Mean activations of (the feature, its partner) on the positive and on the negative prompts the vector came
    /// from, when they are given (Mayne et al.'s Fig. 4, left): what each fires on in real activations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_positive: Option<[f32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_negative: Option<[f32; 2]>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SignedProjections {
    /// The `top` features with the largest |decoder projection|.
    pub top: Vec<Projection>,
    /// Share of Σ decoder-projection² (over every feature) that is negative.
    pub negative_share: f32,
    pub partners: Vec<Partner>,
}

pub async fn signed_projections(sae: &Sae, sv: &[f32], top: usize) -> Result<SignedProjections> {
    let device = sae.w_dec.device();
    let x = row_tensor(sv, &device);
    let unit = sae.unit_decoder(); // [d_sae, d_in]
    let encoder = read(x.clone().matmul(sae.w_enc.clone())).await?.data;
    let decoder = read(x.clone().matmul(unit.clone().transpose())).await?.data;
    let pre = read(sae.pre_activations(x.clone())).await?.data;
    let acts = read(sae.encode(x)).await?.data;
    let row = |f: usize| Projection {
        feature: f,
        encoder: encoder[f],
        decoder: decoder[f],
        pre_activation: pre[f],
        activation: acts[f],
        dropped: acts[f] == 0.0,
    };
    let total: f64 = decoder.iter().map(|&v| (v as f64).powi(2)).sum();
    let negative: f64 = decoder.iter().filter(|v| **v < 0.0).map(|&v| (v as f64).powi(2)).sum();
    let negative_features: Vec<usize> =
        top_indices(&decoder, top, |v| -v).into_iter().filter(|&f| decoder[f] < 0.0).collect();
    let mut partners = Vec::new();
    if !negative_features.is_empty() {
        // Decoder cosines of every feature with each of them, in one pass: [d_sae, m].
        let ids = index_tensor(&negative_features, &device);
        let cos = read(unit.clone().matmul(unit.clone().select(0, ids).transpose())).await?.data;
        for (j, &f) in negative_features.iter().enumerate() {
            let col: Vec<f32> = cos.iter().skip(j).step_by(negative_features.len()).copied().collect();
            let partner = top_indices(&col, 2, |v| -v).into_iter().find(|&g| g != f).unwrap_or(f);
            partners.push(Partner {
                feature: f,
                decoder: decoder[f],
                partner,
                cosine: col[partner],
                partner_activation: acts[partner],
                fires: acts[partner] > 0.0,
                on_positive: None,
                on_negative: None,
            });
        }
    }
    Ok(SignedProjections {
        top: top_indices(&decoder, top, f32::abs).into_iter().map(row).collect(),
        negative_share: if total > 0.0 { (negative / total) as f32 } else { 0.0 },
        partners,
    })
}

/// Fills each partner pair's mean activations on the positive and negative prompts ([n, d_in] activations at the
/// SAE's hook, read at the token CAA reads).
pub async fn partner_activations(
    sae: &Sae,
    p: &mut SignedProjections,
    positive: &HostTensor,
    negative: &HostTensor,
) -> Result<()> {
    if p.partners.is_empty() {
        return Ok(());
    }
    let device = sae.w_dec.device();
    let features: Vec<usize> = p.partners.iter().flat_map(|q| [q.feature, q.partner]).collect();
    let means = async |x: &HostTensor| -> Result<Vec<f32>> {
        let acts = sae.encode(upload::<2>(x.clone(), &device)).select(1, index_tensor(&features, &device)); // [n, 2m]
        Ok(read(acts.mean_dim(0)).await?.data) // [1, 2m]
    };
    let (pos, neg) = (means(positive).await?, means(negative).await?);
    for (j, q) in p.partners.iter_mut().enumerate() {
        q.on_positive = Some([pos[2 * j], pos[2 * j + 1]]);
        q.on_negative = Some([neg[2 * j], neg[2 * j + 1]]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sae::tests::hand_built;

    #[test]
    fn relu_drops_a_negative_projection_and_the_partner_fires() {
        // Feature 0 decodes to +x0, feature 1 to −x0. SV = (−2, 0): negative along feature 0.
        let sae = hand_built("standard", "");
        let p = pollster::block_on(signed_projections(&sae, &[-2.0, 0.0], 3)).unwrap();
        let f0 = p.top.iter().find(|r| r.feature == 0).unwrap();
        assert_eq!((f0.decoder, f0.dropped), (-2.0, true));
        assert_eq!(p.negative_share, 0.5); // (−2)² of (−2)² + 2²
        let partner = p.partners.iter().find(|q| q.feature == 0).unwrap();
        assert_eq!((partner.partner, partner.cosine, partner.fires), (1, -1.0, true));
        assert_eq!(partner.partner_activation, 2.0);
    }
}
