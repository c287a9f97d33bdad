//! What the page's own numbers say, in words: the lesson and the diagnostics panel read the decomposition the
//! page just computed instead of asserting what it should show, with wording for either outcome (a random or
//! unusual model can contradict the paper, and the text must then say so).

use steerlab::analysis::bias::BiasDominance;
use steerlab::analysis::defaults::DefaultComponent;
use steerlab::analysis::norms::NormHistogram;
use steerlab::analysis::population::Population;
use steerlab::analysis::table::TableRow;

/// How the vector's norm compares with the activations the SAE was trained on.
pub fn norms_reading(n: &NormHistogram) -> String {
    let ratio = n.median_over_vector;
    let verdict = if ratio >= 2.0 {
        "a vector this short is out of distribution for the encoder"
    } else {
        "here the vector is about as long as an activation, so its norm alone does not set it apart"
    };
    format!(
        "The median activation is {ratio:.1}× longer than the steering vector (norm {:.3}): {verdict}.",
        n.vector_norm
    )
}

/// How much encode(SV) is encode(0), at the vector's own scale (the first scale measured is 1).
pub fn bias_reading(b: &BiasDominance) -> String {
    let unit = b.unit_scale();
    let cos = b.cosine_with_zero.get(unit).copied().unwrap_or(f32::NAN);
    let overlap = 100.0 * b.top_k_overlap.get(unit).copied().unwrap_or(f32::NAN);
    let verdict = if cos >= 0.9 && overlap >= 50.0 {
        "the encoding barely depends on the vector: the encoder bias picks the features"
    } else {
        "here the encoding does depend on the vector, not only on the encoder bias"
    };
    format!(
        "cos(encode(SV), encode(0)) = {cos:.3}, and {overlap:.0}% of encode(SV)'s top {} features are encode(0)'s \
         too: {verdict}.",
        b.k
    )
}

/// What a decomposition `what` keeps of the vector's steerability `r` (the vector's own is 1).
fn kept(what: &str, r: f32) -> String {
    if r < 0.0 {
        format!("{what} steers the other way ({:.0}% of the vector's steerability)", 100.0 * r)
    } else {
        format!("{what} keeps {:.0}% of the vector's steerability", 100.0 * r)
    }
}

/// How much of the vector's steerability the SAE reconstruction and the best other decomposition keep. None until
/// the table has steerabilities (it needs evaluation items).
pub fn table_reading(table: &[TableRow]) -> Option<String> {
    let rec = table.iter().find(|r| r.method == "SAE reconstruction")?.relative?;
    let best = table
        .iter()
        .filter(|r| r.method != "steering vector" && r.method != "SAE reconstruction" && r.edit.is_none())
        .filter_map(|r| Some((r.relative?, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut text = format!("Here {}", kept("the SAE reconstruction", rec));
    text += if rec < 0.5 {
        ": most of the steering is lost in the encoding."
    } else {
        ": on this model much of it survives."
    };
    if let Some((b, row)) = best {
        text += &format!(" The best other decomposition, {}", kept(&row.method, b));
        text += if b < 0.2 || b <= rec + 0.2 {
            ": no decomposition here does much better than the reconstruction."
        } else if b >= 0.5 && row.method.contains("signed") {
            ": the dictionary's directions can carry the steering, though signed coefficients on an overcomplete \
             dictionary rebuild almost any vector, so this does not show that its features mean the behaviour."
        } else if b >= 0.5 {
            ": a better encoding of the same dictionary recovers much of the steering."
        } else {
            ": more than the reconstruction, but still well short of the vector."
        };
    }
    Some(text)
}

/// Whether the vector sits where real activations do, feature by feature: outside the middle 90% of the corpus's
/// projections means CAA's difference removed the default component.
pub fn defaults_reading(defaults: &[DefaultComponent]) -> Option<String> {
    let judged: Vec<bool> = defaults
        .iter()
        .filter(|c| c.corpus.values.len() >= 10)
        .map(|c| {
            let mut v: Vec<f32> = c.corpus.values.iter().copied().filter(|x| x.is_finite()).collect();
            v.sort_by(f32::total_cmp);
            let (lo, hi) = (v[v.len() / 20], v[v.len() - 1 - v.len() / 20]);
            c.vector < lo || c.vector > hi
        })
        .collect();
    if judged.is_empty() {
        return None;
    }
    let outside = judged.iter().filter(|&&o| o).count();
    let n = judged.len();
    Some(if 2 * outside >= n {
        format!(
            "For {outside} of these {n} features the vector (diamond) lies outside the middle 90% of real \
             activations (dots): the default component they all share is gone from it."
        )
    } else {
        format!(
            "Here the vector (diamond) lies outside the middle 90% of real activations for only {outside} of these \
             {n} features: on this model the default components do not set it apart."
        )
    })
}

/// What a feature population shows: whether high input and high output scores go together, and whether the
/// features picked by output score steered better than those picked by input score and random ones (Arad et al.
/// 2025 found both: rare overlap, and a 2–3× gain).
pub fn population_reading(p: &Population) -> String {
    let c = &p.cooccurrence;
    let overlap = if c.high_both < c.expected_both {
        format!(
            "{:.1}% of the features score high on both, fewer than the {:.1}% that independent scores would give: \
             features that fire on their tokens are mostly not the ones that promote them",
            100.0 * c.high_both,
            100.0 * c.expected_both
        )
    } else {
        format!(
            "{:.1}% of the features score high on both, no fewer than the {:.1}% that independent scores would give: \
             here the two scores do not pick different features",
            100.0 * c.high_both,
            100.0 * c.expected_both
        )
    };
    let mean = |name: &str| p.groups.iter().find(|g| g.name == name).map(|g| g.mean_success);
    let steering = match (mean("output score"), mean("input score"), mean("random")) {
        (Some(out), Some(inp), Some(rnd)) if out > inp.max(rnd) => format!(
            " Picked by output score, features steered best (mean success {out:.2}, against {inp:.2} by input score \
             and {rnd:.2} at random)."
        ),
        (Some(out), Some(inp), Some(rnd)) => format!(
            " Here picking by output score did not steer best (mean success {out:.2}, against {inp:.2} by input \
             score and {rnd:.2} at random)."
        ),
        _ => String::new(),
    };
    format!("At {}, {overlap}.{steering}", p.hook)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steerlab::analysis::defaults::Strip;

    fn row(method: &str, relative: Option<f32>) -> TableRow {
        let (norm, cosine) = (1.0, 1.0);
        TableRow {
            method: method.into(),
            features: None,
            norm,
            cosine,
            steerability: relative,
            relative,
            edit: None,
            vector: vec![],
        }
    }

    #[test]
    fn the_table_is_read_for_either_outcome() {
        let lost = [row("steering vector", Some(1.0)), row("SAE reconstruction", Some(-1.48)), row("gp", Some(-0.55))];
        let t = table_reading(&lost).unwrap();
        assert!(t.starts_with("Here the SAE reconstruction steers the other way (-148% of the vector's steerability)"));
        assert!(t.contains("most of the steering is lost"), "{t}");
        assert!(
            t.contains("gp steers the other way (-55%") && t.contains("no decomposition here does much better"),
            "{t}"
        );
        let kept = [row("steering vector", Some(1.0)), row("SAE reconstruction", Some(0.1)), row("top 4", Some(0.8))];
        let t = table_reading(&kept).unwrap();
        assert!(t.contains("keeps 10%") && t.contains("top 4 keeps 80% of the vector's steerability: a better"), "{t}");
        // Signed pursuit on an overcomplete dictionary can rebuild almost anything: the reading says so.
        let signed = [kept[0].clone(), kept[1].clone(), row("gradient pursuit (signed), k = 64", Some(0.9))];
        let t = table_reading(&signed).unwrap();
        assert!(t.contains("does not show that its features mean the behaviour"), "{t}");
        // A feature edit is the vector changed by hand, not a decomposition: the reading leaves it out.
        let mut edit = row("SV minus feature 3", Some(0.9));
        edit.edit = Some(steerlab::sae::edit::EditMode::Remove);
        let t = table_reading(&[lost[0].clone(), lost[1].clone(), edit]).unwrap();
        assert!(!t.contains("SV minus"), "{t}");
        assert!(table_reading(&[row("SAE reconstruction", None)]).is_none());
    }

    #[test]
    fn the_population_is_read_for_either_outcome() {
        use steerlab::analysis::population::{Cooccurrence, Group};
        let p = |both: f32, means: [f32; 3]| Population {
            hook: "blocks.6.hook_resid_pre".into(),
            d_sae: 100,
            points: vec![],
            cooccurrence: Cooccurrence {
                scored: 100,
                spearman: Some(-0.1),
                output_q75: 0.01,
                input_q75: 0.2,
                high_output: 0.25,
                high_input: 0.25,
                high_both: both,
                expected_both: 0.0625,
            },
            median_norm: 50.0,
            unsteered_coherence: -3.0,
            groups: ["output score", "input score", "random"]
                .iter()
                .zip(means)
                .map(|(n, m)| Group { name: n.to_string(), features: vec![], mean_success: m })
                .collect(),
        };
        let t = population_reading(&p(0.01, [0.3, 0.1, 0.05]));
        assert!(
            t.starts_with("At blocks.6.hook_resid_pre, 1.0% of the features score high on both, fewer than the 6.2%")
        );
        assert!(t.contains("steered best (mean success 0.30, against 0.10 by input score and 0.05 at random)"), "{t}");
        let t = population_reading(&p(0.1, [0.1, 0.3, 0.05]));
        assert!(t.contains("no fewer than") && t.contains("did not steer best"), "{t}");
        let mut scores_only = p(0.01, [0.0; 3]);
        scores_only.groups.clear();
        assert!(population_reading(&scores_only).ends_with("promote them."));
    }

    #[test]
    fn defaults_are_read_against_the_corpus() {
        let c = |vector: f32| DefaultComponent {
            feature: 1,
            corpus: Strip { mean: 10.0, values: (0..40).map(|i| 10.0 + i as f32 * 0.1).collect() },
            positive: None,
            negative: None,
            vector,
            bias: 0.0,
            activation: 0.0,
            rescaled_activation: 0.0,
            scale: 1.0,
        };
        assert!(defaults_reading(&[c(0.1), c(0.2), c(12.0)]).unwrap().starts_with("For 2 of these 3 features"));
        assert!(defaults_reading(&[c(11.0), c(12.0), c(0.0)]).unwrap().contains("for only 1 of these 3"));
    }

    #[test]
    fn norms_and_bias_are_read_for_either_outcome() {
        let n = |ratio: f32| NormHistogram {
            edges: vec![0.0, 1.0],
            counts: vec![1],
            tokens: 1,
            median: ratio,
            mean: ratio,
            vector_norm: 1.0,
            median_over_vector: ratio,
        };
        assert!(
            norms_reading(&n(5.6)).contains("5.6× longer") && norms_reading(&n(5.6)).contains("out of distribution")
        );
        assert!(norms_reading(&n(1.1)).contains("about as long as an activation"));
        let b = |cos: f32, overlap: f32| BiasDominance {
            scales: vec![1.0, 5.0],
            features: vec![],
            cosine_with_zero: vec![cos, 0.5],
            top_k_overlap: vec![overlap, 0.1],
            k: 10,
        };
        assert!(
            bias_reading(&b(0.963, 0.8)).contains("= 0.963, and 80%")
                && bias_reading(&b(0.963, 0.8)).contains("bias picks")
        );
        assert!(bias_reading(&b(0.2, 0.1)).contains("does depend on the vector"));
    }
}
