//! One file's download: into `BLOB.incomplete`, resumed with HTTP Range after a dropped connection (and on the
//! next run), checked against the hub's checksum, then renamed into place.

use super::hub::{Check, Hub};
use sha1::Digest;
use std::io::{IsTerminal, Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use steerlab::error::{Error, Result};

pub struct Download<'a> {
    pub url: &'a str,
    pub size: u64,
    pub check: &'a Check,
    pub retries: u32,
}

impl Download<'_> {
    pub fn run(&self, hub: &Hub, blob: &Path, progress: &mut Progress) -> Result<()> {
        let part = blob.with_extension("incomplete");
        let dir = blob.parent().expect("blobs/");
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir.display().to_string(), e))?;
        let io = |e: std::io::Error| Error::file(part.display().to_string(), e);
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&part).map_err(io)?;
        let mut attempt = 0;
        loop {
            let mut have = file.metadata().map_err(io)?.len();
            if have > self.size {
                file.set_len(0).map_err(io)?;
                have = 0;
            }
            if have == self.size {
                break;
            }
            if have > 0 && attempt == 0 {
                eprintln!("{}: resuming at {} of {}", progress.label, human_bytes(have), human_bytes(self.size));
            }
            match self.receive(hub, &mut file, have, progress)? {
                Ok(()) => continue, // the loop checks the length
                Err(why) if attempt < self.retries => {
                    attempt += 1;
                    progress.finish_line();
                    eprintln!("{}: {why}; resuming (retry {attempt} of {})", progress.label, self.retries);
                    std::thread::sleep(Duration::from_millis(250 << attempt.min(5)));
                }
                Err(why) => {
                    progress.finish_line();
                    let at = file.metadata().map_err(io)?.len();
                    return Err(Error::invalid(format!(
                        "{}: {why}; stopped at {} of {} (run the same command again to resume)",
                        progress.label,
                        human_bytes(at),
                        human_bytes(self.size)
                    )));
                }
            }
        }
        progress.finish_line();
        drop(file);
        if let Err(why) = verify(&part, self.check, self.size) {
            let _ = std::fs::remove_file(&part);
            return Err(Error::invalid(format!(
                "{}: {why}; the download was removed, run again to fetch it afresh",
                progress.label
            )));
        }
        std::fs::rename(&part, blob).map_err(|e| Error::file(blob.display().to_string(), e))
    }

    /// One request from byte `have`, appended to `file`. The outer error stops the fetch (refused, or the local
    /// disk failed); the inner one is a dropped or short transfer, worth resuming.
    fn receive(
        &self,
        hub: &Hub,
        file: &mut std::fs::File,
        have: u64,
        progress: &mut Progress,
    ) -> Result<std::result::Result<(), String>> {
        let resp = match hub.get(self.url, have) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("connection failed: {e}"))),
        };
        let status = resp.status().as_u16();
        let label = progress.label.clone();
        let io = |e: std::io::Error| Error::invalid(format!("{label}: cannot write the download: {e}"));
        match status {
            206 => {}
            200 => {
                // The server ignored the range: start over.
                file.set_len(0).map_err(io)?;
                file.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
            }
            416 => {
                file.set_len(0).map_err(io)?; // the part is not a prefix of this file
                return Ok(Err("the server refused to resume (416)".into()));
            }
            500..=599 => return Ok(Err(format!("the server answered {}", resp.status()))),
            _ => {
                hub.check_status(resp.status(), self.url)?;
                return Err(Error::invalid(format!("{}: unexpected answer {}", self.url, resp.status())));
            }
        }
        let from = if status == 206 { have } else { 0 };
        let done = match copy_body(&mut resp.into_body().into_reader(), file, from, self.size, progress) {
            Ok(done) => done,
            Err(CopyError::Lost(e)) => return Ok(Err(format!("connection lost: {e}"))),
            Err(CopyError::TooLong) => {
                file.set_len(0).map_err(io)?;
                return Ok(Err(format!("the server sent more than the {} bytes the hub lists", self.size)));
            }
            Err(CopyError::Write(e)) => return Err(io(e)),
        };
        if done < self.size {
            return Ok(Err(format!("the transfer ended early, at {}", human_bytes(done))));
        }
        Ok(Ok(()))
    }
}

/// How copying a response body into a file stopped early.
pub enum CopyError {
    /// The connection broke or timed out: worth resuming.
    Lost(std::io::Error),
    /// The body went on past the limit; nothing past it was written.
    TooLong,
    /// The local file could not be written.
    Write(std::io::Error),
}

/// Appends `body` to `file` until it ends, counting from `done` bytes already there, and returns the count. Every
/// download goes through here: the hub's blobs (resumed, `limit` their listed size) and `fetch-data`'s files
/// (`limit` the most a dataset may be).
pub fn copy_body(
    body: &mut impl Read,
    file: &mut impl Write,
    mut done: u64,
    limit: u64,
    progress: &mut Progress,
) -> std::result::Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Lost(e)),
        };
        if done + n as u64 > limit {
            return Err(CopyError::TooLong);
        }
        file.write_all(&buf[..n]).map_err(CopyError::Write)?;
        done += n as u64;
        progress.update(done);
    }
}

/// Checks a file's checksum against the hub's.
pub fn verify(path: &Path, check: &Check, size: u64) -> std::result::Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let (want, got) = match check {
        Check::Sha256(want) => (want, hash(sha2::Sha256::new(), &mut f)?),
        Check::GitBlob(want) => {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {size}\0").as_bytes());
            (want, hash(h, &mut f)?)
        }
    };
    if *want == got { Ok(()) } else { Err(format!("checksum mismatch: got {got}, the hub lists {want}")) }
}

fn hash<D: Digest>(mut h: D, f: &mut std::fs::File) -> std::result::Result<String, String> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf).map_err(|e| e.to_string())? {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A progress line: redrawn in place on a terminal, a line every 10% otherwise (logs, CI).
pub struct Progress {
    pub label: String,
    total: u64,
    start: Instant,
    last: Instant,
    last_tenth: u64,
    tty: bool,
    drawn: bool,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let now = Instant::now();
        let tty = std::io::stderr().is_terminal();
        Self { label: label.to_string(), total, start: now, last: now, last_tenth: 0, tty, drawn: false }
    }

    /// `done` bytes so far. A total of 0 is unknown: then only the count and the rate are shown, every 200 ms
    /// on a terminal and every megabyte otherwise.
    pub(super) fn update(&mut self, done: u64) {
        let tenth = (done * 10).checked_div(self.total).unwrap_or(done >> 20);
        let due = if self.tty { self.last.elapsed() >= Duration::from_millis(200) } else { tenth > self.last_tenth };
        if !due && (self.total == 0 || done < self.total) {
            return;
        }
        self.last = Instant::now();
        self.last_tenth = tenth;
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let line = if self.total == 0 {
            format!("{}: {} {}/s", self.label, human_bytes(done), human_bytes(rate as u64))
        } else {
            let eta = if rate > 0.0 { self.total.saturating_sub(done) as f64 / rate } else { 0.0 };
            format!(
                "{}: {} / {} ({:.0}%) {}/s, {:.0} s left",
                self.label,
                human_bytes(done),
                human_bytes(self.total),
                100.0 * done as f64 / self.total.max(1) as f64,
                human_bytes(rate as u64),
                eta
            )
        };
        if self.tty {
            eprint!("\r{line}\x1b[K");
            self.drawn = true;
        } else {
            eprintln!("{line}");
        }
    }

    /// Ends a line drawn in place, before other output.
    pub(super) fn finish_line(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}
