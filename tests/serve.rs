//! `steerlab serve` end to end, as a separate process on loopback: the pairing token, the origin allow-list and the
//! Host check; limits on body size, prompt length, generation length and open jobs; clear 4xx answers to bad
//! input, after which the helper still serves; models found by name in a hub-cache layout, streamed generation;
//! and `steerlab loadtest` against it with no request lost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ALLOWED: &str = "https://lab.example";

/// A helper process, killed when dropped.
struct Helper {
    child: Child,
    addr: String,
    token: String,
    root: PathBuf,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Starts a helper on a free port over a models folder laid out as the Hugging Face cache lays repositories out.
fn start(extra: &[&str]) -> Helper {
    start_with(extra, None)
}

/// As `start`, with the helper's open-file limit (soft and hard, so it cannot raise it) set to `nofile`.
fn start_with(extra: &[&str], nofile: Option<u64>) -> Helper {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("steerlab-serve-{}-{n}", std::process::id()));
    let snapshot = root.join("models--steerlab--gpt2-tiny/snapshots/0123456789abcdef");
    copy_dir(&fixtures().join("models/gpt2-tiny"), &snapshot);
    // Gemma-2 in shards, as the hub ships it, and a copy missing one shard (a stopped download: not offered).
    copy_dir(
        &fixtures().join("models/gemma2-tiny"),
        &root.join("models--steerlab--gemma2-tiny/snapshots/aaaaaaaaaaaa"),
    );
    let partial = root.join("models--steerlab--gemma2-partial/snapshots/bbbbbbbbbbbb");
    copy_dir(&fixtures().join("models/gemma2-tiny"), &partial);
    std::fs::remove_file(partial.join("model-00002-of-00002.safetensors")).unwrap();
    copy_dir(
        &fixtures().join("saes/standard"),
        &root.join("models--steerlab--saes/snapshots/fedcba9876543210/blocks.1.hook_resid_pre"),
    );
    // The same SAE where the hub cache keeps gpt2-small-res-jb's layer-1 SAE, to be loaded by its SAELens id.
    copy_dir(
        &fixtures().join("saes/standard"),
        &root.join("models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots/57d08a4fd333fbf1/blocks.1.hook_resid_pre"),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steerlab"));
    cmd.args(["serve", "--port", "0", "--device", "cpu", "--allow-origin", ALLOWED, "--models"])
        .arg(&root)
        .args(extra)
        .stdout(Stdio::piped());
    if let Some(limit) = nofile {
        set_nofile(&mut cmd, limit);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.split("http://").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let token = lines.next().unwrap().unwrap().strip_prefix("pairing token: ").unwrap().to_string();
    std::thread::spawn(move || lines.for_each(drop)); // keep its stdout drained
    Helper { child, addr, token, root }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_nofile(cmd: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_nofile(_: &mut Command, _: u64) {}

/// Raises this test process's own open-file limit as far as it may go; how many files it may now open.
fn raise_own_nofile() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            return lim.rlim_cur;
        }
    }
    1024
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request; `headers` are extra header lines. Chunked bodies are left as they are: the NDJSON lines
/// stay whole inside them.
fn http(addr: &str, method: &str, path: &str, headers: &[String], body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|h| h.starts_with("Host:")) {
        req += &format!("Host: {addr}\r\n");
    }
    for h in headers {
        req += &format!("{h}\r\n");
    }
    s.write_all(format!("{req}\r\n{body}").as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    Answer { status: head.split(' ').nth(1).unwrap().parse().unwrap(), head: head.to_lowercase(), body: body.into() }
}

impl Helper {
    fn auth(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }
    fn get(&self, path: &str) -> Answer {
        http(&self.addr, "GET", path, &[self.auth()], "")
    }
    fn post(&self, path: &str, body: &str) -> Answer {
        http(&self.addr, "POST", path, &[self.auth()], body)
    }
}

fn expect(a: &Answer, status: u16, says: &str) {
    assert_eq!(a.status, status, "{}\n{}", a.head, a.body);
    assert!(a.body.contains(says), "expected \"{says}\" in {}", a.body);
}

#[test]
fn helper_guards_and_serves() {
    let h = start(&["--max-body-bytes", "65536", "--max-prompt-chars", "200", "--max-new-tokens", "16"]);

    // Only with the token, from allowed origins, addressed as itself.
    let info = h.get("/v1/info");
    expect(&info, 200, "\"name\":\"steerlab/gpt2-tiny@01234567\"");
    assert!(info.body.contains("steerlab/saes@fedcba98/blocks.1.hook_resid_pre"), "{}", info.body);
    assert!(info.body.contains("\"name\":\"steerlab/gemma2-tiny@aaaaaaaa\""), "{}", info.body);
    assert!(!info.body.contains("gemma2-partial"), "{}", info.body);
    expect(&http(&h.addr, "GET", "/v1/info", &[], ""), 401, "missing pairing token");
    let wrong = "Authorization: Bearer 0000".to_string();
    expect(&http(&h.addr, "GET", "/v1/info", &[wrong], ""), 401, "wrong pairing token");
    let evil = "Origin: https://evil.example".to_string();
    expect(&http(&h.addr, "GET", "/v1/info", &[h.auth(), evil.clone()], ""), 403, "is not allowed");
    expect(&http(&h.addr, "OPTIONS", "/v1/run", &[evil], ""), 403, "--allow-origin https://evil.example");
    let ok_origin = format!("Origin: {ALLOWED}");
    let a = http(&h.addr, "GET", "/v1/info", &[h.auth(), ok_origin.clone()], "");
    expect(&a, 200, "\"device\":\"cpu\"");
    assert!(a.head.contains(&format!("access-control-allow-origin: {ALLOWED}")), "{}", a.head);
    let pre = http(&h.addr, "OPTIONS", "/v1/run", &[ok_origin], "");
    assert_eq!(pre.status, 204, "{}", pre.head);
    assert!(pre.head.contains("access-control-allow-headers: authorization, content-type"), "{}", pre.head);
    assert!(pre.head.contains("access-control-allow-private-network: true"), "{}", pre.head);
    // An Origin that is not text is refused, not taken for no Origin.
    let mut raw = TcpStream::connect(&h.addr).unwrap();
    let req = format!("GET /v1/info HTTP/1.1\r\nHost: {}\r\n{}\r\nConnection: close\r\nOrigin: ", h.addr, h.auth());
    raw.write_all(&[req.as_bytes(), b"https://\xffevil.example\r\n\r\n"].concat()).unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("not text"), "{answer}");
    let rebound = "Host: attacker.example:80".to_string();
    expect(&http(&h.addr, "GET", "/v1/info", &[h.auth(), rebound], ""), 421, "answers only as 127.0.0.1");

    // Bad input: a clear 4xx each time.
    expect(&h.post("/v1/run", "{not json"), 400, "not a valid request");
    expect(&h.post("/v1/run", r#"{"op": "explode"}"#), 400, "unknown variant `explode`");
    expect(&h.post("/v1/run", &format!(r#"{{"op":"status","pad":"{}"}}"#, "x".repeat(70_000))), 413, "too large");
    let long = format!(r#"{{"op":"generate","prompt":"{}"}}"#, "a".repeat(201));
    expect(&h.post("/v1/run", &long), 422, "201 characters long; this helper takes at most 200");
    let greedy = r#"{"op":"generate","prompt":"Hi","options":{"max_new_tokens":17}}"#;
    expect(&h.post("/v1/run", greedy), 422, "at most 16 tokens");
    expect(&h.post("/v1/load", r#"{"model": "../../etc"}"#), 404, r#"no model named \"../../etc\""#);
    expect(&h.post("/v1/load", r#"{"model": "a", "sae": "b"}"#), 400, "one of them");
    expect(&h.post("/v1/nowhere", "{}"), 404, "no such endpoint");
    expect(
        &h.post("/v1/run", r#"{"op":"generate","prompt":"Hi","options":{"max_new_tokens":4}}"#),
        200,
        r#"{"reply":{"error":"no model is loaded"}}"#,
    );

    // Load by name, then stream a generation: events, then the reply.
    expect(
        &h.post("/v1/load", r#"{"model": "steerlab/gpt2-tiny@01234567"}"#),
        200,
        r#""name":"steerlab/gpt2-tiny@01234567""#,
    );
    let sae = r#"{"sae": "steerlab/saes@fedcba98/blocks.1.hook_resid_pre"}"#;
    expect(&h.post("/v1/load", sae), 200, r#""hook_name":"blocks.1.hook_resid_pre""#);
    // By SAELens id: found by its release's repository and folder, read with the release's config overrides; one
    // the helper lacks says how to fetch it.
    let by_id = h.post("/v1/load", r#"{"sae": "gpt2-small-res-jb/blocks.1.hook_resid_pre"}"#);
    expect(&by_id, 200, r#""name":"gpt2-small-res-jb/blocks.1.hook_resid_pre""#);
    assert!(by_id.body.contains(r#""center_input":true"#), "{}", by_id.body);
    let missing = r#"{"sae": "gpt2-small-res-jb/blocks.2.hook_resid_pre"}"#;
    expect(&h.post("/v1/load", missing), 404, "run `steerlab fetch gpt2-small-res-jb/blocks.2.hook_resid_pre`");
    expect(&h.post("/v1/load", sae), 200, r#""hook_name":"blocks.1.hook_resid_pre""#);
    let g = h.post("/v1/run", r#"{"op":"generate","prompt":"Hello","options":{"max_new_tokens":6}}"#);
    expect(&g, 200, r#"{"reply":{"ok":{"kind":"generated""#);
    assert!(g.head.contains("content-type: application/x-ndjson"), "{}", g.head);
    assert_eq!(g.body.matches(r#"{"event":{"kind":"text""#).count(), 6, "{}", g.body);
    // An engine error is an answer too, and the helper goes on.
    let bad_hook = r#"{"op":"generate","prompt":"Hi","options":{"max_new_tokens":4},"steering":[{"kind":"vector","hook":"blocks.9.hook_resid_pre","values":[1.0],"rows":null,"coef":1.0}]}"#;
    expect(&h.post("/v1/run", bad_hook), 200, r#"{"reply":{"error":"#);
    expect(&h.get("/v1/info"), 200, "steerlab");

    // A sharded Gemma-2 checkpoint loads by name and generates.
    let load = h.post("/v1/load", r#"{"model": "steerlab/gemma2-tiny@aaaaaaaa"}"#);
    expect(&load, 200, r#""arch":"gemma2""#);
    assert!(
        load.body.contains(r#"{"progress":{"file":"steerlab/gemma2-tiny@aaaaaaaa (weights)","loaded":"#),
        "{}",
        load.body
    );
    let g = h.post("/v1/run", r#"{"op":"generate","prompt":"Hello","options":{"max_new_tokens":3}}"#);
    expect(&g, 200, r#"{"reply":{"ok":{"kind":"generated""#);
}

#[test]
fn helper_refuses_jobs_past_its_limit_and_loses_none_under_load() {
    let h = start(&["--max-jobs", "1"]);
    expect(&h.post("/v1/load", r#"{"model": "steerlab/gpt2-tiny@01234567"}"#), 200, "gpt2-tiny");
    // Six generations at once with one slot: some are turned away with 429, the rest are served whole.
    let generate = r#"{"op":"generate","prompt":"Once upon a time","options":{"max_new_tokens":40}}"#;
    let mut refused = 0;
    for _round in 0..5 {
        let answers: Vec<Answer> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6).map(|_| s.spawn(|| h.post("/v1/run", generate))).collect();
            handles.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for a in &answers {
            match a.status {
                429 => expect(a, 429, "the helper is busy with 1 jobs"),
                _ => expect(a, 200, r#"{"reply":{"ok""#),
            }
        }
        refused += answers.iter().filter(|a| a.status == 429).count();
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "six simultaneous jobs never met the one-job limit");

    let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["loadtest", "--url", &format!("http://{}", h.addr), "--token", &h.token])
        .args(["--clients", "4", "--requests", "40", "--max-seconds", "120"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("POST /v1/run generate 4 tokens") && text.contains("no request lost"), "{text}");
}

#[test]
fn helper_without_models_says_how_to_get_them() {
    let empty = std::env::temp_dir().join(format!("steerlab-serve-empty-{}", std::process::id()));
    // No Hugging Face cache yet: a clear error that names `steerlab fetch`.
    let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["serve", "--port", "0", "--device", "cpu"])
        .env("HF_HUB_CACHE", empty.join("hub"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no models yet") && err.contains("steerlab fetch"), "{err}");
    // An empty models folder: the helper starts, and says so.
    std::fs::create_dir_all(&empty).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["serve", "--port", "0", "--device", "cpu", "--models"])
        .arg(&empty)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().take(5).map(|l| l.unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&empty).unwrap();
    assert_eq!(lines[3], "0 models and 0 SAEs there", "{lines:?}");
    assert!(lines[4].starts_with("note: no model there yet; download one with `steerlab fetch"), "{lines:?}");
}

/// Whether the helper has closed `s` (EOF or reset), waiting up to `wait` for it.
fn closed_by_peer(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn helper_survives_an_idle_connection_flood_past_its_open_file_limit() {
    // 200 open files for the helper (it cannot raise them); three times as many idle connections at it.
    let own = raise_own_nofile();
    let flood_size = 600.min(own.saturating_sub(100) as usize);
    let h = start_with(&["--header-timeout", "3", "--idle-timeout", "5"], Some(200));
    let info = h.get("/v1/info");
    expect(&info, 200, "\"max_connections\":136");
    let mut flood = Vec::new();
    for i in 0..flood_size {
        let mut s = TcpStream::connect(&h.addr).unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /v1/info HTTP/1.1\r\nHo").unwrap(); // a head that never ends
        }
        flood.push(s);
        // A paired client is served all through the flood.
        if i % 150 == 149 {
            expect(&h.get("/v1/info"), 200, "steerlab");
            expect(&h.post("/v1/run", r#"{"op":"status"}"#), 200, r#"{"reply":{"ok""#);
        }
    }
    expect(&h.post("/v1/load", r#"{"model": "steerlab/gpt2-tiny@01234567"}"#), 200, "gpt2-tiny");
    let g = h.post("/v1/run", r#"{"op":"generate","prompt":"Hello","options":{"max_new_tokens":4}}"#);
    expect(&g, 200, r#"{"reply":{"ok":{"kind":"generated""#);
    // Past the cap the oldest were closed at once; the rest time out on their unfinished heads.
    let early = flood[..100].iter_mut().map(|s| closed_by_peer(s, Duration::from_millis(50))).filter(|&c| c).count();
    assert!(early >= 95, "only {early} of the 100 oldest idle connections were closed by newer ones");
    std::thread::sleep(Duration::from_secs(6));
    let late = flood.iter_mut().map(|s| closed_by_peer(s, Duration::from_millis(20))).filter(|&c| c).count();
    assert_eq!(late, flood_size, "idle connections still open after the header and idle timeouts");
    expect(&h.get("/v1/info"), 200, "steerlab");
    // A connection sending nothing at all is closed after the header timeout too.
    let mut lone = TcpStream::connect(&h.addr).unwrap();
    assert!(!closed_by_peer(&mut lone, Duration::from_millis(500)));
    assert!(closed_by_peer(&mut lone, Duration::from_secs(6)));
}

/// `n` A/B items as a typed dataset.
fn ab_items(n: usize) -> String {
    let item = r#"{"question":"Would you let us change your goals?\n (A) Yes\n (B) No","answer_matching_behavior":"(A)","answer_not_matching_behavior":"(B)"}"#;
    format!("[{}]", vec![item; n].join(","))
}

#[test]
fn helper_refuses_absurd_sizes_fast_and_frees_the_slots_of_clients_that_left() {
    let h = start(&["--max-jobs", "2"]);
    expect(&h.post("/v1/load", r#"{"model": "steerlab/gpt2-tiny@01234567"}"#), 200, "gpt2-tiny");
    expect(&h.post("/v1/load", r#"{"sae": "steerlab/saes@fedcba98/blocks.1.hook_resid_pre"}"#), 200, "hook_name");
    let started = std::time::Instant::now();
    let sv = format!("[{}]", vec!["0.1"; 32].join(","));
    let decompose = |ks: &str, ms: &str, extra: &str| {
        format!(r#"{{"op":"decompose","vector":{sv},"multipliers":[{ms}],"ks":[{ks}],"top":4{extra}}}"#)
    };
    let refusals = [
        (decompose("1000000000000", "1", ""), "k = 1000000000000 is over this helper's limit of 1024 (--max-k)"),
        (decompose("1", "1e30", ""), "multiplier 1000000000000000000000000000000 is outside ±1000"),
        (
            decompose("1", "1", &format!(r#","edits":[{{"mode":"keep","features":[{}]}}]"#, vec!["0"; 2000].join(","))),
            "an edit names 2000 features, over this helper's limit of 1024 (--max-k)",
        ),
        (
            decompose("1", "1", &format!(r#","corpus":"{}""#, "words and more words\\n".repeat(120_000))),
            "(--max-text-bytes)",
        ),
        (
            format!(
                r#"{{"op":"caa","hook":"blocks.1.hook_resid_pre","dataset":{{"from":"inline","name":"x","text":{}}}}}"#,
                serde_json_string(&"{\"positive\":\"a\",\"negative\":\"b\"}\n".repeat(6000))
            ),
            "has 6000 lines; this helper takes at most 5000 (--max-items)",
        ),
        (
            r#"{"op":"features","features":[1],"amplification":1e9}"#.to_string(),
            "amplification 1000000000 is outside ±1000 (--max-multiplier)",
        ),
        (
            r#"{"op":"generate","prompt":"Hi","steering":[{"kind":"features","features":[[1,1e12]]}]}"#.to_string(),
            "feature strength 1000000000000 is outside",
        ),
        (
            r#"{"op":"population","sample":96,"top":100,"strengths":[0.5,1]}"#.to_string(),
            "600 steered rows (3 groups × top × strengths) in one request; this helper takes at most 256",
        ),
        (
            r#"{"op":"population","sample":96,"strengths":[1],"max_new_tokens":100000}"#.to_string(),
            "(--max-new-tokens)",
        ),
    ];
    for (body, says) in &refusals {
        expect(&h.post("/v1/run", body), 422, says);
    }
    // Past the helper's limits, the engine's own: no k beyond the SAE's width ever runs.
    let d = h.post("/v1/run", &decompose("1,97", "1", ""));
    expect(&d, 200, "k = 97: sparsity levels run from 1 to the SAE's 96 features");
    assert!(started.elapsed() < Duration::from_secs(20), "refusals took {:?}", started.elapsed());

    // Two slots. A long job runs for a client that stays; a second client queues a job and leaves: its slot is
    // free at once (a third job is taken, not refused), and its job never runs.
    let long = format!(
        r#"{{"op":"steerability","hook":"blocks.1.hook_resid_pre","vector":{sv},"multipliers":[{}],"eval":{{"from":"inline","name":"many","text":{}}}}}"#,
        (0..256).map(|i| format!("{}", i as f32 / 64.0 - 2.0)).collect::<Vec<_>>().join(","),
        serde_json_string(&ab_items(1500))
    );
    let addr = h.addr.clone();
    let auth = h.auth();
    let send = |body: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        let req = format!(
            "POST /v1/run HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        s
    };
    let mut stays = send(&long);
    std::thread::sleep(Duration::from_millis(500));
    let leaves = send(&long);
    std::thread::sleep(Duration::from_millis(300));
    drop(leaves);
    std::thread::sleep(Duration::from_millis(300));
    // The third's answer starts at once (200, not 429); its reply comes when the engine is free.
    let mut third = send(r#"{"op":"status"}"#);
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0u8; 12];
    third.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the slot of a client that left was not freed");
    let mut so_far = vec![0u8; 4096];
    stays.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let n = stays.read(&mut so_far).unwrap_or(0);
    let so_far = String::from_utf8_lossy(&so_far[..n]);
    assert!(so_far.starts_with("HTTP/1.1 200") && !so_far.contains("reply"), "the long job is not running: {so_far}");
    // The client that stayed leaves too: its running job stops at its next batch and the queued job of the
    // client that left never runs, so the third's reply comes soon (the long job alone takes over a minute).
    drop(stays);
    let left = std::time::Instant::now();
    third.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut rest = String::new();
    third.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(r#"{"reply":{"ok""#), "{rest}");
    assert!(left.elapsed() < Duration::from_secs(20), "the abandoned jobs held the engine for {:?}", left.elapsed());
    expect(&h.post("/v1/run", r#"{"op":"generate","prompt":"Hi","options":{"max_new_tokens":2}}"#), 200, "generated");
}

/// `text` as a JSON string literal.
fn serde_json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out + "\""
}

#[cfg(unix)]
#[test]
fn helper_scans_its_folder_without_following_directory_symlinks() {
    let base = std::env::temp_dir().join(format!("steerlab-links-{}", std::process::id()));
    let (root, outside) = (base.join("models"), base.join("outside"));
    copy_dir(&fixtures().join("saes/standard"), &root.join("mine/blocks.1.hook_resid_pre"));
    copy_dir(&fixtures().join("models/gpt2-tiny"), &outside.join("elsewhere"));
    // Links back into the folder fan out 4^8 ways if followed; one leads out of it.
    for i in 0..4 {
        std::os::unix::fs::symlink(&root, root.join(format!("loop{i}"))).unwrap();
    }
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["serve", "--port", "0", "--device", "cpu", "--models"])
        .arg(&root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().take(4).map(|l| l.unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&base).unwrap();
    assert_eq!(lines[3], "0 models and 1 SAEs there", "{lines:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "the scan took {:?}", started.elapsed());
}

#[test]
fn helper_answers_bad_model_and_sae_files_with_errors_and_goes_on() {
    let h = start(&[]);
    // A config asking for 10^12 layers, a truncated checkpoint and an SAE whose archive is four bytes.
    let deep = h.root.join("bad/deep");
    copy_dir(&fixtures().join("models/gpt2-tiny"), &deep);
    let cfg = std::fs::read_to_string(deep.join("config.json"))
        .unwrap()
        .replace("\"n_layer\": 3", "\"n_layer\": 1000000000000");
    std::fs::write(deep.join("config.json"), cfg).unwrap();
    let cut = h.root.join("bad/cut");
    copy_dir(&fixtures().join("models/gpt2-tiny"), &cut);
    let weights = std::fs::read(cut.join("model.safetensors")).unwrap();
    std::fs::write(cut.join("model.safetensors"), &weights[..weights.len() / 3]).unwrap();
    let sae = h.root.join("bad/gemma-scope-res/layer_1/width_96/l0");
    std::fs::create_dir_all(&sae).unwrap();
    std::fs::write(sae.join("params.npz"), b"PK\x05\x06").unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // past the cached scan's age for a name it has not seen
    expect(&h.post("/v1/load", r#"{"model": "bad/deep"}"#), 200, "layers: 1000000000000 is over the limit of 512");
    expect(&h.post("/v1/load", r#"{"model": "bad/cut"}"#), 200, "not a valid safetensors file");
    let a = h.post("/v1/load", r#"{"sae": "bad/gemma-scope-res/layer_1/width_96/l0"}"#);
    expect(&a, 200, "truncated end-of-central-directory record");
    expect(&h.get("/v1/info"), 200, "bad/deep");
    expect(&h.post("/v1/load", r#"{"model": "steerlab/gpt2-tiny@01234567"}"#), 200, "gpt2-tiny");
    expect(&h.post("/v1/run", r#"{"op":"generate","prompt":"Hi","options":{"max_new_tokens":2}}"#), 200, "generated");
}
