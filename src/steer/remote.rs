//! Real data too large to ship, fetched at pinned commits (a raw file at a commit never changes): Rimsky et al.'s
//! CAA A/B sets for their seven behaviours (each behaviour's generate set builds the vector, its test set measures
//! it, as in the paper) and a background corpus of about 280k GPT-2 tokens (WikiText-2's test split, CC BY-SA).
//! The CLI (`steerlab fetch-data`) keeps them in a cache folder; the lab in the browser's Cache Storage.

use crate::error::{Error, Result};

/// Where raw files are served: `{base}/{repo}/{commit}/{path}`.
pub const RAW_BASE: &str = "https://raw.githubusercontent.com";

/// The largest file fetched (the largest here is about 1.5 MB).
pub const MAX_REMOTE_BYTES: u64 = 32 << 20;

/// One file of a repository at a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    pub repo: &'static str,
    pub commit: &'static str,
    pub path: &'static str,
}

impl RemoteFile {
    /// Its URL under `base` (a mirror of `RAW_BASE`; a trailing `/` is fine).
    pub fn url(&self, base: &str) -> String {
        format!("{}/{}/{}/{}", base.trim_end_matches('/'), self.repo, self.commit, self.path)
    }

    /// Where a cache keeps it, relative to the cache folder: `repo/commit/path`.
    pub fn cache_path(&self) -> String {
        format!("{}/{}/{}", self.repo, self.commit, self.path)
    }
}

/// One of Rimsky et al.'s behaviours: A/B items to build the vector from and held-out ones to measure it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    pub name: &'static str,
    pub label: &'static str,
    pub train: RemoteFile,
    pub test: RemoteFile,
}

const CAA_REPO: &str = "nrimsky/CAA";

const fn caa(
    name: &'static str,
    label: &'static str,
    train: (&'static str, &'static str),
    test: (&'static str, &'static str),
) -> Behaviour {
    Behaviour {
        name,
        label,
        train: RemoteFile { repo: CAA_REPO, commit: train.0, path: train.1 },
        test: RemoteFile { repo: CAA_REPO, commit: test.0, path: test.1 },
    }
}

const C1: &str = "8900aed8b2d828095d1ed0e856f59b245e9bb13a";
const C2: &str = "e1fce128b6165a9926093c6abdf6ea9a24f4b5c4";
const C3: &str = "59f33bb3cd9b710ce57693a50a569ef72c4815db";

/// Rimsky et al. 2024's seven behaviours (github.com/nrimsky/CAA, datasets/generate and datasets/test).
pub const CAA_BEHAVIOURS: [Behaviour; 7] = [
    caa(
        "sycophancy",
        "sycophancy",
        (C3, "datasets/generate/sycophancy/generate_dataset.json"),
        (C2, "datasets/test/sycophancy/test_dataset_ab.json"),
    ),
    caa(
        "hallucination",
        "hallucination",
        (C1, "datasets/generate/hallucination/generate_dataset.json"),
        (C1, "datasets/test/hallucination/test_dataset_ab.json"),
    ),
    caa(
        "refusal",
        "refusal",
        (C2, "datasets/generate/refusal/generate_dataset.json"),
        (C2, "datasets/test/refusal/test_dataset_ab.json"),
    ),
    caa(
        "survival-instinct",
        "survival instinct",
        (C1, "datasets/generate/survival-instinct/generate_dataset.json"),
        (C1, "datasets/test/survival-instinct/test_dataset_ab.json"),
    ),
    caa(
        "myopic-reward",
        "myopic reward",
        (C2, "datasets/generate/myopic-reward/generate_dataset.json"),
        (C2, "datasets/test/myopic-reward/test_dataset_ab.json"),
    ),
    caa(
        "corrigible-neutral-HHH",
        "corrigibility",
        (C1, "datasets/generate/corrigible-neutral-HHH/generate_dataset.json"),
        (C2, "datasets/test/corrigible-neutral-HHH/test_dataset_ab.json"),
    ),
    caa(
        "coordinate-other-ais",
        "coordination with other AIs",
        (C1, "datasets/generate/coordinate-other-ais/generate_dataset.json"),
        (C2, "datasets/test/coordinate-other-ais/test_dataset_ab.json"),
    ),
];

/// WikiText-2's test split (Merity et al. 2016; CC BY-SA 3.0), as PyTorch's examples keep it.
pub const WIKITEXT: RemoteFile = RemoteFile {
    repo: "pytorch/examples",
    commit: "cada773327ba94a5970e0d57c17c847d69dbbb8f",
    path: "word_language_model/data/wikitext-2/test.txt",
};

/// The name `fetch-data` and the lab use for the corpus.
pub const WIKITEXT_NAME: &str = "wikitext-2";

/// A behaviour by name (`sycophancy`, or `caa/sycophancy`), naming the others when there is none.
pub fn behaviour(name: &str) -> Result<&'static Behaviour> {
    let name = name.strip_prefix("caa/").unwrap_or(name);
    CAA_BEHAVIOURS.iter().find(|b| b.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
        let names: Vec<String> = CAA_BEHAVIOURS.iter().map(|b| format!("caa/{}", b.name)).collect();
        Error::invalid(format!("no dataset \"{name}\": there are {} and {WIKITEXT_NAME}", names.join(", ")))
    })
}

/// WikiText's tokenised text as plain passages, one a line: section headings (`= Title =`) and blank lines
/// dropped, its ` @-@ `, ` @,@ `, ` @.@ ` joins undone and the spaces it puts before punctuation and inside
/// brackets and contractions removed, so the model reads ordinary prose. WikiText-2 replaced its rarest words
/// with `<unk>`; those markers are dropped (the words they stood for are not in the file).
pub fn wikitext_passages(text: &str) -> String {
    const JOINS: [(&str, &str); 18] = [
        (" <unk>", ""),
        (" 't", "'t"),
        (" @-@ ", "-"),
        (" @,@ ", ","),
        (" @.@ ", "."),
        (" , ", ", "),
        (" . ", ". "),
        (" : ", ": "),
        (" ; ", "; "),
        (" ! ", "! "),
        (" ? ", "? "),
        (" 's", "'s"),
        (" n't", "n't"),
        (" 're", "'re"),
        (" 've", "'ve"),
        (" 'll", "'ll"),
        ("( ", "("),
        (" )", ")"),
    ];
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('=')) {
        let mut p = format!(" {line} ");
        // Twice: each pass may leave a neighbour of what it joined.
        for _ in 0..2 {
            for (from, to) in JOINS {
                p = p.replace(from, to);
            }
        }
        let p = p.trim();
        let p = p.strip_suffix(" .").map_or_else(|| p.to_string(), |s| format!("{s}."));
        out.push_str(&p);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_names_and_passages() {
        let b = behaviour("caa/sycophancy").unwrap();
        assert_eq!(
            b.test.url("http://mirror/"),
            "http://mirror/nrimsky/CAA/e1fce128b6165a9926093c6abdf6ea9a24f4b5c4/datasets/test/sycophancy/test_dataset_ab.json"
        );
        assert_eq!(behaviour("Refusal").unwrap().name, "refusal");
        let e = behaviour("honesty").unwrap_err().to_string();
        assert!(e.contains("no dataset \"honesty\"") && e.contains("caa/myopic-reward") && e.contains("wikitext-2"));
        assert!(CAA_BEHAVIOURS.iter().all(|b| b.train.commit.len() == 40 && b.test.path.ends_with("_ab.json")));

        let raw = " = Robert <unk> = \n \n Robert <unk> is an English film , television and theatre actor . He had a \
                   guest @-@ starring role in 2000 ( a play ) and wasn 't 1 @,@ 000 @.@ 5 years old .\n = = Career = = \n";
        assert_eq!(
            wikitext_passages(raw),
            "Robert is an English film, television and theatre actor. He had a guest-starring role in 2000 (a play) \
             and wasn't 1,000.5 years old.\n"
        );
    }
}
