//! Diagnostic 4: signed projections. A steering vector has negative components along many decoder
//! directions; ReLU (and JumpReLU, TopK) cannot express them, so they are dropped, and the features whose
//! decoder points the opposite way (anti-aligned partners) fire in their place.

#[cfg(feature = "engine")]
use {
    super::top_indices,
    crate::device::read,
    crate::error::Result,
    crate::model::layers::{index_tensor, row_tensor, upload},
    crate::model::weights::HostTensor,
    crate::sae::Sae,
    burn::tensor::{Tensor, TensorData},
};

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
    /// Its null: the 2.5th and 97.5th percentiles of the same share for random directions (seeded Gaussian). Their
    /// mean is exactly 0.5 for any dictionary (r and −r are equally likely and their shares sum to 1), so only this
    /// spread says whether the vector's share is unusual.
    #[serde(default)]
    pub negative_share_null: [f32; 2],
    pub partners: Vec<Partner>,
}

#[cfg(feature = "engine")]
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
        negative_share_null: negative_share_null(&unit, sv.len()).await?,
        partners,
    })
}

/// Random directions the null is drawn from, and how many go through one pass.
#[cfg(feature = "engine")]
const NULL_SAMPLES: usize = 2000;
#[cfg(feature = "engine")]
const NULL_CHUNK: usize = 250;

/// The 2.5th and 97.5th percentiles of the negative share of `NULL_SAMPLES` seeded Gaussian directions
/// (Box–Muller) on the unit decoder [d_sae, d_in]; only each direction's share comes back.
#[cfg(feature = "engine")]
async fn negative_share_null(unit: &Tensor<2>, d_in: usize) -> Result<[f32; 2]> {
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(0);
    let mut gaussian = || {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random::<f64>());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    let device = unit.device();
    let mut shares = Vec::with_capacity(NULL_SAMPLES);
    for _ in 0..NULL_SAMPLES / NULL_CHUNK {
        let r: Vec<f32> = (0..NULL_CHUNK * d_in).map(|_| gaussian()).collect();
        let r = Tensor::<2>::from_data(TensorData::new(r, [NULL_CHUNK, d_in]), &device);
        let p = r.matmul(unit.clone().transpose()); // [chunk, d_sae]
        let negative = p.clone().clamp_max(0.0);
        let share = (negative.clone() * negative).sum_dim(1) / (p.clone() * p).sum_dim(1).clamp_min(1e-30); // [chunk, 1]
        shares.extend(read(share).await?.data);
    }
    shares.sort_by(f32::total_cmp);
    let at = |q: f64| shares[((q * (shares.len() - 1) as f64).round() as usize).min(shares.len() - 1)];
    Ok([at(0.025), at(0.975)])
}

/// Fills each partner pair's mean activations on the positive and negative prompts ([n, d_in] activations at the
/// SAE's hook, read at the token CAA reads).
#[cfg(feature = "engine")]
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

    #[test]
    fn the_null_matches_its_distribution_for_random_directions() {
        // Decoder rows e0, −e0, e1. For r = (a, b), exactly one of a, −a is negative, so the share is
        // cos²θ / (1 + cos²θ) when b > 0 and 1 / (1 + cos²θ) when b < 0, θ = atan(|b| / |a|) uniform: the 2.5th
        // and 97.5th percentiles are those at θ = 0.95 · π/2.
        let sae = hand_built("standard", "");
        let p = pollster::block_on(signed_projections(&sae, &[-2.0, 0.0], 3)).unwrap();
        let c2 = (0.95 * std::f32::consts::FRAC_PI_2).cos().powi(2);
        let (lo, hi) = (c2 / (1.0 + c2), 1.0 / (1.0 + c2));
        let [got_lo, got_hi] = p.negative_share_null;
        assert!((got_lo - lo).abs() < 0.004 && (got_hi - hi).abs() < 0.004, "{got_lo} {got_hi} vs {lo} {hi}");
    }
}
