//! The models and SAEs the lab offers, at pinned hub revisions, and where Neuronpedia shows their features.

/// The public Hugging Face hub; the page lets a user point at a mirror instead.
pub const HUB: &str = "https://huggingface.co";
/// The embedded default is served by the site itself, in the hub's URL layout.
pub const SITE_HUB: &str = "hub";

/// The files of a hub model directory.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// The files of a SAELens SAE folder.
pub const SAE_FILES: [&str; 2] = ["cfg.json", "sae_weights.safetensors"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelEntry {
    /// Short id used in permalinks.
    pub id: &'static str,
    pub label: &'static str,
    pub repo: &'static str,
    pub revision: &'static str,
    /// Served by the site (the embedded default) rather than the hub.
    pub embedded: bool,
    /// Download size of its files, for the picker.
    pub megabytes: u32,
    pub saes: SaeRelease,
}

/// A set of residual-stream SAEs, one folder per hook.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaeRelease {
    pub label: &'static str,
    pub repo: &'static str,
    pub revision: &'static str,
    /// (hook, folder, Neuronpedia source id) per SAE.
    pub saes: &'static [(&'static str, &'static str, Option<&'static str>)],
    /// Neuronpedia's model id, when it shows this release.
    pub neuronpedia_model: Option<&'static str>,
    /// Keys merged into each `cfg.json` before it is read, as SAELens's `config_overrides` do.
    pub config_overrides: Option<&'static str>,
}

pub const EMBEDDED: ModelEntry = ModelEntry {
    id: "embedded",
    label: "gpt2-tiny (embedded, random weights)",
    repo: "steerlab/gpt2-tiny",
    revision: "main",
    embedded: true,
    megabytes: 5,
    saes: SaeRelease {
        label: "random SAE (embedded)",
        repo: "steerlab/gpt2-tiny-saes",
        revision: "main",
        saes: &[("blocks.1.hook_resid_pre", "blocks.1.hook_resid_pre", None)],
        neuronpedia_model: None,
        config_overrides: None,
    },
};

pub const GPT2_SMALL: ModelEntry = ModelEntry {
    id: "gpt2",
    label: "GPT-2 small (124M)",
    repo: "openai-community/gpt2",
    revision: "607a30d783dfa663caf39e06633721c8d4cfcd7e",
    embedded: false,
    megabytes: 552,
    saes: SaeRelease {
        label: "gpt2-small-res-jb (Bloom 2024)",
        repo: "jbloom/GPT2-Small-SAEs-Reformatted",
        revision: "57d08a4fd333fbf18caf3fbea63ceeb88e2f50d9",
        saes: &[
            ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_pre", Some("0-res-jb")),
            ("blocks.1.hook_resid_pre", "blocks.1.hook_resid_pre", Some("1-res-jb")),
            ("blocks.2.hook_resid_pre", "blocks.2.hook_resid_pre", Some("2-res-jb")),
            ("blocks.3.hook_resid_pre", "blocks.3.hook_resid_pre", Some("3-res-jb")),
            ("blocks.4.hook_resid_pre", "blocks.4.hook_resid_pre", Some("4-res-jb")),
            ("blocks.5.hook_resid_pre", "blocks.5.hook_resid_pre", Some("5-res-jb")),
            ("blocks.6.hook_resid_pre", "blocks.6.hook_resid_pre", Some("6-res-jb")),
            ("blocks.7.hook_resid_pre", "blocks.7.hook_resid_pre", Some("7-res-jb")),
            ("blocks.8.hook_resid_pre", "blocks.8.hook_resid_pre", Some("8-res-jb")),
            ("blocks.9.hook_resid_pre", "blocks.9.hook_resid_pre", Some("9-res-jb")),
            ("blocks.10.hook_resid_pre", "blocks.10.hook_resid_pre", Some("10-res-jb")),
            ("blocks.11.hook_resid_pre", "blocks.11.hook_resid_pre", Some("11-res-jb")),
            ("blocks.11.hook_resid_post", "blocks.11.hook_resid_post", Some("12-res-jb")),
        ],
        neuronpedia_model: Some("gpt2-small"),
        // Trained on TransformerLens's GPT-2 with centred writing weights (SAELens's override for this release).
        config_overrides: Some(r#"{"model_from_pretrained_kwargs":{"center_writing_weights":true}}"#),
    },
};

pub const PYTHIA_70M_DEDUPED: ModelEntry = ModelEntry {
    id: "pythia-70m-deduped",
    label: "Pythia-70M-deduped",
    repo: "EleutherAI/pythia-70m-deduped",
    // The final checkpoint; its commit hash could not be looked up offline when this entry was written, so the
    // branch is named (the page lets a user pin another revision).
    revision: "main",
    embedded: false,
    megabytes: 169,
    saes: SaeRelease {
        label: "pythia-70m-deduped-res-sm (Marks et al. 2024)",
        repo: "ctigges/pythia-70m-deduped__res-sm_processed",
        revision: "main",
        saes: &[
            ("blocks.0.hook_resid_pre", "e-res-sm", Some("e-att-sm")),
            ("blocks.0.hook_resid_post", "0-res-sm", Some("0-res-sm")),
            ("blocks.1.hook_resid_post", "1-res-sm", Some("1-res-sm")),
            ("blocks.2.hook_resid_post", "2-res-sm", Some("2-res-sm")),
            ("blocks.3.hook_resid_post", "3-res-sm", Some("3-res-sm")),
            ("blocks.4.hook_resid_post", "4-res-sm", Some("4-res-sm")),
            ("blocks.5.hook_resid_post", "5-res-sm", Some("5-res-sm")),
        ],
        neuronpedia_model: Some("pythia-70m-deduped"),
        config_overrides: None,
    },
};

pub const MODELS: [ModelEntry; 3] = [EMBEDDED, GPT2_SMALL, PYTHIA_70M_DEDUPED];

pub fn model(id: &str) -> Option<&'static ModelEntry> {
    MODELS.iter().find(|m| m.id == id)
}

/// The catalogue's SAE release stored in hub repository `repo` (a helper SAE named `owner/name@rev/folder`).
pub fn release_of_repo(repo: &str) -> Option<&'static SaeRelease> {
    MODELS.iter().map(|m| &m.saes).find(|r| !r.repo.is_empty() && r.repo == repo)
}

/// Neuronpedia's `model/source` for each Gemma Scope residual SAE it shows: `repo \t folder \t id` lines, from
/// sae-lens's table (`scripts/make_gemma_scope_links.py`).
const GEMMA_SCOPE_NEURONPEDIA: &str = include_str!("gemma_scope_neuronpedia.tsv");

/// Neuronpedia's page for `feature` of a helper SAE named `[dir/]owner/repo@rev/folder` (the helper's names for
/// hub-cache folders), when Neuronpedia shows that SAE: a catalogue release by hook, or a Gemma Scope SAE by folder.
pub fn helper_sae_neuronpedia(name: &str, hook: &str, feature: usize) -> Option<String> {
    let (before, after) = name.split_once('@')?;
    let mut tail = before.rsplit('/');
    let (name_part, owner) = (tail.next()?, tail.next()?);
    let repo = format!("{owner}/{name_part}");
    if let Some(release) = release_of_repo(&repo) {
        return release.neuronpedia(hook, feature);
    }
    let folder = after.split_once('/')?.1.trim_end_matches('/');
    let id = GEMMA_SCOPE_NEURONPEDIA.lines().find_map(|line| {
        let mut cols = line.split('\t');
        (cols.next() == Some(repo.as_str()) && cols.next() == Some(folder)).then(|| cols.next()).flatten()
    })?;
    Some(format!("https://www.neuronpedia.org/{id}/{feature}"))
}

impl SaeRelease {
    /// The folder of the SAE reading `hook`.
    pub fn folder(&self, hook: &str) -> Option<&'static str> {
        self.saes.iter().find(|s| s.0 == hook).map(|s| s.1)
    }

    /// Neuronpedia's page for `feature` of the SAE at `hook`, when it has one.
    pub fn neuronpedia(&self, hook: &str, feature: usize) -> Option<String> {
        let model = self.neuronpedia_model?;
        let source = self.saes.iter().find(|s| s.0 == hook)?.2?;
        Some(format!("https://www.neuronpedia.org/{model}/{source}/{feature}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_consistent() {
        for m in MODELS {
            assert_eq!(model(m.id), Some(&m));
            assert!(!m.saes.saes.is_empty(), "{} has no SAE", m.id);
            if !m.embedded {
                assert!(m.repo.contains('/') && m.saes.repo.contains('/'));
            }
            if let Some(o) = m.saes.config_overrides {
                assert!(serde_json::from_str::<serde_json::Value>(o).unwrap().is_object());
            }
        }
        assert_eq!(model("nope"), None);
    }

    #[test]
    fn neuronpedia_links() {
        assert_eq!(
            GPT2_SMALL.saes.neuronpedia("blocks.8.hook_resid_pre", 1234).as_deref(),
            Some("https://www.neuronpedia.org/gpt2-small/8-res-jb/1234")
        );
        assert_eq!(PYTHIA_70M_DEDUPED.saes.folder("blocks.3.hook_resid_post"), Some("3-res-sm"));
        assert_eq!(EMBEDDED.saes.neuronpedia("blocks.1.hook_resid_pre", 3), None);
        assert_eq!(GPT2_SMALL.saes.neuronpedia("blocks.99.hook_resid_pre", 3), None);
        assert_eq!(release_of_repo("jbloom/GPT2-Small-SAEs-Reformatted"), Some(&GPT2_SMALL.saes));
        assert_eq!(release_of_repo("google/gemma-scope-2b-pt-res"), None);
    }

    #[test]
    fn helper_sae_links() {
        let link = |name: &str, hook: &str| helper_sae_neuronpedia(name, hook, 77);
        assert_eq!(
            link("jbloom/GPT2-Small-SAEs-Reformatted@0123abcd/blocks.8.hook_resid_pre", "blocks.8.hook_resid_pre")
                .as_deref(),
            Some("https://www.neuronpedia.org/gpt2-small/8-res-jb/77")
        );
        // Gemma Scope: the canonical SAE of a layer and width, and another L0 that Neuronpedia also shows.
        let hook = "blocks.12.hook_resid_post";
        assert_eq!(
            link("google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_82", hook).as_deref(),
            Some("https://www.neuronpedia.org/gemma-2-2b/12-gemmascope-res-16k/77")
        );
        assert_eq!(
            link("hub/google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_22", hook).as_deref(),
            Some("https://www.neuronpedia.org/gemma-2-2b/12-gemmascope-res-16k__l0-22/77")
        );
        // Not on Neuronpedia, not a hub folder, or a folder of its own.
        assert_eq!(link("google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_999", hook), None);
        assert_eq!(link("google/gemma-scope-2b-pt-mlp@fedcba98/layer_12/width_16k/average_l0_82", hook), None);
        assert_eq!(link("saes/gemma-scope-res/layer_12/width_16k/average_l0_82", hook), None);
        assert_eq!(link("google/gemma-scope-2b-pt-res@fedcba98", hook), None);
        // Every line of the table has its three columns.
        for line in GEMMA_SCOPE_NEURONPEDIA.lines() {
            let cols: Vec<_> = line.split('\t').collect();
            assert!(cols.len() == 3 && cols[0].starts_with("google/gemma-scope-") && cols[2].contains('/'), "{line}");
        }
    }
}
