//! Arad, Mueller & Belinkov 2025 across a population of features, not a chosen few: the input and output scores
//! (`features.rs`) of a sample of an SAE's features, how often a feature scores high on both, and how well the
//! top features by output score steer text compared with the top ones by input score and with random ones.
//!
//! Steering success is judged by the text (`steer::score`), with the feature's own top logit-lens tokens as its
//! concept words: each feature's unit decoder direction is added at every position × each strength (multiples
//! of the median activation norm at the hook), and at each strength
//! - concept gain = the share of generated words that are its concept words, minus that share in the unsteered
//!   continuations of the same prompts (at least 0);
//! - fluency = exp(coherence − unsteered coherence), at most 1: the per-token likelihood ratio, under the
//!   unsteered model, of the steered text against the unsteered text;
//! - success = their harmonic mean (Arad et al. combine an LLM judge's concept and fluency ratings the same way;
//!   the two ratings here are our own stand-ins for that judge). A feature's success is its best over strengths.

use serde::{Deserialize, Serialize};
#[cfg(feature = "engine")]
use std::collections::HashSet;
#[cfg(feature = "engine")]
use {
    super::features::{FeatureScore, ScoreOptions, feature_scores_and_norms},
    super::norms::norm_histogram,
    crate::device::read,
    crate::error::{Error, Result},
    crate::model::Model,
    crate::sae::Sae,
    crate::stats::{mean, spearman},
    crate::steer::score::{Generated, generate_scored, mean_concept_share, words},
    rand::{RngExt, SeedableRng, rngs::StdRng},
};

/// The groups whose steering is compared, in order.
pub const GROUPS: [&str; 3] = ["output score", "input score", "random"];

#[cfg(feature = "engine")]
pub struct PopulationOptions<'a> {
    /// How many features to score, drawn without replacement (every feature when at least d_sae).
    pub sample: usize,
    /// Seeds the draw of the sample and of the random group.
    pub seed: u64,
    pub scores: ScoreOptions<'a>,
    /// Features per group whose steering is judged by its text (0: no steering comparison).
    pub top: usize,
    /// Prompts the groups' features steer.
    pub prompts: &'a [String],
    /// Steering strengths, as multiples of the median activation norm at the hook.
    pub strengths: &'a [f32],
    pub max_new_tokens: usize,
}

/// One feature of the sample on the input × output plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub feature: usize,
    pub output_score: f32,
    /// None when the feature fired on no background passage.
    pub input_score: Option<f32>,
}

/// Do high input and high output scores go together? Over the features with an input score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cooccurrence {
    /// Features with an input score (the others fired on no passage).
    pub scored: usize,
    /// Spearman's rank correlation of the two scores.
    pub spearman: Option<f32>,
    /// "High" is above the 75th percentile of the score (nearest rank) over these features.
    pub output_q75: f32,
    pub input_q75: f32,
    /// Shares of these features with a high output score, a high input score, and both.
    pub high_output: f32,
    pub high_input: f32,
    pub high_both: f32,
    /// What `high_both` would be if the two were independent: high_output × high_input.
    pub expected_both: f32,
}

/// One strength's reading of a feature's steered text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrengthSuccess {
    /// The absolute strength (× the unit decoder direction).
    pub strength: f32,
    /// Share of generated words that are concept words.
    pub concept: f32,
    pub coherence: f32,
    /// concept − the unsteered share, at least 0.
    pub gain: f32,
    /// exp(coherence − unsteered coherence), at most 1.
    pub fluency: f32,
    /// Harmonic mean of gain and fluency.
    pub success: f32,
    /// The first prompt's continuation, to read.
    pub example: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSteering {
    pub feature: usize,
    pub output_score: f32,
    pub input_score: Option<f32>,
    /// Its concept words: the words of its top logit-lens tokens.
    pub concept: Vec<String>,
    /// The share of concept words in the unsteered continuations.
    pub unsteered_concept: f32,
    pub strengths: Vec<StrengthSuccess>,
    /// The best success over strengths.
    pub success: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// How its features were chosen: one of `GROUPS`.
    pub name: String,
    pub features: Vec<FeatureSteering>,
    pub mean_success: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    pub hook: String,
    pub d_sae: usize,
    /// The sample, by feature index.
    pub points: Vec<Point>,
    pub cooccurrence: Cooccurrence,
    /// The median activation norm at the hook over the background passages: the unit of strength.
    pub median_norm: f32,
    pub unsteered_coherence: f32,
    /// Output score, input score, random; empty without a steering comparison.
    pub groups: Vec<Group>,
}

/// Scores a sample of the SAE's features and compares how the top ones by each score steer.
#[cfg(feature = "engine")]
pub async fn population(model: &Model, sae: &Sae, opts: &PopulationOptions<'_>) -> Result<Population> {
    let point = sae.check_fits(model.cfg())?;
    let d_sae = sae.cfg.d_sae;
    if opts.sample == 0 {
        return Err(Error::invalid("sample at least one feature"));
    }
    if opts.top > 0 && (opts.strengths.is_empty() || opts.strengths.iter().any(|s| !s.is_finite() || *s == 0.0)) {
        return Err(Error::invalid("strengths must be non-zero finite multiples of the median activation norm"));
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let sample = draw(&mut rng, d_sae, opts.sample);
    // The input scores run the corpus anyway: its activation norms (the unit of strength) come with them.
    let (mut scores, norms) = feature_scores_and_norms(model, sae, &sample, &opts.scores, None).await?;
    scores.sort_by_key(|s| s.feature);
    let points: Vec<Point> = scores
        .iter()
        .map(|s| Point { feature: s.feature, output_score: s.output_score, input_score: s.input_score })
        .collect();
    let cooccurrence = cooccurrence(&points);
    let median_norm = norm_histogram(&norms, &[], 1).median;

    let mut out = Population {
        hook: point.to_string(),
        d_sae,
        points,
        cooccurrence,
        median_norm,
        unsteered_coherence: 0.0,
        groups: Vec::new(),
    };
    if opts.top == 0 {
        return Ok(out);
    }
    let chosen = groups(&scores, opts.top, &mut rng);
    // Every feature of every group steers in one generation per prompt, with one unsteered row first.
    let features: Vec<usize> = {
        let mut all: Vec<usize> = chosen.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let unit = sae.unit_decoder().select(0, crate::model::layers::index_tensor(&features, &model.net.device));
    let unit = read(unit).await?; // [features, d_in]
    let directions: Vec<Vec<f32>> = unit.data.chunks(sae.cfg.d_in).map(<[f32]>::to_vec).collect();
    let strengths: Vec<f32> = opts.strengths.iter().map(|m| m * median_norm).collect();
    let rows: Vec<Option<(usize, f32)>> = std::iter::once(None)
        .chain((0..features.len()).flat_map(|i| strengths.iter().map(move |&s| Some((i, s)))))
        .collect();
    let generated = generate_scored(model, &out.hook, &directions, &rows, opts.prompts, opts.max_new_tokens).await?;
    let (unsteered, steered) = generated.split_first().expect("the unsteered row comes first");
    out.unsteered_coherence = unsteered.coherence;

    let by_feature = |f: usize| {
        let i = features.binary_search(&f).expect("every chosen feature steered");
        let score = scores.iter().find(|s| s.feature == f).expect("chosen from the scores");
        feature_steering(score, unsteered, &steered[i * strengths.len()..(i + 1) * strengths.len()], &strengths)
    };
    out.groups = GROUPS
        .iter()
        .zip(chosen)
        .map(|(name, fs)| {
            let features: Vec<FeatureSteering> = fs.into_iter().map(by_feature).collect();
            let mean_success = mean(features.iter().map(|f| f.success));
            Group { name: name.to_string(), features, mean_success }
        })
        .collect();
    Ok(out)
}

/// `n` distinct features of `0..d_sae` (all of them when n ≥ d_sae), ascending: a partial Fisher–Yates shuffle.
#[cfg(feature = "engine")]
fn draw(rng: &mut StdRng, d_sae: usize, n: usize) -> Vec<usize> {
    if n >= d_sae {
        return (0..d_sae).collect();
    }
    let mut all: Vec<usize> = (0..d_sae).collect();
    for i in 0..n {
        let j = rng.random_range(i..d_sae);
        all.swap(i, j);
    }
    all.truncate(n);
    all.sort_unstable();
    all
}

/// The top `k` features by output score, by input score (features that fired on no passage last), and `k`
/// drawn at random from the sample. Ties go to the lower feature index.
#[cfg(feature = "engine")]
fn groups(scores: &[FeatureScore], k: usize, rng: &mut StdRng) -> [Vec<usize>; 3] {
    let top_by = |key: &dyn Fn(&FeatureScore) -> f32| {
        let mut order: Vec<&FeatureScore> = scores.iter().collect();
        order.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.feature.cmp(&b.feature)));
        order.iter().take(k).map(|s| s.feature).collect::<Vec<_>>()
    };
    let by_output = top_by(&|s| s.output_score);
    let by_input = top_by(&|s| s.input_score.unwrap_or(-1.0));
    let random = draw(rng, scores.len(), k).into_iter().map(|i| scores[i].feature).collect();
    [by_output, by_input, random]
}

/// A feature's concept words: the words of its logit-lens tokens that are one word each, first seen first.
#[cfg(feature = "engine")]
pub fn concept_words(score: &FeatureScore) -> Vec<String> {
    let mut seen = HashSet::new();
    score
        .lens
        .iter()
        .filter_map(|t| match words(&t.text).as_slice() {
            [w] => Some(w.clone()),
            _ => None,
        })
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

/// Reads one feature's steered continuations (one `Generated` per strength) against the unsteered ones.
#[cfg(feature = "engine")]
fn feature_steering(
    score: &FeatureScore,
    unsteered: &Generated,
    steered: &[Generated],
    strengths: &[f32],
) -> FeatureSteering {
    let concept = concept_words(score);
    let set: HashSet<String> = concept.iter().cloned().collect();
    let base = mean_concept_share(&unsteered.generations, &set);
    let strengths: Vec<StrengthSuccess> = steered
        .iter()
        .zip(strengths)
        .map(|(g, &strength)| {
            let share = mean_concept_share(&g.generations, &set);
            let gain = (share - base).max(0.0);
            let fluency = ((g.coherence - unsteered.coherence) as f64).exp().min(1.0) as f32;
            StrengthSuccess {
                strength,
                concept: share,
                coherence: g.coherence,
                gain,
                fluency,
                success: harmonic_mean(gain, fluency),
                example: g.generations.first().map(|g| g.text.clone()).unwrap_or_default(),
            }
        })
        .collect();
    FeatureSteering {
        feature: score.feature,
        output_score: score.output_score,
        input_score: score.input_score,
        unsteered_concept: base,
        success: strengths.iter().map(|s| s.success).fold(0.0, f32::max),
        strengths,
        concept,
    }
}

/// 2ab / (a + b), 0 when both are 0.
#[cfg(feature = "engine")]
pub fn harmonic_mean(a: f32, b: f32) -> f32 {
    if a + b > 0.0 { 2.0 * a * b / (a + b) } else { 0.0 }
}

/// The 75th percentile by nearest rank: sorted[round(0.75 (n − 1))].
#[cfg(feature = "engine")]
fn q75(values: &[f32]) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    v.get(((v.len().saturating_sub(1)) as f64 * 0.75).round() as usize).copied().unwrap_or(0.0)
}

/// How the input and output scores of the features with an input score go together.
#[cfg(feature = "engine")]
pub fn cooccurrence(points: &[Point]) -> Cooccurrence {
    let (outs, ins): (Vec<f32>, Vec<f32>) =
        points.iter().filter_map(|p| p.input_score.map(|i| (p.output_score, i))).unzip();
    let (output_q75, input_q75) = (q75(&outs), q75(&ins));
    let n = outs.len().max(1) as f32;
    let share =
        |pred: &dyn Fn(f32, f32) -> bool| outs.iter().zip(&ins).filter(|(o, i)| pred(**o, **i)).count() as f32 / n;
    let high_output = share(&|o, _| o > output_q75);
    let high_input = share(&|_, i| i > input_q75);
    Cooccurrence {
        scored: outs.len(),
        spearman: spearman(&ins, &outs),
        output_q75,
        input_q75,
        high_output,
        high_input,
        high_both: share(&|o, i| o > output_q75 && i > input_q75),
        expected_both: high_output * high_input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_distinct_features_or_all() {
        let mut rng = StdRng::seed_from_u64(3);
        let d = draw(&mut rng, 100, 10);
        assert_eq!(d.len(), 10);
        assert!(d.windows(2).all(|w| w[0] < w[1]) && d.iter().all(|&f| f < 100));
        assert_ne!(d, (0..10).collect::<Vec<_>>());
        assert_eq!(draw(&mut rng, 5, 9), vec![0, 1, 2, 3, 4]);
        assert_eq!(draw(&mut StdRng::seed_from_u64(3), 100, 10), d, "the seed fixes the sample");
    }

    #[test]
    fn cooccurrence_counts_quadrants() {
        // Eight features; output and input highs never coincide; one feature has no input score.
        let p = |feature, output_score, input_score| Point { feature, output_score, input_score };
        let points = vec![
            p(0, 0.9, Some(0.0)),
            p(1, 0.8, Some(0.1)),
            p(2, 0.1, Some(0.9)),
            p(3, 0.2, Some(0.8)),
            p(4, 0.3, Some(0.2)),
            p(5, 0.4, Some(0.3)),
            p(6, 0.5, Some(0.4)),
            p(7, 0.6, Some(0.5)),
            p(8, 1.0, None),
        ];
        let c = cooccurrence(&points);
        assert_eq!(c.scored, 8);
        // q75 of 8 values: sorted[round(5.25)] = sorted[5].
        assert_eq!((c.output_q75, c.input_q75), (0.6, 0.5));
        assert_eq!((c.high_output, c.high_input, c.high_both), (0.25, 0.25, 0.0));
        assert_eq!(c.expected_both, 0.0625);
        assert!(c.spearman.unwrap() < -0.5);
    }

    #[test]
    fn harmonic_mean_needs_both() {
        assert_eq!(harmonic_mean(0.0, 1.0), 0.0);
        assert_eq!(harmonic_mean(0.0, 0.0), 0.0);
        assert!((harmonic_mean(0.5, 1.0) - 2.0 / 3.0).abs() < 1e-6);
    }
}
