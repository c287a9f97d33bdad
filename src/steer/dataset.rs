//! Contrastive prompt pairs: JSONL lines `{"positive": ..., "negative": ...}`, each text read at its
//! last token.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContrastivePair {
    pub positive: String,
    pub negative: String,
}

/// Parses JSONL pairs; blank lines are skipped; `file` names the dataset in errors.
pub fn parse_pairs(text: &str, file: &str) -> Result<Vec<ContrastivePair>> {
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let pair: ContrastivePair = serde_json::from_str(line).map_err(|e| {
            Error::file(file, format!("line {}: expected {{\"positive\": ..., \"negative\": ...}}: {e}", i + 1))
        })?;
        if pair.positive.is_empty() || pair.negative.is_empty() {
            return Err(Error::file(file, format!("line {}: empty positive or negative text", i + 1)));
        }
        pairs.push(pair);
    }
    if pairs.is_empty() {
        return Err(Error::file(file, "no contrastive pairs: the dataset is empty"));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_lines() {
        let pairs = parse_pairs("{\"positive\":\"a\",\"negative\":\"b\"}\n\n", "d.jsonl").unwrap();
        assert_eq!(pairs, vec![ContrastivePair { positive: "a".into(), negative: "b".into() }]);
        let e = parse_pairs("{\"positive\":\"a\",\"negative\":\"b\"}\n{\"positive\":\"a\"}", "d.jsonl").unwrap_err();
        assert!(e.to_string().starts_with("d.jsonl: line 2: expected"), "{e}");
        assert_eq!(
            parse_pairs("\n", "d.jsonl").unwrap_err().to_string(),
            "d.jsonl: no contrastive pairs: the dataset is empty"
        );
    }
}
