//! Feature dashboards computed locally, for any loaded SAE (Neuronpedia has pages only for public SAEs): a
//! feature's top-activating passages of the background corpus with each token's activation, the histogram of its
//! activations where it fires, its logit lens (tokens promoted and suppressed: softmax(unembed(ln_final(decoder
//! row)))) and its nearest features by decoder cosine; and a search: the features most active on a typed text,
//! token by token.
//!
//! Position 0 of a passage is left out of every statistic (its outlier norms would dominate, as in the input
//! scores), but shown.

#[cfg(feature = "engine")]
use super::corpus::passage_tokens;
use super::features::LensToken;
#[cfg(feature = "engine")]
use {
    super::features::{lens_probs, lens_tokens},
    crate::device::read,
    crate::error::{Error, Result},
    crate::model::Model,
    crate::model::batch::Batch,
    crate::model::hooks::Hooks,
    crate::model::layers::index_tensor,
    crate::model::transformer::Input,
    crate::sae::Sae,
};

/// Features one request may ask dashboards for: each keeps its firing activations over the corpus until binned.
pub const MAX_FEATURES: usize = 32;
/// The most bytes of a text's SAE activations read back at once.
#[cfg(feature = "engine")]
const READ_BYTES: usize = 16 << 20;
/// Tokens shown before and after a passage's strongest token.
#[cfg(feature = "engine")]
const WINDOW_BEFORE: usize = 24;
#[cfg(feature = "engine")]
const WINDOW_AFTER: usize = 8;

#[cfg(feature = "engine")]
pub struct DashboardOptions<'a> {
    pub corpus: &'a [String],
    /// Top-activating passages kept per feature.
    pub passages: usize,
    /// Histogram bins.
    pub bins: usize,
    /// Logit-lens tokens shown each way, and decoder-cosine neighbours.
    pub k: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureDashboard {
    pub feature: usize,
    /// Strongest first (ties: corpus order).
    pub passages: Vec<ActivatingPassage>,
    pub histogram: ActivationHistogram,
    /// The logit lens's most and least likely tokens.
    pub promoted: Vec<LensToken>,
    pub suppressed: Vec<LensToken>,
    /// The features whose decoder rows are nearest by cosine, nearest first.
    pub neighbours: Vec<Neighbour>,
}

/// A window of a passage around its strongest token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActivatingPassage {
    /// Index of the passage in the corpus (passages of fewer than two tokens are not counted).
    pub passage: usize,
    /// Position in the passage of the window's first token.
    pub start: usize,
    pub tokens: Vec<String>,
    pub acts: Vec<f32>,
    /// The largest activation (at a position after the first) and where it is, in the window.
    pub max: f32,
    pub at: usize,
    /// Whether the passage goes on past the window.
    pub more: bool,
}

/// Activations where the feature fires (> 0), in `counts.len()` equal bins from 0 to the largest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActivationHistogram {
    /// Bin edges, `counts.len() + 1` of them; empty when the feature never fires.
    pub edges: Vec<f32>,
    pub counts: Vec<u32>,
    /// Tokens it fires on, of all tokens counted.
    pub fired: usize,
    pub tokens: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Neighbour {
    pub feature: usize,
    pub cosine: f32,
}

/// Dashboards of `features`, their corpus passages run batched once for all of them.
#[cfg(feature = "engine")]
pub async fn feature_dashboards(
    model: &Model,
    sae: &Sae,
    features: &[usize],
    opts: &DashboardOptions<'_>,
) -> Result<Vec<FeatureDashboard>> {
    let point = sae.check_fits(model.cfg())?;
    sae.check_features(features)?;
    if features.is_empty() || features.len() > MAX_FEATURES {
        return Err(Error::invalid(format!("ask for 1 to {MAX_FEATURES} features' dashboards at once")));
    }
    if opts.bins == 0 || opts.bins > 1000 || opts.k == 0 || opts.k > 1000 || opts.passages > 1000 {
        return Err(Error::invalid("bins, passages and k must be between 1 (0 passages allowed) and 1000"));
    }
    let device = &model.net.device;
    let seqs = passage_tokens(model, opts.corpus)?;
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let (d, n) = (model.cfg().d_model, features.len());
    let ids = index_tensor(features, device);
    let mut fired: Vec<Vec<f32>> = vec![Vec::new(); n];
    // Per feature: (max, passage, its activations), only the strongest kept as the corpus streams past.
    let mut best: Vec<Vec<(f32, usize, Vec<f32>)>> = vec![Vec::new(); n];
    let mut tokens = 0;
    for part in model.chunks(&lens, |seq| seq * sae.cfg.d_sae * 4) {
        model.report("dashboards (background passages)", part.start, lens.len());
        let batch = Batch::new(&seqs[part.clone()])?;
        let (rows, t) = (batch.rows(), batch.seq);
        let x = model.run_to(Input::Tokens { ids: &batch.ids, rows }, &mut Hooks::default(), point)?; // [rows, t, d]
        let acts = read(sae.encode(x.reshape([rows * t, d])).select(1, ids.clone())).await?.data; // [rows * t, n]
        for (r, &len) in batch.lens.iter().enumerate() {
            let passage = part.start + r;
            tokens += len - 1;
            for (i, kept) in best.iter_mut().enumerate() {
                let row: Vec<f32> = (0..len).map(|p| acts[(r * t + p) * n + i]).collect();
                fired[i].extend(row[1..].iter().copied().filter(|&a| a > 0.0));
                let max = row[1..].iter().copied().fold(f32::MIN, f32::max);
                if max > 0.0 && opts.passages > 0 {
                    kept.push((max, passage, row));
                }
                if kept.len() > 2 * opts.passages {
                    strongest_first(kept);
                    kept.truncate(opts.passages);
                }
            }
        }
    }
    let neighbours = neighbours(sae, features, opts.k).await?;
    let probs = lens_probs(model, sae, features).await?;
    let mut out = Vec::with_capacity(n);
    for (i, &feature) in features.iter().enumerate() {
        let kept = &mut best[i];
        strongest_first(kept);
        kept.truncate(opts.passages);
        let passages = kept.iter().map(|(max, p, acts)| window(model, &seqs[*p], *p, acts, *max)).collect();
        let suppressed = super::top_indices(&probs[i], opts.k.min(probs[i].len()), |p| -p);
        out.push(FeatureDashboard {
            feature,
            passages,
            histogram: histogram(&fired[i], opts.bins, tokens),
            promoted: lens_tokens(model, &probs[i], opts.k),
            suppressed: suppressed
                .into_iter()
                .map(|id| LensToken { id: id as u32, text: token_text(model, id as u32), prob: probs[i][id] })
                .collect(),
            neighbours: neighbours[i].clone(),
        });
    }
    Ok(out)
}

#[cfg(feature = "engine")]
fn strongest_first(kept: &mut [(f32, usize, Vec<f32>)]) {
    kept.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
}

#[cfg(feature = "engine")]
fn token_text(model: &Model, id: u32) -> String {
    model.tokenizer.decode(&[id]).unwrap_or_default()
}

/// The passage's tokens around its strongest one (after position 0).
#[cfg(feature = "engine")]
fn window(model: &Model, tokens: &[u32], passage: usize, acts: &[f32], max: f32) -> ActivatingPassage {
    let at = 1 + acts[1..].iter().position(|&a| a == max).unwrap_or(0);
    let start = at.saturating_sub(WINDOW_BEFORE);
    let end = (at + WINDOW_AFTER + 1).min(tokens.len());
    ActivatingPassage {
        passage,
        start,
        tokens: tokens[start..end].iter().map(|&t| token_text(model, t)).collect(),
        acts: acts[start..end].to_vec(),
        max,
        at: at - start,
        more: end < tokens.len(),
    }
}

/// `bins` equal bins from 0 to the largest value (which falls in the last).
#[cfg(feature = "engine")]
fn histogram(values: &[f32], bins: usize, tokens: usize) -> ActivationHistogram {
    let max = values.iter().copied().fold(0.0f32, f32::max);
    if values.is_empty() || max <= 0.0 {
        return ActivationHistogram { edges: vec![], counts: vec![0; bins], fired: 0, tokens };
    }
    let mut counts = vec![0u32; bins];
    for &v in values {
        counts[((v / max * bins as f32) as usize).min(bins - 1)] += 1;
    }
    let edges = (0..=bins).map(|i| max * i as f32 / bins as f32).collect();
    ActivationHistogram { edges, counts, fired: values.len(), tokens }
}

/// Each feature's `k` nearest other features by decoder cosine.
#[cfg(feature = "engine")]
async fn neighbours(sae: &Sae, features: &[usize], k: usize) -> Result<Vec<Vec<Neighbour>>> {
    let cos = read(sae.decoder_cosines(features)).await?; // [n, d_sae]
    let d_sae = sae.cfg.d_sae;
    Ok(features
        .iter()
        .zip(cos.data.chunks(d_sae))
        .map(|(&f, row)| {
            let mut near = super::top_indices(row, (k + 1).min(d_sae), |c| c);
            near.retain(|&g| g != f);
            near.truncate(k);
            near.into_iter().map(|g| Neighbour { feature: g, cosine: row[g] }).collect()
        })
        .collect())
}

/// What an SAE's features do on a typed text: each token's most active features, and the features most active
/// anywhere in it (at a position after the first, unless the text is one token).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextFeatures {
    pub tokens: Vec<TokenFeatures>,
    /// Strongest first.
    pub top: Vec<FeatureAt>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenFeatures {
    pub text: String,
    /// The token's most active features (those that fire), strongest first.
    pub features: Vec<FeatureAt>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureAt {
    pub feature: usize,
    pub act: f32,
    /// The token it is strongest on.
    pub token: usize,
}

/// The `k` most active features on each token of `text`, and overall.
#[cfg(feature = "engine")]
pub async fn features_on_text(model: &Model, sae: &Sae, text: &str, k: usize) -> Result<TextFeatures> {
    let point = sae.check_fits(model.cfg())?;
    if k == 0 || k > 1000 {
        return Err(Error::invalid("k must be between 1 and 1000"));
    }
    let ids = model.encode_prompt(text)?;
    let (s, d, d_sae) = (ids.len(), model.cfg().d_model, sae.cfg.d_sae);
    let x = model.run_to(Input::tokens(&ids), &mut Hooks::default(), point)?; // [1, s, d]
    let acts = sae.encode(x.reshape([s, d])); // [s, d_sae]
    let mut per_token = Vec::with_capacity(s);
    let mut best: Vec<(f32, usize)> = vec![(0.0, 0); d_sae];
    // Read back a few tokens' activations at a time: a wide SAE's [s, d_sae] need not fit the host at once.
    let rows_per_read = (READ_BYTES / (4 * d_sae)).max(1);
    for start in (0..s).step_by(rows_per_read) {
        let end = (start + rows_per_read).min(s);
        let part = read(acts.clone().slice([start..end, 0..d_sae])).await?.data; // [end - start, d_sae]
        for (i, row) in part.chunks(d_sae).enumerate() {
            let p = start + i;
            let top = super::top_indices(row, k.min(d_sae), |a| a);
            let features =
                top.into_iter().filter(|&f| row[f] > 0.0).map(|f| FeatureAt { feature: f, act: row[f], token: p });
            per_token.push(TokenFeatures { text: token_text(model, ids[p]), features: features.collect() });
            if p > 0 || s == 1 {
                for (f, &a) in row.iter().enumerate() {
                    if a > best[f].0 {
                        best[f] = (a, p);
                    }
                }
            }
        }
    }
    let maxes: Vec<f32> = best.iter().map(|b| b.0).collect();
    let top = super::top_indices(&maxes, k.min(d_sae), |a| a)
        .into_iter()
        .filter(|&f| maxes[f] > 0.0)
        .map(|f| FeatureAt { feature: f, act: best[f].0, token: best[f].1 })
        .collect();
    Ok(TextFeatures { tokens: per_token, top })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_bin_from_zero_to_the_largest() {
        let h = histogram(&[0.5, 1.0, 2.0, 4.0], 4, 10);
        assert_eq!(h.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        // 0.5 in [0, 1), 1.0 in [1, 2), 2.0 in [2, 3), the largest in the last bin.
        assert_eq!(h.counts, vec![1, 1, 1, 1]);
        assert_eq!((h.fired, h.tokens), (4, 10));
        let none = histogram(&[], 3, 7);
        assert_eq!((none.edges.len(), none.counts, none.fired), (0, vec![0, 0, 0], 0));
    }
}
