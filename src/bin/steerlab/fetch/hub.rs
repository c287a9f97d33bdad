//! The hub's HTTP API as `steerlab fetch` uses it: a revision's commit and files (with sizes and checksums),
//! and each file's download URL.

use steerlab::error::{Error, Result};
use steerlab::hub_names::{check_file_path, encode};
use ureq::http::StatusCode;

/// How a downloaded file is checked.
pub enum Check {
    /// An LFS file: the sha256 of its bytes.
    Sha256(String),
    /// A plain git file: its git blob id, sha1("blob LEN\0" + bytes).
    GitBlob(String),
}

/// One file of a revision.
pub struct Sibling {
    pub path: String,
    pub size: u64,
    /// The name of its blob in the cache: the sha256 for LFS files, the git blob id otherwise (as huggingface_hub).
    pub oid: String,
    pub check: Check,
}

pub struct Listing {
    /// The revision's full commit hash.
    pub commit: String,
    pub siblings: Vec<Sibling>,
}

pub struct Hub {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
}

impl Hub {
    /// `read_timeout`: how long one read may wait for bytes before the transfer counts as dropped (and resumes).
    pub fn new(endpoint: &str, token: Option<String>, read_timeout: std::time::Duration) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(Error::invalid(format!("the hub address {endpoint} must start with https:// or http://")));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The token goes to the hub itself, not to the storage it redirects large files to.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(std::time::Duration::from_secs(20)))
            .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
            .timeout_per_read(Some(read_timeout))
            .user_agent(concat!("steerlab/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self { agent, endpoint, token })
    }

    /// GET `url` with the token, from byte `from` on when it is not 0. Transport errors are returned as text so the
    /// caller can say what it was doing.
    pub fn get(&self, url: &str, from: u64) -> std::result::Result<ureq::http::Response<ureq::Body>, String> {
        let mut req = self.agent.get(url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        if from > 0 {
            req = req.header("Range", &format!("bytes={from}-"));
        }
        req.call().map_err(|e| e.to_string())
    }

    /// The commit and files of `repo` at `revision`.
    pub fn revision(&self, repo: &str, revision: &str) -> Result<Listing> {
        let url = format!("{}/api/models/{repo}/revision/{}?blobs=true", self.endpoint, encode(revision, false));
        let resp = self.get(&url, 0).map_err(|e| Error::invalid(format!("cannot reach {}: {e}", self.endpoint)))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::invalid(format!(
                "{} has no repository {repo} at revision {revision} (or it is private: set HF_TOKEN)",
                self.endpoint
            )));
        }
        self.check_status(status, repo)?;
        let text = resp
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| Error::invalid(format!("{url}: the listing could not be read: {e}")))?;
        parse_listing(&text).map_err(|m| Error::invalid(format!("{url}: not a hub revision listing: {m}")))
    }

    /// Refuses any answer but success, with what to do about it.
    pub fn check_status(&self, status: StatusCode, repo: &str) -> Result<()> {
        match status.as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(Error::invalid(format!(
                "{repo} is gated or private ({status}): accept its licence on its hub page, then set HF_TOKEN to an \
                 access token ({})",
                if self.token.is_some() { "the token given was refused" } else { "none is set" }
            ))),
            429 => {
                Err(Error::invalid(format!("{}: too many requests (429); wait a minute and run again", self.endpoint)))
            }
            _ => Err(Error::invalid(format!("{} answered {status} for {repo}", self.endpoint))),
        }
    }

    /// Where a file of a commit downloads from.
    pub fn resolve_url(&self, repo: &str, commit: &str, path: &str) -> String {
        format!("{}/{repo}/resolve/{commit}/{}", self.endpoint, encode(path, true))
    }
}

/// The revision API's JSON: `sha` and `siblings` with `rfilename`, `size`, `blobId` and, for LFS files,
/// `lfs.sha256`. Paths must stay inside the snapshot.
fn parse_listing(text: &str) -> std::result::Result<Listing, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let commit = v.get("sha").and_then(|s| s.as_str()).ok_or("no `sha`")?;
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`sha` {commit:?} is not a commit hash"));
    }
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let siblings = v.get("siblings").and_then(|s| s.as_array()).ok_or("no `siblings` list")?;
    let siblings = siblings
        .iter()
        .map(|f| {
            let path = f.get("rfilename").and_then(|p| p.as_str()).ok_or("a file without `rfilename`")?;
            check_file_path(path)?;
            let lfs = f.get("lfs");
            let size = lfs.unwrap_or(f).get("size").and_then(|s| s.as_u64()).ok_or(format!("{path}: no `size`"))?;
            let check = match lfs.and_then(|l| l.get("sha256")).and_then(|s| s.as_str()) {
                Some(sha) if hex(sha, 64) => Check::Sha256(sha.to_ascii_lowercase()),
                Some(sha) => return Err(format!("{path}: LFS sha256 {sha:?} is not 64 hex digits")),
                None => match f.get("blobId").and_then(|s| s.as_str()) {
                    Some(id) if hex(id, 40) => Check::GitBlob(id.to_ascii_lowercase()),
                    _ => return Err(format!("{path}: no `blobId` (is `?blobs=true` supported?)")),
                },
            };
            let oid = match &check {
                Check::Sha256(h) | Check::GitBlob(h) => h.clone(),
            };
            Ok(Sibling { path: path.to_string(), size, oid, check })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Listing { commit: commit.to_ascii_lowercase(), siblings })
}
