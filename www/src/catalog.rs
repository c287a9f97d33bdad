//! The models and SAEs the lab offers, at pinned hub revisions, and where Neuronpedia shows their features.

use steerlab::sae::releases::{self, Release, ReleaseSae};

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

/// A set of residual-stream SAEs, one folder per hook, at a pinned revision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaeRelease {
    pub label: &'static str,
    pub revision: &'static str,
    pub set: SaeSet,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaeSet {
    /// A release of sae-lens's table (`steerlab::sae::releases`): its repository, folders, hooks, config overrides
    /// and Neuronpedia ids come from there.
    SaeLens(&'static str),
    /// The embedded default's one SAE, served by the site.
    Embedded { repo: &'static str, hook: &'static str },
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
        revision: "main",
        set: SaeSet::Embedded { repo: "steerlab/gpt2-tiny-saes", hook: "blocks.1.hook_resid_pre" },
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
        revision: "57d08a4fd333fbf18caf3fbea63ceeb88e2f50d9",
        set: SaeSet::SaeLens("gpt2-small-res-jb"),
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
        revision: "main",
        set: SaeSet::SaeLens("pythia-70m-deduped-res-sm"),
    },
};

pub const MODELS: [ModelEntry; 3] = [EMBEDDED, GPT2_SMALL, PYTHIA_70M_DEDUPED];

pub fn model(id: &str) -> Option<&'static ModelEntry> {
    MODELS.iter().find(|m| m.id == id)
}

/// Neuronpedia's page for `feature` of a helper SAE named `[dir/]owner/repo@rev/folder` (the helper's names for
/// hub-cache folders), when sae-lens's table gives that folder a Neuronpedia id.
pub fn helper_sae_neuronpedia(name: &str, feature: usize) -> Option<String> {
    let (before, after) = name.split_once('@')?;
    let mut tail = before.rsplit('/');
    let (name_part, owner) = (tail.next()?, tail.next()?);
    let folder = after.split_once('/')?.1;
    releases::by_folder(&format!("{owner}/{name_part}"), folder)?.1.neuronpedia_url(feature)
}

impl SaeRelease {
    fn release(&self) -> Option<&'static Release> {
        match self.set {
            SaeSet::SaeLens(id) => releases::release(id),
            SaeSet::Embedded { .. } => None,
        }
    }

    pub fn repo(&self) -> &'static str {
        match self.set {
            SaeSet::SaeLens(_) => self.release().map_or("", |r| r.repo),
            SaeSet::Embedded { repo, .. } => repo,
        }
    }

    /// The hooks its SAEs read, in the release's order.
    pub fn hooks(&self) -> Vec<&'static str> {
        match (self.set, self.release()) {
            (SaeSet::Embedded { hook, .. }, _) => vec![hook],
            (_, Some(r)) => r.saes.iter().map(|s| s.hook).collect(),
            (_, None) => vec![],
        }
    }

    fn sae(&self, hook: &str) -> Option<&'static ReleaseSae> {
        self.release()?.saes.iter().find(|s| s.hook == hook)
    }

    /// The folder of the SAE reading `hook`.
    pub fn folder(&self, hook: &str) -> Option<&'static str> {
        match self.set {
            SaeSet::Embedded { hook: h, .. } => (h == hook).then_some(h),
            SaeSet::SaeLens(_) => self.sae(hook).map(|s| s.path),
        }
    }

    /// SAELens's id for the SAE reading `hook` (`release/sae_id`).
    pub fn saelens_id(&self, hook: &str) -> Option<String> {
        Some(format!("{}/{}", self.release()?.id, self.sae(hook)?.id))
    }

    pub fn config_overrides(&self) -> Option<&'static str> {
        self.release()?.config_overrides
    }

    /// Neuronpedia's page for `feature` of the SAE at `hook`, when it has one.
    pub fn neuronpedia(&self, hook: &str, feature: usize) -> Option<String> {
        self.sae(hook)?.neuronpedia_url(feature)
    }
}

/// A SAELens id that the page can load: its repository, revision (the catalogue's pin when the catalogue has that
/// release, else `main`), folder and overrides, checked against the model the page has loaded (`model_repo`, a
/// catalogue model's repository, when known).
pub fn page_sae(
    id: &str,
    model_repo: Option<&str>,
) -> Result<(&'static Release, &'static ReleaseSae, &'static str), String> {
    let (release, sae) = releases::resolve(id.trim())?;
    if release.format != releases::Format::SaeLens {
        return Err(format!(
            "{} is a Gemma Scope SAE (params.npz) for {}: Gemma-2 runs in the native helper (Native helper, \
             below), which loads it by this id",
            id.trim(),
            release.model
        ));
    }
    let wants = releases::model_repo(release.model);
    if let (Some(loaded), Some(wants)) = (model_repo, wants)
        && loaded != wants
    {
        return Err(format!(
            "{} reads {} ({wants}); the loaded model is {loaded}: load that model first",
            id.trim(),
            release.model
        ));
    }
    let revision =
        MODELS.iter().map(|m| m.saes).find(|r| r.set == SaeSet::SaeLens(release.id)).map_or("main", |r| r.revision);
    Ok((release, sae, revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_consistent() {
        for m in MODELS {
            assert_eq!(model(m.id), Some(&m));
            assert!(!m.saes.hooks().is_empty(), "{} has no SAE", m.id);
            for hook in m.saes.hooks() {
                assert!(m.saes.folder(hook).is_some(), "{} {hook}", m.id);
            }
            if !m.embedded {
                assert!(m.repo.contains('/') && m.saes.repo().contains('/'));
                // The catalogue's SAEs are SAELens releases of this very model.
                let release = m.saes.release().unwrap();
                assert_eq!(releases::model_repo(release.model), Some(m.repo), "{}", m.id);
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
        assert_eq!(EMBEDDED.saes.folder("blocks.1.hook_resid_pre"), Some("blocks.1.hook_resid_pre"));
        assert_eq!(GPT2_SMALL.saes.neuronpedia("blocks.99.hook_resid_pre", 3), None);
        assert_eq!(
            GPT2_SMALL.saes.saelens_id("blocks.6.hook_resid_pre").as_deref(),
            Some("gpt2-small-res-jb/blocks.6.hook_resid_pre")
        );
        assert!(GPT2_SMALL.saes.config_overrides().unwrap().contains("center_writing_weights"));
        assert_eq!(PYTHIA_70M_DEDUPED.saes.config_overrides(), None);
    }

    #[test]
    fn saelens_ids_for_the_page() {
        let (r, s, rev) =
            page_sae(" gpt2-small-res-jb/blocks.6.hook_resid_pre ", Some("openai-community/gpt2")).unwrap();
        assert_eq!(
            (r.repo, s.path, rev),
            ("jbloom/GPT2-Small-SAEs-Reformatted", "blocks.6.hook_resid_pre", GPT2_SMALL.saes.revision)
        );
        let (_, s, rev) = page_sae("gpt2-small-resid-post-v5-128k/blocks.3.hook_resid_post", None).unwrap();
        assert_eq!((s.path, rev), ("v5_128k_layer_3", "main"));
        let e =
            page_sae("gpt2-small-res-jb/blocks.6.hook_resid_pre", Some("EleutherAI/pythia-70m-deduped")).unwrap_err();
        assert!(e.contains("load that model first"), "{e}");
        let e = page_sae("gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical", None).unwrap_err();
        assert!(e.contains("helper"), "{e}");
        assert!(page_sae("gpt2-small-res-jb/blocks.6.hook_resid", None).unwrap_err().contains("did you mean"));
    }

    #[test]
    fn helper_sae_links() {
        let link = |name: &str| helper_sae_neuronpedia(name, 77);
        assert_eq!(
            link("jbloom/GPT2-Small-SAEs-Reformatted@0123abcd/blocks.8.hook_resid_pre").as_deref(),
            Some("https://www.neuronpedia.org/gpt2-small/8-res-jb/77")
        );
        // Gemma Scope: the canonical SAE of a layer and width, and another L0 that Neuronpedia also shows.
        assert_eq!(
            link("google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_82").as_deref(),
            Some("https://www.neuronpedia.org/gemma-2-2b/12-gemmascope-res-16k/77")
        );
        assert_eq!(
            link("hub/google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_22/").as_deref(),
            Some("https://www.neuronpedia.org/gemma-2-2b/12-gemmascope-res-16k__l0-22/77")
        );
        // Not on Neuronpedia, not a hub folder, or a folder of its own.
        assert_eq!(link("google/gemma-scope-2b-pt-res@fedcba98/layer_12/width_16k/average_l0_999"), None);
        assert_eq!(link("google/gemma-scope-2b-pt-mlp@fedcba98/layer_12/width_16k/average_l0_82"), None);
        assert_eq!(link("saes/gemma-scope-res/layer_12/width_16k/average_l0_82"), None);
        assert_eq!(link("google/gemma-scope-2b-pt-res@fedcba98"), None);
    }
}
