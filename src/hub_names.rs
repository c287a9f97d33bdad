//! Names on the Hugging Face hub — repositories, revisions, file paths — checked before they become URLs or paths
//! in a cache folder, and percent-encoded in URLs. The CLI's `fetch`, the helper and the browser's downloads (whose
//! revision can come from a shared permalink) all use these.

/// `owner/name` with the hub's characters only.
pub fn check_repo(repo: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok(()),
        _ => Err(format!("\"{repo}\" is not a hub repository name (owner/name)")),
    }
}

/// A branch, tag or commit as the hub names them (`main`, `v1.0`, `refs/pr/3`, a hash). A revision becomes a path
/// under a cache's `refs/`, so nothing that could climb out of it (`..`, a leading `/`, `\`, a drive's `C:`) is
/// taken.
pub fn check_revision(rev: &str) -> Result<(), String> {
    let ok = !rev.is_empty()
        && rev.len() <= 256
        && !rev.starts_with('-')
        && rev.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && rev.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{rev}\" is not a revision: a branch, tag or commit of letters, digits, '-', '_', '.' and '/' between \
             non-empty parts, with no '.' or '..' part"
        ))
    }
}

/// A file's path inside a repository: relative, `/`-separated, with no way out of the snapshot on any system
/// (`..`, absolute paths, `\`, drive prefixes such as `C:`, NTFS streams).
pub fn check_file_path(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains(':')
        || path.chars().any(char::is_control)
        || path.split('/').any(|c| c == ".." || c == "." || c.is_empty());
    if bad { Err(format!("file path {path:?} would leave the snapshot")) } else { Ok(()) }
}

/// Percent-encodes all but unreserved characters (and `/` when `keep_slash`), as huggingface_hub quotes.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{base}/{repo}/resolve/{revision}/{file}`, as the hub serves files, with each part checked and encoded.
pub fn resolve_url(base: &str, repo: &str, revision: &str, file: &str) -> Result<String, String> {
    check_repo(repo)?;
    check_revision(revision)?;
    check_file_path(file)?;
    Ok(format!("{}/{repo}/resolve/{}/{}", base.trim_end_matches('/'), encode(revision, false), encode(file, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_encoded() {
        assert_eq!(
            resolve_url("https://hf.co/", "a/b", "refs/pr/3", "layer 1/cfg.json").unwrap(),
            "https://hf.co/a/b/resolve/refs%2Fpr%2F3/layer%201/cfg.json"
        );
        assert_eq!(resolve_url("hub", "a/b", "main", "config.json").unwrap(), "hub/a/b/resolve/main/config.json");
        for rev in ["../../x", "/etc", "a//b", "C:evil", "-x", "a/./b", "main?x=1", "main#top", ""] {
            assert!(check_revision(rev).unwrap_err().contains("is not a revision"), "{rev}");
        }
        for rev in ["main", "v1.0", "refs/pr/3", "0123456789abcdef0123456789abcdef01234567"] {
            check_revision(rev).unwrap();
        }
        for path in ["../x", "/x", "a\\b", "C:/x", "a//b", "a/./b", "x\n"] {
            assert!(check_file_path(path).is_err(), "{path}");
        }
        assert!(check_repo("../etc").is_err() && check_repo("a/b/c").is_err() && check_repo("a/b").is_ok());
    }
}
