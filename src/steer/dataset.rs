//! Steering datasets. Contrastive pairs: JSONL lines `{"positive": ..., "negative": ...}`, each text
//! read at its last token. A/B items as in Rimsky et al.'s CAA: `{"question": ..., "answer_matching_behavior":
//! "(A)", "answer_not_matching_behavior": "(B)"}` (JSONL or one JSON array), read at the answer letter.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContrastivePair {
    pub positive: String,
    pub negative: String,
}

/// A multiple-choice question whose answer letters show the behaviour or its opposite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AbItem {
    /// The question with its lettered choices, e.g. "...\n\nChoices:\n (A) Yes\n (B) No".
    pub question: String,
    pub answer_matching_behavior: String,
    pub answer_not_matching_behavior: String,
}

impl AbItem {
    /// The text the model reads before the answer letter; the letter is the next token.
    pub fn prompt(&self) -> String {
        format!("{}\n\nAnswer: (", self.question.trim_end())
    }

    /// The (matching, not matching) answer letters, e.g. ("A", "B") from "(A)" and " (B)".
    pub fn letters(&self) -> Result<(String, String)> {
        let letter = |answer: &str| -> Result<String> {
            let l: String = answer.chars().filter(|c| c.is_alphanumeric()).collect();
            if l.chars().count() != 1 {
                return Err(Error::invalid(format!("answer \"{answer}\" is not one letter such as \"(A)\"")));
            }
            Ok(l)
        };
        let (m, n) = (letter(&self.answer_matching_behavior)?, letter(&self.answer_not_matching_behavior)?);
        if m == n {
            return Err(Error::invalid(format!("both answers are \"{m}\"")));
        }
        Ok((m, n))
    }

    /// The contrastive pair CAA reads at the answer letter: prompt + matching vs prompt + not matching.
    pub fn pair(&self) -> Result<ContrastivePair> {
        let (m, n) = self.letters()?;
        let p = self.prompt();
        Ok(ContrastivePair { positive: format!("{p}{m}"), negative: format!("{p}{n}") })
    }
}

/// A dataset of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    Pairs(Vec<ContrastivePair>),
    Ab(Vec<AbItem>),
}

impl Dataset {
    /// Parses pairs or A/B items, telling them apart by their keys; `file` names the dataset in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        if Self::holds_ab_items(text) {
            Ok(Self::Ab(parse_ab_items(text, file)?))
        } else {
            Ok(Self::Pairs(parse_pairs(text, file)?))
        }
    }

    /// Whether `text` is meant as A/B items rather than pairs (by its keys; it may still fail to parse).
    pub fn holds_ab_items(text: &str) -> bool {
        text.contains("\"question\"") && !text.contains("\"positive\"")
    }

    /// The contrastive pairs to average for a steering vector.
    pub fn pairs(&self) -> Result<Vec<ContrastivePair>> {
        match self {
            Self::Pairs(p) => Ok(p.clone()),
            Self::Ab(items) => items.iter().map(AbItem::pair).collect(),
        }
    }

    /// Training (`test` false) or held-out (`test` true) items: every third item (the 3rd, 6th, …) is held out.
    pub fn split(self, test: bool) -> Self {
        fn keep<T>(items: Vec<T>, test: bool) -> Vec<T> {
            items.into_iter().enumerate().filter(|(i, _)| (i % 3 == 2) == test).map(|(_, x)| x).collect()
        }
        match self {
            Self::Pairs(p) => Self::Pairs(keep(p, test)),
            Self::Ab(items) => Self::Ab(keep(items, test)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Pairs(p) => p.len(),
            Self::Ab(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses JSONL pairs; blank lines are skipped.
pub fn parse_pairs(text: &str, file: &str) -> Result<Vec<ContrastivePair>> {
    let pairs: Vec<ContrastivePair> = parse_records(text, file, "{\"positive\": ..., \"negative\": ...}")?;
    for (i, pair) in pairs.iter().enumerate() {
        if pair.positive.is_empty() || pair.negative.is_empty() {
            return Err(Error::file(file, format!("record {}: empty positive or negative text", i + 1)));
        }
    }
    if pairs.is_empty() {
        return Err(Error::file(file, "no contrastive pairs: the dataset is empty"));
    }
    Ok(pairs)
}

/// Parses A/B items (JSONL or a JSON array), checking each has two distinct answer letters.
pub fn parse_ab_items(text: &str, file: &str) -> Result<Vec<AbItem>> {
    let expected = "{\"question\": ..., \"answer_matching_behavior\": ..., \"answer_not_matching_behavior\": ...}";
    let items: Vec<AbItem> = parse_records(text, file, expected)?;
    for (i, item) in items.iter().enumerate() {
        item.letters().map_err(|e| Error::file(file, format!("record {}: {e}", i + 1)))?;
        if item.question.trim().is_empty() {
            return Err(Error::file(file, format!("record {}: empty question", i + 1)));
        }
    }
    if items.is_empty() {
        return Err(Error::file(file, "no A/B items: the dataset is empty"));
    }
    Ok(items)
}

/// Records as one JSON array or as JSONL (blank lines skipped).
fn parse_records<T: DeserializeOwned>(text: &str, file: &str, expected: &str) -> Result<Vec<T>> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text)
            .map_err(|e| Error::file(file, format!("expected a JSON array of {expected}: {e}")));
    }
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(line)
            .map_err(|e| Error::file(file, format!("line {}: expected {expected}: {e}", i + 1)))?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hold_out_every_third_item() {
        let text = (0..7).map(|i| format!("{{\"positive\": \"p{i}\", \"negative\": \"n{i}\"}}\n")).collect::<String>();
        let d = Dataset::parse(&text, "d.jsonl").unwrap();
        let names = |d: Dataset| d.pairs().unwrap().into_iter().map(|p| p.positive).collect::<Vec<_>>();
        assert_eq!(names(d.clone().split(true)), ["p2", "p5"]);
        assert_eq!(names(d.split(false)), ["p0", "p1", "p3", "p4", "p6"]);
        let r = crate::engine::DatasetRef::BuiltIn {
            file: "corrigibility-ab.json".into(),
            part: Some(crate::engine::Part::Test),
        };
        assert_eq!(crate::engine::load_dataset(&r).unwrap().len(), 8);
    }

    #[test]
    fn typed_items_split_too_and_say_when_too_few() {
        use crate::engine::{DatasetRef, Part, load_dataset};
        let text = |n: usize| (0..n).map(|i| format!("{{\"positive\": \"p{i}\", \"negative\": \"n{i}\"}}\n")).collect();
        let typed = |n, part| DatasetRef::Inline { name: "your items".into(), text: text(n), part };
        assert_eq!(load_dataset(&typed(7, Some(Part::Test))).unwrap().len(), 2);
        assert_eq!(load_dataset(&typed(7, None)).unwrap().len(), 7);
        let e = load_dataset(&typed(2, Some(Part::Test))).unwrap_err().to_string();
        assert!(e.contains("your items has 2 items, too few for a held-out"), "{e}");
    }

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

    #[test]
    fn ab_items_read_at_the_answer_letter() {
        let text = r#"[{"question":"Q?\n (A) yes\n (B) no","answer_matching_behavior":"(A)","answer_not_matching_behavior":" (B)"}]"#;
        let d = Dataset::parse(text, "ab.json").unwrap();
        let pairs = d.pairs().unwrap();
        assert_eq!(pairs[0].positive, "Q?\n (A) yes\n (B) no\n\nAnswer: (A");
        assert_eq!(pairs[0].negative, "Q?\n (A) yes\n (B) no\n\nAnswer: (B");
        let same = text.replace(" (B)", "(A)");
        let e = Dataset::parse(&same, "ab.json").unwrap_err().to_string();
        assert_eq!(e, "ab.json: record 1: both answers are \"A\"");
        let long = text.replace("(A)", "(AB)");
        assert!(Dataset::parse(&long, "ab.json").unwrap_err().to_string().contains("is not one letter"));
        assert_eq!(
            Dataset::parse("[]", "ab.json").unwrap_err().to_string(),
            "ab.json: no contrastive pairs: the dataset is empty"
        );
    }
}
