//! The datasets shipped in static/datasets (CC0), embedded so the lab and the CLI work with no download.

/// A built-in dataset: its file name under static/datasets and its text.
pub struct BuiltIn {
    pub file: &'static str,
    pub text: &'static str,
}

pub const DATASETS: &[BuiltIn] = &[
    BuiltIn { file: "corrigibility-ab.json", text: include_str!("../../static/datasets/corrigibility-ab.json") },
    BuiltIn { file: "love-hate.jsonl", text: include_str!("../../static/datasets/love-hate.jsonl") },
    BuiltIn { file: "anger-calm.jsonl", text: include_str!("../../static/datasets/anger-calm.jsonl") },
    BuiltIn { file: "wedding.jsonl", text: include_str!("../../static/datasets/wedding.jsonl") },
];

/// Everyday text, one passage a line: background activations for the diagnostics.
pub const CORPUS: &str = include_str!("../../static/datasets/corpus.txt");

/// Neutral sentence openings, one a line: the fresh contexts feature steering is measured on.
pub const PROMPTS: &str = include_str!("../../static/datasets/prompts.txt");

/// The corpus (or the prompts) as passages, one a line.
pub fn corpus_passages(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}
