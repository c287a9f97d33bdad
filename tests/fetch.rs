//! `steerlab fetch` against a local stand-in for the hub (its revision API and `resolve` downloads, with Range):
//! the cache layout, resuming within a run and across runs, checksums, gated repositories and bad input.

mod common;

use sha1::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "sekrit";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct File {
    path: String,
    bytes: Vec<u8>,
    lfs: bool,
    /// What the listing claims its sha256 is (the real one unless the test corrupts it).
    sha256: String,
}

struct Repo {
    files: Vec<File>,
    gated: bool,
    /// Answers for this file stop halfway, this many times.
    cut: Option<(String, usize)>,
    /// Answers for this file send half, then nothing for 5 s with the connection open, this many times.
    stall: Option<(String, usize)>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    /// Each download request: `path range`.
    log: Vec<String>,
}

/// The hub's two endpoints `steerlab fetch` uses, over plain HTTP on loopback.
fn serve(state: Arc<Mutex<State>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || answer(conn, &state));
        }
    });
    addr
}

fn answer(mut conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let reply = |conn: &mut TcpStream, status: &str, extra: &str, body: &[u8], send: usize| {
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len());
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&body[..send]);
    };
    let mut st = state.lock().unwrap();
    let authed = headers.get("authorization").map(String::as_str) == Some(&format!("Bearer {TOKEN}"));
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let repo_name = rest.split("/revision/").next().unwrap();
        let Some(repo) = st.repos.get(repo_name) else { return reply(&mut conn, "404 Not Found", "", b"{}", 2) };
        if repo.gated && !authed {
            return reply(&mut conn, "401 Unauthorized", "", b"{}", 2);
        }
        let siblings: Vec<serde_json::Value> = repo
            .files
            .iter()
            .map(|f| {
                let mut blob = sha1::Sha1::new();
                blob.update(format!("blob {}\0", f.bytes.len()).as_bytes());
                blob.update(&f.bytes);
                let mut v =
                    serde_json::json!({"rfilename": f.path, "size": f.bytes.len(), "blobId": hex(&blob.finalize())});
                if f.lfs {
                    v["lfs"] = serde_json::json!({"sha256": f.sha256, "size": f.bytes.len(), "pointerSize": 134});
                }
                v
            })
            .collect();
        let body = serde_json::json!({"id": repo_name, "sha": COMMIT, "siblings": siblings}).to_string();
        return reply(&mut conn, "200 OK", "Content-Type: application/json\r\n", body.as_bytes(), body.len());
    }
    let Some((repo_name, file)) = path.trim_start_matches('/').split_once(&format!("/resolve/{COMMIT}/")) else {
        return reply(&mut conn, "404 Not Found", "", b"", 0);
    };
    let range = headers.get("range").cloned().unwrap_or_default();
    st.log.push(format!("{file} {range}"));
    let Some(repo) = st.repos.get_mut(repo_name) else { return reply(&mut conn, "404 Not Found", "", b"", 0) };
    if repo.gated && !authed {
        return reply(&mut conn, "401 Unauthorized", "", b"", 0);
    }
    let Some(f) = repo.files.iter().find(|f| f.path == file) else {
        return reply(&mut conn, "404 Not Found", "", b"", 0);
    };
    let from: usize = range.strip_prefix("bytes=").and_then(|r| r.trim_end_matches('-').parse().ok()).unwrap_or(0);
    let body = f.bytes[from..].to_vec();
    let mut send = body.len();
    if let Some((stall_file, times)) = &mut repo.stall
        && stall_file == file
        && *times > 0
    {
        *times -= 1;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&body[..body.len() / 2]);
        drop(st); // other requests go on while this one stalls
        std::thread::sleep(std::time::Duration::from_secs(5));
        return;
    }
    if let Some((cut_file, times)) = &mut repo.cut
        && cut_file == file
        && *times > 0
    {
        *times -= 1;
        send /= 2;
    }
    if from > 0 {
        let extra = format!("Content-Range: bytes {from}-{}/{}\r\n", f.bytes.len() - 1, f.bytes.len());
        reply(&mut conn, "206 Partial Content", &extra, &body, send)
    } else {
        reply(&mut conn, "200 OK", "", &body, send)
    }
}

fn fixture_files(model: &str) -> Vec<File> {
    let dir = common::model_dir(model);
    let mut files: Vec<File> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().file_name().to_string_lossy().to_string();
            let bytes = std::fs::read(dir.join(&path)).unwrap();
            let lfs = path.ends_with(".safetensors");
            File { sha256: hex(&sha2::Sha256::digest(&bytes)), path, bytes, lfs }
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn fetch(hub: &str, cache: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steerlab"));
    cmd.args(["fetch", "--hub", hub, "--cache"]).arg(cache).args(args);
    // No token but the one given: not the developer's own.
    cmd.env_remove("HF_TOKEN").env_remove("HF_ENDPOINT").env("HF_HOME", cache.join("no-home"));
    if let Some(t) = token {
        cmd.env("HF_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn fetch_resumes_checks_and_lays_out_the_hub_cache() {
    let state = Arc::new(Mutex::new(State::default()));
    let files = fixture_files("gemma2-tiny");
    let shard1 = "model-00001-of-00002.safetensors";
    let shard2 = "model-00002-of-00002.safetensors";
    state.lock().unwrap().repos.insert(
        "steerlab/gemma2-tiny".into(),
        Repo { files, gated: false, cut: Some((shard1.into(), 1)), stall: None },
    );
    let mut corrupt = fixture_files("gemma2-tiny");
    corrupt.iter_mut().find(|f| f.path == shard2).unwrap().sha256 = "ab".repeat(32);
    state
        .lock()
        .unwrap()
        .repos
        .insert("steerlab/corrupt".into(), Repo { files: corrupt, gated: false, cut: None, stall: None });
    state.lock().unwrap().repos.insert(
        "steerlab/gated".into(),
        Repo { files: fixture_files("gpt2-tiny"), gated: true, cut: None, stall: None },
    );
    state.lock().unwrap().repos.insert(
        "steerlab/flaky".into(),
        Repo {
            files: fixture_files("gpt2-tiny"),
            gated: false,
            cut: Some(("model.safetensors".into(), 100)),
            stall: None,
        },
    );
    state.lock().unwrap().repos.insert(
        "steerlab/stalled".into(),
        Repo {
            files: fixture_files("gpt2-tiny"),
            gated: false,
            cut: None,
            stall: Some(("model.safetensors".into(), 1)),
        },
    );
    let mut drive = fixture_files("gpt2-tiny");
    drive[0].path = "C:/Windows/evil.json".into();
    state
        .lock()
        .unwrap()
        .repos
        .insert("steerlab/drive".into(), Repo { files: drive, gated: false, cut: None, stall: None });
    let hub = serve(state.clone());
    let cache = std::env::temp_dir().join(format!("steerlab-fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let log = || std::mem::take(&mut state.lock().unwrap().log);

    // A sharded model: only what a model needs, the cut shard resumed with a Range request.
    let out = fetch(&hub, &cache, &["steerlab/gemma2-tiny"], None);
    assert!(out.status.success(), "{}", text(&out));
    let repo_dir = cache.join("models--steerlab--gemma2-tiny");
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), snapshot.display().to_string());
    assert!(text(&out).contains("resuming (retry 1 of 5)"), "{}", text(&out));
    let requests = log();
    assert!(requests.iter().any(|r| r.starts_with(shard1) && r.contains("bytes=")), "{requests:?}");
    assert_eq!(requests.len(), 6, "five files, one resumed: {requests:?}");
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), COMMIT);
    let want = fixture_files("gemma2-tiny");
    for f in &want {
        let linked = snapshot.join(&f.path);
        if f.path == "expected.safetensors" {
            assert!(!linked.exists(), "only a model's files are fetched by default");
            continue;
        }
        assert_eq!(std::fs::read(&linked).unwrap(), f.bytes, "{}", f.path);
        #[cfg(unix)]
        assert!(std::fs::symlink_metadata(&linked).unwrap().file_type().is_symlink());
        if f.lfs {
            assert!(repo_dir.join("blobs").join(&f.sha256).is_file(), "LFS blobs are named by sha256");
        }
    }
    let model = steerlab::model::Model::from_dir(&snapshot, &steerlab::device::Device::flex()).unwrap();
    assert_eq!(model.cfg().n_kv_heads, 2);

    // Again: nothing is downloaded.
    let out = fetch(&hub, &cache, &["steerlab/gemma2-tiny"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).matches("already in the cache").count(), 5, "{}", text(&out));
    assert!(log().is_empty());

    // A download stopped in an earlier run resumes where it stopped.
    let shard2_file = want.iter().find(|f| f.path == shard2).unwrap();
    let blob = repo_dir.join("blobs").join(&shard2_file.sha256);
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(blob.with_extension("incomplete"), &shard2_file.bytes[..1000]).unwrap();
    let out = fetch(&hub, &cache, &["steerlab/gemma2-tiny"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resuming at 1.0 kB"), "{}", text(&out));
    assert_eq!(log(), vec![format!("{shard2} bytes=1000-")]);
    assert_eq!(std::fs::read(&blob).unwrap(), shard2_file.bytes);

    // --include picks other files.
    let out = fetch(&hub, &cache, &["steerlab/gemma2-tiny", "--include", "expected*"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(snapshot.join("expected.safetensors").is_file());
    let out = fetch(&hub, &cache, &["steerlab/gemma2-tiny", "--include", "layer_9/*"], None);
    assert!(text(&out).contains("nothing in steerlab/gemma2-tiny@main matches layer_9/*"), "{}", text(&out));
    assert!(text(&out).contains("it has: config.json, expected.safetensors"), "{}", text(&out));

    // A checksum that does not match: refused, and nothing half-done is kept.
    let out = fetch(&hub, &cache, &["steerlab/corrupt"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains(&format!("{shard2}: checksum mismatch")), "{}", text(&out));
    let blobs = cache.join("models--steerlab--corrupt/blobs");
    let names: Vec<String> =
        std::fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(!names.iter().any(|n| n.starts_with(&"ab".repeat(32))), "{names:?}");

    // Gated: refused without the token, fetched with it.
    let out = fetch(&hub, &cache, &["steerlab/gated"], None);
    assert!(text(&out).contains("steerlab/gated is gated or private (401 Unauthorized)"), "{}", text(&out));
    assert!(text(&out).contains("none is set"), "{}", text(&out));
    let out = fetch(&hub, &cache, &["steerlab/gated", "--allow-insecure-token"], Some("wrong"));
    assert!(text(&out).contains("the token given was refused"), "{}", text(&out));
    // The right token over plain http is not sent unless asked for.
    let out = fetch(&hub, &cache, &["steerlab/gated"], Some(TOKEN));
    assert!(!out.status.success());
    assert!(text(&out).contains("the access token is not sent to http://"), "{}", text(&out));
    let out = fetch(&hub, &cache, &["steerlab/gated", "--allow-insecure-token"], Some(TOKEN));
    assert!(out.status.success(), "{}", text(&out));

    // A server that stops sending with the connection open: the read times out and the file resumes.
    let out = fetch(&hub, &cache, &["steerlab/stalled", "--read-timeout", "1"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("connection lost") && text(&out).contains("retry 1 of 5"), "{}", text(&out));

    // A cached blob of the right size but wrong bytes is caught by its checksum and fetched again.
    let gated = cache.join("models--steerlab--gated");
    let weights = fixture_files("gpt2-tiny").into_iter().find(|f| f.path == "model.safetensors").unwrap();
    let blob = gated.join("blobs").join(&weights.sha256);
    std::fs::write(&blob, vec![0u8; weights.bytes.len()]).unwrap();
    let out = fetch(&hub, &cache, &["steerlab/gated", "--allow-insecure-token"], Some(TOKEN));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("model.safetensors: the cached copy is damaged"), "{}", text(&out));
    assert_eq!(std::fs::read(&blob).unwrap(), weights.bytes);

    // A connection that keeps dropping: retried, then given up with what to do.
    let out = fetch(&hub, &cache, &["steerlab/flaky", "--retries", "1"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("run the same command again to resume"), "{}", text(&out));
    let flaky_blobs = cache.join("models--steerlab--flaky/blobs");
    let partial = std::fs::read_dir(&flaky_blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "incomplete") && std::fs::metadata(p).unwrap().len() > 0);
    assert!(partial.is_some(), "the partial download is kept for the next run");

    // Bad input: nothing is written outside the cache.
    for rev in ["../../x", "/etc", "a//b", "C:evil\\x", "-x"] {
        let out = fetch(&hub, &cache, &["steerlab/gemma2-tiny", &format!("--revision={rev}")], None);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(&format!("\"{rev}\" is not a revision")), "{}", text(&out));
    }
    assert!(!cache.join("x").exists() && !cache.parent().unwrap().join("x").exists());
    let out = fetch(&hub, &cache, &["steerlab/drive"], None);
    assert!(text(&out).contains("file path \"C:/Windows/evil.json\" would leave the snapshot"), "{}", text(&out));
    let out = fetch(&hub, &cache, &["../etc"], None);
    assert!(text(&out).contains("\"../etc\" is not a hub repository name"), "{}", text(&out));
    let out = fetch(&hub, &cache, &["steerlab/absent"], None);
    assert!(text(&out).contains("has no repository steerlab/absent at revision main"), "{}", text(&out));
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // bound, then dropped
    let out = fetch(&format!("http://{closed}"), &cache, &["steerlab/gemma2-tiny"], None);
    assert!(text(&out).contains("cannot reach"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&cache);
}

/// A SAELens id names one folder of its release's repository: `fetch` takes only that folder; `--sae ID` finds it
/// in the cache (or fetches it there when missing) and reads it with the release's config overrides, as
/// `SAE.from_pretrained` does (gpt2-small-res-jb's `center_writing_weights`).
#[test]
fn saelens_ids_fetch_their_folder_and_load_with_the_release_overrides() {
    let sae_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saes/standard");
    let folder = "blocks.1.hook_resid_pre";
    let mut files = vec![];
    for name in ["cfg.json", "sae_weights.safetensors"] {
        let bytes = std::fs::read(sae_dir.join(name)).unwrap();
        let sha256 = hex(&sha2::Sha256::digest(&bytes));
        files.push(File { path: format!("{folder}/{name}"), bytes, lfs: name.ends_with(".safetensors"), sha256 });
    }
    // Another SAE of the release, which fetching one id must leave alone.
    let other =
        File { path: "blocks.2.hook_resid_pre/cfg.json".into(), bytes: b"{}".to_vec(), lfs: false, sha256: "".into() };
    files.push(other);
    let state = Arc::new(Mutex::new(State::default()));
    state
        .lock()
        .unwrap()
        .repos
        .insert("jbloom/GPT2-Small-SAEs-Reformatted".into(), Repo { files, gated: false, cut: None, stall: None });
    let hub = serve(state.clone());
    let tmp = std::env::temp_dir().join(format!("steerlab-saelens-id-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let id = format!("gpt2-small-res-jb/{folder}");

    let out = fetch(&hub, &tmp.join("cache"), &[&id], None);
    assert!(out.status.success(), "{}", text(&out));
    let snapshot = tmp.join("cache/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots").join(COMMIT);
    assert!(snapshot.join(folder).join("sae_weights.safetensors").is_file());
    assert!(!snapshot.join("blocks.2.hook_resid_pre").exists(), "only the id's folder is fetched");

    // Vectors to encode, off-centre so that centring them matters.
    let x: Vec<f32> = (0..3 * 32).map(|i| ((i * 37 % 11) as f32 - 3.0) * 0.7 + 1.5).collect();
    let input = tmp.join("x.safetensors");
    let tensors = [steerlab::tensor_file::NamedTensor::f32("x", vec![3, 32], x)];
    std::fs::write(&input, steerlab::tensor_file::to_safetensors(&tensors, HashMap::new()).unwrap()).unwrap();
    let encode = |sae: &str, cache: &Path, endpoint: Option<&str>| {
        let out_file = tmp.join(format!("acts-{}.safetensors", sae.len() + cache.as_os_str().len()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_steerlab"));
        cmd.args(["sae-encode", "--sae", sae, "--tensor", "x", "--input"]).arg(&input).arg("--out").arg(&out_file);
        cmd.env("HF_HUB_CACHE", cache).env_remove("HF_TOKEN").env("HF_HOME", tmp.join("no-home"));
        match endpoint {
            Some(e) => cmd.env("HF_ENDPOINT", e),
            None => cmd.env("HF_ENDPOINT", "http://127.0.0.1:9"), // nothing answers there
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{sae}: {}", text(&out));
        common::Expected::from_file(&out_file).f32("feature_acts")
    };
    // The same SAE in a plain folder, with and without the release's overrides merged into its cfg.json.
    let plain = tmp.join("plain");
    let merged = tmp.join("merged");
    for dir in [&plain, &merged] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(sae_dir.join("sae_weights.safetensors"), dir.join("sae_weights.safetensors")).unwrap();
    }
    let cfg = std::fs::read_to_string(sae_dir.join("cfg.json")).unwrap();
    std::fs::write(plain.join("cfg.json"), &cfg).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["model_from_pretrained_kwargs"] = serde_json::json!({"center_writing_weights": true});
    std::fs::write(merged.join("cfg.json"), v.to_string()).unwrap();

    let downloads = state.lock().unwrap().log.len();
    let by_id = encode(&id, &tmp.join("cache"), None);
    assert_eq!(state.lock().unwrap().log.len(), downloads, "a cached id is not fetched again");
    let with_overrides = encode(merged.to_str().unwrap(), &tmp.join("cache"), None);
    let without = encode(plain.to_str().unwrap(), &tmp.join("cache"), None);
    assert_eq!(by_id, with_overrides);
    assert!(common::max_abs_diff(&by_id, &without) > 1e-3, "the overrides change the encoding");
    // The cached folder read as a folder gets the release's overrides too.
    assert_eq!(encode(snapshot.join(folder).to_str().unwrap(), &tmp.join("cache"), None), by_id);

    // Not cached: fetched from $HF_ENDPOINT into $HF_HUB_CACHE first.
    assert_eq!(encode(&id, &tmp.join("fresh-cache"), Some(&hub)), by_id);
    assert!(
        tmp.join("fresh-cache/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots")
            .join(COMMIT)
            .join(folder)
            .is_dir()
    );

    // Mistyped ids say what was meant.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steerlab"));
    cmd.args(["sae-encode", "--sae", "gpt2-small-res-jb/blocks.1.hook_resid_pr", "--tensor", "x", "--out", "o"]);
    let out = cmd.arg("--input").arg(&input).output().unwrap();
    assert!(!out.status.success() && text(&out).contains("did you mean blocks.1.hook_resid_pre"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&tmp);
}
