//! SAELens release ids: `gpt2-small-res-jb/blocks.6.hook_resid_pre` names a folder of a hub repository, as
//! `SAE.from_pretrained(release, sae_id)` reads it. The table is the part of sae-lens's `pretrained_saes.yaml` that
//! steerlab can run (`saelens_releases.tsv`, from `scripts/make_saelens_releases.py`): residual-stream SAEs of
//! GPT-2 small, Pythia-70M-deduped and Gemma-2, in the SAELens or Gemma Scope format. The CLI, the helper and the
//! lab all resolve ids here, and take each release's config overrides and Neuronpedia ids from it.

use std::sync::OnceLock;

const TABLE: &str = include_str!("saelens_releases.tsv");

/// How a release's folders hold their SAE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `cfg.json` + `sae_weights.safetensors`.
    SaeLens,
    /// Gemma Scope's `params.npz`.
    GemmaScope,
}

impl Format {
    /// The files of one SAE folder.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Self::SaeLens => &["cfg.json", "sae_weights.safetensors"],
            Self::GemmaScope => &["params.npz"],
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct Release {
    pub id: &'static str,
    /// SAELens's name for the model (`gpt2-small`); [`model_repo`] gives its hub repository.
    pub model: &'static str,
    pub repo: &'static str,
    pub format: Format,
    /// A JSON object merged into each `cfg.json` before it is read (SAELens's `config_overrides`).
    pub config_overrides: Option<&'static str>,
    pub saes: Vec<ReleaseSae>,
}

#[derive(Debug, PartialEq)]
pub struct ReleaseSae {
    pub id: &'static str,
    /// The TransformerLens hook it reads.
    pub hook: &'static str,
    /// Its folder in the release's repository.
    pub path: &'static str,
    /// Neuronpedia's `model/source` for it.
    pub neuronpedia: Option<&'static str>,
}

impl Release {
    pub fn sae(&self, id: &str) -> Option<&ReleaseSae> {
        self.saes.iter().find(|s| s.id == id)
    }

    /// The paths in the repository of `sae`'s files.
    pub fn files_of(&self, sae: &ReleaseSae) -> Vec<String> {
        self.format.files().iter().map(|f| format!("{}/{f}", sae.path)).collect()
    }
}

impl ReleaseSae {
    /// Neuronpedia's page for `feature` of this SAE.
    pub fn neuronpedia_url(&self, feature: usize) -> Option<String> {
        self.neuronpedia.map(|id| format!("https://www.neuronpedia.org/{id}/{feature}"))
    }
}

/// Every release in the table, parsed once.
pub fn releases() -> &'static [Release] {
    static PARSED: OnceLock<Vec<Release>> = OnceLock::new();
    PARSED.get_or_init(|| parse(TABLE).expect("the bundled SAELens table parses (checked by its test)"))
}

pub fn release(id: &str) -> Option<&'static Release> {
    releases().iter().find(|r| r.id == id)
}

/// The hub repository of SAELens's model name, for the models the table covers.
pub fn model_repo(saelens_model: &str) -> Option<&'static str> {
    Some(match saelens_model {
        "gpt2-small" => "openai-community/gpt2",
        "pythia-70m-deduped" => "EleutherAI/pythia-70m-deduped",
        "gemma-2-2b" => "google/gemma-2-2b",
        "gemma-2-9b" => "google/gemma-2-9b",
        "gemma-2-27b" => "google/gemma-2-27b",
        _ => return None,
    })
}

/// Whether `name` has the shape of a release id, `release/sae_id` with a release name SAELens could use (as
/// opposed to a file path: no leading `.` or `/`, no `\`), so that a missing folder and a mistyped id get different
/// errors.
pub fn looks_like_id(name: &str) -> bool {
    let Some((release, sae)) = name.split_once('/') else { return false };
    !release.is_empty()
        && !sae.is_empty()
        && !release.starts_with('.')
        && release.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.contains('\\')
}

/// `release/sae_id` (SAE ids may hold `/`, release ids never do), or an error naming the closest ids.
pub fn resolve(name: &str) -> Result<(&'static Release, &'static ReleaseSae), String> {
    let (release_id, sae_id) = name.split_once('/').unwrap_or((name, ""));
    let Some(release) = release(release_id) else {
        let ids: Vec<&str> = releases().iter().map(|r| r.id).collect();
        return Err(format!(
            "\"{release_id}\" is not a SAELens release steerlab knows{}; `steerlab saes` lists them all",
            close(release_id, &ids)
        ));
    };
    if sae_id.is_empty() {
        let some: Vec<&str> = release.saes.iter().take(4).map(|s| s.id).collect();
        return Err(format!(
            "name one of {release_id}'s SAEs as {release_id}/SAE_ID, e.g. {release_id}/{}",
            some.join(format!(", {release_id}/").as_str())
        ));
    }
    match release.sae(sae_id) {
        Some(sae) => Ok((release, sae)),
        None => {
            let ids: Vec<&str> = release.saes.iter().map(|s| s.id).collect();
            Err(format!(
                "release {release_id} has no SAE \"{sae_id}\"{}; `steerlab saes {release_id}` lists its {}",
                close(sae_id, &ids),
                ids.len()
            ))
        }
    }
}

/// The release and SAE stored in `repo`'s folder `path` (a helper's hub-cache folder, a catalogue entry). Releases
/// sharing a folder (Gemma Scope's canonical ids) agree on everything but the id; the first is returned.
pub fn by_folder(repo: &str, path: &str) -> Option<(&'static Release, &'static ReleaseSae)> {
    let path = path.trim_matches('/');
    releases().iter().filter(|r| r.repo == repo).find_map(|r| r.saes.iter().find(|s| s.path == path).map(|s| (r, s)))
}

/// The release folder a local directory is, when it sits in a Hugging Face hub cache
/// (`…/models--owner--name/snapshots/REV/path`).
pub fn by_cache_dir(dir: &std::path::Path) -> Option<(&'static Release, &'static ReleaseSae)> {
    let parts: Vec<String> = dir.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let i = parts.windows(2).rposition(|w| w[0].starts_with("models--") && w[1] == "snapshots")?;
    let repo = parts[i].strip_prefix("models--")?.replacen("--", "/", 1);
    let path = parts.get(i + 3..).filter(|p| !p.is_empty())?.join("/");
    // A Gemma Scope SAE may be named by its params.npz.
    by_folder(&repo, path.strip_suffix("/params.npz").unwrap_or(&path))
}

/// ", did you mean a, b or c?" for the ids nearest to `wanted` (edit distance, with ids containing it first).
fn close(wanted: &str, ids: &[&str]) -> String {
    let lower = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = ids
        .iter()
        .map(|id| {
            let contains = !lower.is_empty() && id.to_ascii_lowercase().contains(&lower);
            (if contains { 0 } else { edit_distance(&lower, &id.to_ascii_lowercase()) }, *id)
        })
        .collect();
    scored.sort();
    let limit = (wanted.chars().count() / 4).max(3);
    let near: Vec<&str> = scored.iter().filter(|(d, _)| *d <= limit).take(4).map(|(_, id)| *id).collect();
    match near.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        [init @ .., last] => format!(" (did you mean {} or {last}?)", init.join(", ")),
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `release` lines (id, model, repo, format, overrides or `-`), each followed by its `sae` lines (id, hook,
/// path, Neuronpedia id or `-`); `#` lines are comments.
fn parse(text: &'static str) -> Result<Vec<Release>, String> {
    let opt = |s: &'static str| (s != "-").then_some(s);
    let mut out: Vec<Release> = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
        let cols: Vec<&'static str> = line.split('\t').collect();
        match cols.as_slice() {
            ["release", id, model, repo, format, overrides] => out.push(Release {
                id,
                model,
                repo,
                format: match *format {
                    "saelens" => Format::SaeLens,
                    "gemma_scope" => Format::GemmaScope,
                    other => return Err(format!("line {}: unknown format {other}", n + 1)),
                },
                config_overrides: opt(overrides),
                saes: vec![],
            }),
            ["sae", id, hook, path, neuronpedia] => {
                let release = out.last_mut().ok_or(format!("line {}: an SAE before any release", n + 1))?;
                release.saes.push(ReleaseSae { id, hook, path, neuronpedia: opt(neuronpedia) });
            }
            _ => return Err(format!("line {}: {line:?} is neither a release nor an SAE line", n + 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub_names::{check_file_path, check_repo};
    use crate::model::hooks::HookPoint;

    #[test]
    fn the_bundled_table_is_whole_and_well_formed() {
        let all = parse(TABLE).unwrap();
        assert!(all.len() >= 10);
        for r in &all {
            check_repo(r.repo).unwrap();
            assert!(model_repo(r.model).is_some(), "{}: model {}", r.id, r.model);
            assert!(!r.saes.is_empty() && !r.id.contains('/'), "{}", r.id);
            if let Some(o) = r.config_overrides {
                assert!(serde_json::from_str::<serde_json::Value>(o).unwrap().is_object(), "{}", r.id);
            }
            for s in &r.saes {
                check_file_path(s.path).unwrap();
                HookPoint::parse(s.hook, 64).unwrap();
                assert_eq!(r.saes.iter().filter(|t| t.id == s.id).count(), 1, "{}/{} twice", r.id, s.id);
            }
        }
        // Spot checks against sae-lens's yaml.
        let (r, s) = resolve("gpt2-small-res-jb/blocks.6.hook_resid_pre").unwrap();
        assert_eq!(
            (r.repo, r.model, s.path, s.hook),
            ("jbloom/GPT2-Small-SAEs-Reformatted", "gpt2-small", "blocks.6.hook_resid_pre", "blocks.6.hook_resid_pre")
        );
        assert_eq!(s.neuronpedia_url(12).as_deref(), Some("https://www.neuronpedia.org/gpt2-small/6-res-jb/12"));
        assert!(r.config_overrides.unwrap().contains("\"center_writing_weights\":true"));
        let (r, s) = resolve("pythia-70m-deduped-res-sm/blocks.0.hook_resid_pre").unwrap();
        assert_eq!(
            (r.repo, s.path, s.neuronpedia),
            ("ctigges/pythia-70m-deduped__res-sm_processed", "e-res-sm", Some("pythia-70m-deduped/e-att-sm"))
        );
        let (r, s) = resolve("gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical").unwrap();
        assert_eq!(
            (r.format, s.hook, s.path),
            (Format::GemmaScope, "blocks.12.hook_resid_post", "layer_12/width_16k/average_l0_82")
        );
        assert_eq!(s.neuronpedia, Some("gemma-2-2b/12-gemmascope-res-16k"));
        // The same folder under its non-canonical id links to the canonical page.
        let (_, twin) = resolve("gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82").unwrap();
        assert_eq!(twin.neuronpedia, s.neuronpedia);
    }

    #[test]
    fn unknown_ids_name_the_closest() {
        let e = resolve("gpt2-small-res-jbb/blocks.6.hook_resid_pre").unwrap_err();
        assert!(e.contains("did you mean gpt2-small-res-jb") && e.contains("steerlab saes"), "{e}");
        let e = resolve("gpt2-small-res-jb/blocks.6.hook_resid_pr").unwrap_err();
        assert!(e.contains("has no SAE") && e.contains("blocks.6.hook_resid_pre"), "{e}");
        let e = resolve("gpt2-small-res-jb/blocks.60.hook_resid_pre").unwrap_err();
        assert!(e.contains("blocks.6.hook_resid_pre") || e.contains("blocks.0.hook_resid_pre"), "{e}");
        let e = resolve("gpt2-small-res-jb").unwrap_err();
        assert!(e.contains("gpt2-small-res-jb/blocks.0.hook_resid_pre"), "{e}");
        let e = resolve("zzzzzzzzzzzzzzzzzzzzzzzzz/x").unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
        assert!(looks_like_id("gpt2-small-res-jb/blocks.6.hook_resid_pre"));
        assert!(!looks_like_id("./saes/x") && !looks_like_id("/abs/x") && !looks_like_id("plain"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn hub_cache_folders_are_found() {
        let dir = std::path::Path::new(
            "/home/u/.cache/huggingface/hub/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots/57d08a4f/blocks.8.hook_resid_pre",
        );
        let (r, s) = by_cache_dir(dir).unwrap();
        assert_eq!((r.id, s.id), ("gpt2-small-res-jb", "blocks.8.hook_resid_pre"));
        let npz = std::path::Path::new(
            "hub/models--google--gemma-scope-2b-pt-res/snapshots/abc/layer_20/width_16k/average_l0_71/params.npz",
        );
        assert_eq!(by_cache_dir(npz).unwrap().1.hook, "blocks.20.hook_resid_post");
        assert_eq!(by_cache_dir(std::path::Path::new("saes/blocks.8.hook_resid_pre")), None);
        assert_eq!(
            by_cache_dir(std::path::Path::new("hub/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots/abc")),
            None
        );
    }

    #[test]
    fn malformed_tables_are_errors() {
        assert!(parse("sae\ta\tb\tc\td").unwrap_err().contains("before any release"));
        assert!(parse("release\ta\tb\tc/d\tnope\t-").unwrap_err().contains("unknown format"));
        assert!(parse("what").unwrap_err().contains("neither"));
    }
}
