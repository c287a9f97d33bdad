//! The diagnostics of Mayne et al. 2024 ("Can sparse autoencoders be used to decompose and interpret
//! steering vectors?"): why an SAE's reconstruction of a steering vector loses its steering behaviour, and
//! which SAE features steer well (`features`: Arad et al. 2025, `population`: the same across many features;
//! `side_effects`: Duan 2026). Each function
//! returns plain data that the CLI prints and the browser plots; `decompose` runs the five diagnostics.

pub mod actadd;
pub mod bias;
#[cfg(feature = "engine")]
pub mod corpus;
pub mod dashboard;
pub mod defaults;
pub mod features;
pub mod norms;
pub mod population;
pub mod projections;
pub mod side_effects;
pub mod table;

#[cfg(feature = "engine")]
use {
    crate::error::{Error, Result},
    crate::model::Model,
    crate::sae::Sae,
    crate::stats::norm,
    crate::steer::dataset::ContrastivePair,
    crate::steer::propensity::Probes,
};

/// What `decompose` needs besides the model, the SAE and the steering vector.
#[cfg(feature = "engine")]
pub struct DecomposeOptions<'a> {
    /// Background text, one passage per entry: activation norms and the mean activation come from it.
    pub corpus: &'a [String],
    /// The contrastive pairs the vector came from, for the default-component strips.
    pub pairs: Option<&'a [ContrastivePair]>,
    /// Held-out A/B items or pairs: with them the table measures steerability, without it only geometry.
    pub eval: Option<&'a Probes>,
    pub multipliers: &'a [f32],
    /// Feature counts for the top-k subsets and gradient pursuit.
    pub ks: &'a [usize],
    /// The vector restricted to, or without, chosen features: rows of the table next to it.
    pub edits: &'a [crate::sae::edit::FeatureEdit],
    /// How many features each per-feature view lists.
    pub top: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Decomposition {
    pub hook: String,
    pub vector_norm: f32,
    pub norms: norms::NormHistogram,
    pub bias: bias::BiasDominance,
    pub defaults: Vec<defaults::DefaultComponent>,
    pub projections: projections::SignedProjections,
    pub table: Vec<table::TableRow>,
}

/// Runs the five diagnostics for `sv`, a steering vector at the SAE's hook.
#[cfg(feature = "engine")]
pub async fn decompose(model: &Model, sae: &Sae, sv: &[f32], opts: &DecomposeOptions<'_>) -> Result<Decomposition> {
    let point = sae.check_fits(model.cfg())?;
    if sv.len() != sae.cfg.d_in {
        return Err(Error::invalid(format!(
            "steering vector has {} dims but the SAE's d_in is {}",
            sv.len(),
            sae.cfg.d_in
        )));
    }
    sae.check_ks(opts.ks)?; // before the corpus runs: a bad k or feature fails at once
    for e in opts.edits {
        sae.check_features(&e.features)?;
    }
    let corpus = corpus::corpus_stats(model, opts.corpus, point, defaults::STRIP, &mut |_| Ok(())).await?;
    let norms = norms::norm_histogram(&corpus.norms, sv, 40);
    let typical = (norms.median / norms.vector_norm.max(1e-12)).max(1.0);
    let bias = bias::bias_dominance(sae, sv, &[1.0, typical], opts.top).await?;
    let features: Vec<usize> = bias.features.iter().map(|f| f.feature).take(opts.top).collect();
    let (pos, neg) = match opts.pairs {
        Some(pairs) => {
            let (p, n) = corpus::pair_activations(model, pairs, point).await?;
            (Some(p), Some(n))
        }
        None => (None, None),
    };
    let (p, n) = (pos.as_ref(), neg.as_ref());
    let defaults = defaults::default_components(sae, &features, &corpus, p, n, sv, typical).await?;
    let mut projections = projections::signed_projections(sae, sv, opts.top).await?;
    if let (Some(p), Some(n)) = (&pos, &neg) {
        projections::partner_activations(sae, &mut projections, p, n).await?;
    }
    let mean = corpus.mean();
    let eval = opts.eval.map(|probes| table::Eval { model, probes, multipliers: opts.multipliers });
    let table = table::steerability_table(sae, sv, &mean, opts.ks, opts.edits, eval, &|| model.check_stop()).await?;
    Ok(Decomposition { hook: point.to_string(), vector_norm: norm(sv), norms, bias, defaults, projections, table })
}

/// Indices of the `k` largest values, largest first.
#[cfg(feature = "engine")]
pub(crate) fn top_indices(values: &[f32], k: usize, key: impl Fn(f32) -> f32) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| key(values[b]).total_cmp(&key(values[a])));
    idx.truncate(k);
    idx
}
