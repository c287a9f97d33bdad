//! Diagnostic 3: default components. Real activations carry large components along many encoder directions
//! whatever the prompt; the positive and the negative prompts share them and CAA's difference removes them,
//! so a feature the SAE uses for every activation can look very different on the steering vector.

#[cfg(feature = "engine")]
use {
    super::corpus::CorpusStats,
    crate::device::read,
    crate::error::Result,
    crate::model::layers::{index_tensor, row_tensor, upload},
    crate::model::weights::HostTensor,
    crate::sae::Sae,
    crate::stats::mean,
};

/// Values of one group for a strip plot: their mean and up to `STRIP` of them, evenly spaced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Strip {
    pub mean: f32,
    pub values: Vec<f32>,
}

pub const STRIP: usize = 200;

/// Per feature, the projection x · W_enc[:, f] (before bias) of each group's activations.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DefaultComponent {
    pub feature: usize,
    pub corpus: Strip,
    pub positive: Option<Strip>,
    pub negative: Option<Strip>,
    /// The steering vector's own projection.
    pub vector: f32,
    /// The encoder bias b_enc[f]: what the pre-activation is before any input (Mayne et al.'s Fig. 3).
    #[serde(default)]
    pub bias: f32,
    /// The feature's activation in encode(SV) and in encode(scale · SV), the vector rescaled to a typical
    /// activation's norm (`scale`).
    #[serde(default)]
    pub activation: f32,
    #[serde(default)]
    pub rescaled_activation: f32,
    #[serde(default)]
    pub scale: f32,
}

/// The projections of `features` on the corpus (its mean, and its sampled tokens as dots), on the positive and
/// negative prompts, and on the vector.
#[cfg(feature = "engine")]
pub async fn default_components(
    sae: &Sae,
    features: &[usize],
    corpus: &CorpusStats,
    positive: Option<&HostTensor>,
    negative: Option<&HostTensor>,
    sv: &[f32],
    scale: f32,
) -> Result<Vec<DefaultComponent>> {
    if features.is_empty() {
        return Ok(Vec::new());
    }
    let device = sae.w_dec.device();
    let dirs = sae.w_enc.clone().select(1, index_tensor(features, &device));
    let project = async |x: &HostTensor| -> Result<Vec<Vec<f32>>> {
        let p = read(upload::<2>(x.clone(), &device).matmul(dirs.clone())).await?.data; // [n, features]
        Ok((0..features.len()).map(|j| p.iter().skip(j).step_by(features.len()).copied().collect()).collect())
    };
    // The mean projection is the projection of the mean: every token counts, not only the sampled ones.
    let corpus_mean = project(&HostTensor::new(vec![1, sae.cfg.d_in], corpus.mean())).await?;
    let corpus = project(&corpus.sample).await?;
    let pos = match positive {
        Some(x) => Some(project(x).await?),
        None => None,
    };
    let neg = match negative {
        Some(x) => Some(project(x).await?),
        None => None,
    };
    let vector = project(&HostTensor::new(vec![1, sv.len()], sv.to_vec())).await?;
    let bias = read(sae.b_enc.clone()).await?.data; // [d_sae]: small, and read whole
    let scaled: Vec<f32> = sv.iter().map(|v| v * scale).collect();
    let acts = read(sae.encode(row_tensor(sv, &device))).await?.data;
    let rescaled = read(sae.encode(row_tensor(&scaled, &device))).await?.data;
    Ok(features
        .iter()
        .enumerate()
        .map(|(j, &feature)| DefaultComponent {
            feature,
            corpus: Strip { mean: corpus_mean[j][0], ..strip(&corpus[j]) },
            positive: pos.as_ref().map(|p| strip(&p[j])),
            negative: neg.as_ref().map(|n| strip(&n[j])),
            vector: vector[j][0],
            bias: bias[feature],
            activation: acts[feature],
            rescaled_activation: rescaled[feature],
            scale,
        })
        .collect())
}

#[cfg(feature = "engine")]
fn strip(values: &[f32]) -> Strip {
    let mean = mean(values.iter().copied());
    let step = values.len().div_ceil(STRIP).max(1);
    Strip { mean, values: values.iter().step_by(step).copied().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sae::tests::hand_built;

    #[test]
    fn shared_components_cancel_in_the_vector() {
        let sae = hand_built("standard", "");
        // Both sides have x1 = 4 (a default component along feature 2); they differ in x0.
        let pos = HostTensor::new(vec![2, 2], vec![1.0, 4.0, 1.5, 4.0]);
        let neg = HostTensor::new(vec![2, 2], vec![-1.0, 4.0, -0.5, 4.0]);
        let corpus = CorpusStats::of_rows(&HostTensor::new(vec![1, 2], vec![0.0, 3.0]), 200);
        let sv = [2.0, 0.0];
        let d =
            pollster::block_on(default_components(&sae, &[2, 0], &corpus, Some(&pos), Some(&neg), &sv, 1.0)).unwrap();
        assert_eq!((d[0].feature, d[0].positive.as_ref().unwrap().mean, d[0].vector), (2, 4.0, 0.0));
        assert_eq!(d[0].negative.as_ref().unwrap().values, vec![4.0, 4.0]);
        assert_eq!((d[1].corpus.mean, d[1].vector), (0.0, 2.0));
    }
}
