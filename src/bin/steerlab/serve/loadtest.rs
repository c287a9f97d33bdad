//! `steerlab loadtest`: several clients send a bounded number of requests to a running helper over loopback,
//! and the requests/s, p50 and p99 latency are printed for each kind of request side by side: `GET /v1/info`
//! (the server alone, the reference), `status` through the engine's queue, and a short generation when a model
//! is loaded. A client told 429 (the helper's job queue is full) waits 10 ms and asks again, as the lab does; the
//! latency counts from its first try. Every request must be answered: one that is not counts as lost and fails
//! the run.

use clap::Args;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use steerlab::{Error, Result};

#[derive(Args)]
pub struct LoadtestArgs {
    /// The helper's address, as it printed it.
    #[arg(long, default_value = "http://127.0.0.1:7878")]
    url: String,
    /// The pairing token it printed.
    #[arg(long)]
    token: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests per kind.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Stop sending after this long, per kind.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

/// How one request ended.
enum Outcome {
    /// Served, after this many 429s.
    Ok(Duration, usize),
    /// Still refused with 429 when the time was up.
    Busy,
    /// Any other answer.
    Error(String),
    /// No answer.
    Lost(String),
}

/// One HTTP/1.1 request on its own connection; the status and the whole body (chunks left in place).
fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn once(addr: &str, token: &str, kind: &Kind, deadline: Instant) -> Outcome {
    let start = Instant::now();
    let (method, path, body) = match kind {
        Kind::Info => ("GET", "/v1/info", ""),
        Kind::Run { body, .. } => ("POST", "/v1/run", body.as_str()),
    };
    let mut retries = 0;
    loop {
        match http(addr, method, path, token, body) {
            Ok((200, b)) if matches!(kind, Kind::Info) || b.contains("{\"reply\":{\"ok\"") => {
                return Outcome::Ok(start.elapsed(), retries);
            }
            Ok((429, _)) if Instant::now() < deadline => {
                retries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok((429, _)) => return Outcome::Busy,
            Ok((status, b)) => return Outcome::Error(format!("HTTP {status}: {}", b.trim())),
            Err(e) => return Outcome::Lost(e.to_string()),
        }
    }
}

enum Kind {
    Info,
    Run { label: &'static str, body: String },
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

pub fn run(args: LoadtestArgs) -> Result<()> {
    if args.clients == 0 || args.requests == 0 {
        return Err(Error::invalid("--clients and --requests must be at least 1"));
    }
    let addr = args.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let (status, info) = http(&addr, "GET", "/v1/info", &args.token, "")
        .map_err(|e| Error::invalid(format!("cannot reach the helper at {}: {e}", args.url)))?;
    if status != 200 {
        return Err(Error::invalid(format!("the helper answered HTTP {status}: {}", info.trim())));
    }
    let (_, loaded) = http(&addr, "POST", "/v1/run", &args.token, r#"{"op":"status"}"#)
        .map_err(|e| Error::invalid(format!("cannot reach the helper: {e}")))?;
    let mut kinds = vec![Kind::Info, Kind::Run { label: "POST /v1/run status", body: r#"{"op":"status"}"#.into() }];
    if !loaded.contains("\"model\":null") {
        let body = r#"{"op":"generate","prompt":"Hello","options":{"max_new_tokens":4}}"#;
        kinds.push(Kind::Run { label: "POST /v1/run generate 4 tokens", body: body.into() });
    }
    println!("{} clients, up to {} requests per kind, over loopback", args.clients, args.requests);
    println!(
        "{:<32} {:>6} {:>7} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
        "request", "ok", "429s", "busy", "error", "lost", "req/s", "p50 ms", "p99 ms"
    );
    let mut failed = Vec::new();
    for kind in &kinds {
        let next = AtomicUsize::new(0);
        let outcomes = Mutex::new(Vec::new());
        let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..args.clients {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < args.requests && Instant::now() < deadline {
                        let o = once(&addr, &args.token, kind, deadline);
                        outcomes.lock().expect("no client panics").push(o);
                    }
                });
            }
        });
        let elapsed = start.elapsed().as_secs_f64();
        let outcomes = outcomes.into_inner().expect("no client panics");
        let mut ok: Vec<Duration> =
            outcomes.iter().filter_map(|o| if let Outcome::Ok(d, _) = o { Some(*d) } else { None }).collect();
        ok.sort();
        let retries: usize = outcomes.iter().map(|o| if let Outcome::Ok(_, r) = o { *r } else { 0 }).sum();
        let busy = outcomes.iter().filter(|o| matches!(o, Outcome::Busy)).count();
        let errors: Vec<&String> =
            outcomes.iter().filter_map(|o| if let Outcome::Error(e) = o { Some(e) } else { None }).collect();
        let lost: Vec<&String> =
            outcomes.iter().filter_map(|o| if let Outcome::Lost(e) = o { Some(e) } else { None }).collect();
        let label = match kind {
            Kind::Info => "GET /v1/info (no engine)",
            Kind::Run { label, .. } => label,
        };
        println!(
            "{label:<32} {:>6} {retries:>7} {busy:>6} {:>6} {:>6} {:>9.1} {:>9.2} {:>9.2}",
            ok.len(),
            errors.len(),
            lost.len(),
            ok.len() as f64 / elapsed,
            percentile(&ok, 0.5),
            percentile(&ok, 0.99)
        );
        if let Some(e) = errors.first() {
            failed.push(format!("{label}: {} errors, e.g. {e}", errors.len()));
        }
        if busy > 0 {
            failed.push(format!("{label}: {busy} requests still refused as busy after {} s", args.max_seconds));
        }
        if let Some(e) = lost.first() {
            failed.push(format!("{label}: {} requests lost, e.g. {e}", lost.len()));
        }
    }
    if failed.is_empty() {
        println!("no request lost");
        Ok(())
    } else {
        Err(Error::invalid(failed.join("; ")))
    }
}
