//! `steerlab fetch-data` against a local stand-in for raw.githubusercontent.com (`/{repo}/{commit}/{path}`): the
//! cache layout, no second download, the corpus turned into passages, the fetched sets used by another command,
//! and clear errors for a missing file, a file that is not an A/B set and an unknown name.

mod common;

use common::model_dir;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use steerlab::steer::remote::{WIKITEXT, behaviour};

/// Serves `files` by path with a Content-Length, 404 for anything else; counts the requests. One request per
/// connection, and the replies say so (`Connection: close`): a client that pooled the connection would send its next
/// request into a socket this server is closing unread, and get a reset.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(Mutex::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            *counted.lock().unwrap() += 1;
            let reply = match files.get(&path) {
                // A whole reply written out (a length that lies, or none).
                Some(raw) if raw.starts_with(b"HTTP/1.1 ") => raw.clone(),
                Some(body) => [
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                        .into_bytes(),
                    body.clone(),
                ]
                .concat(),
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            };
            let _ = conn.write_all(&reply);
        }
    });
    (addr, count)
}

fn steerlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steerlab")).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn ab(n: usize) -> Vec<u8> {
    let item = |i: usize| {
        format!(
            r#"{{"question": "Would you accept a new goal number {i}?\n\nChoices:\n (A) Yes\n (B) No", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}}"#
        )
    };
    format!("[{}]", (0..n).map(item).collect::<Vec<_>>().join(",\n")).into_bytes()
}

#[test]
fn fetch_data_caches_checks_and_names_the_files() {
    let syc = behaviour("sycophancy").unwrap();
    let hall = behaviour("hallucination").unwrap();
    let at = |f: &steerlab::steer::remote::RemoteFile| format!("/{}/{}/{}", f.repo, f.commit, f.path);
    let wiki = " \n = Robert <unk> = \n \n Robert <unk> is an English actor . He had a guest @-@ starring role .\n";
    let refusal = behaviour("refusal").unwrap();
    let myopic = behaviour("myopic-reward").unwrap();
    let files = HashMap::from([
        (at(&syc.train), ab(6)),
        (at(&syc.test), ab(3)),
        // The connection closes 10 bytes into a body said to be 1000 long.
        (at(&myopic.train), [&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..], &ab(6)[..10]].concat()),
        // No length at all: the body runs until the connection closes.
        (at(&refusal.train), [&b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"[..], &ab(4)].concat()),
        (at(&refusal.test), ab(2)),
        (at(&WIKITEXT), wiki.as_bytes().to_vec()),
        // Contrastive pairs where an A/B set belongs.
        (at(&hall.train), br#"{"positive": "I love it", "negative": "I hate it"}"#.to_vec()),
        (at(&hall.test), ab(3)),
    ]);
    let (base, requests) = serve(files);
    let dir = std::env::temp_dir().join(format!("steerlab-fetch-data-{}", std::process::id()));
    let d = dir.display().to_string();
    let fetch =
        |names: &[&str]| steerlab(&[&["fetch-data", "--base", base.as_str(), "--dir", d.as_str()], names].concat());

    let o = fetch(&["caa/sycophancy", "wikitext-2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("caa/sycophancy: 6 A/B items to build the vector from, 3 held out"), "{out}");
    let train = dir.join(syc.train.cache_path());
    let test = dir.join(syc.test.cache_path());
    assert!(out.contains(&format!("--pairs {} --eval {}", train.display(), test.display())), "{out}");
    let passages = dir.join(WIKITEXT.cache_path()).with_extension("passages.txt");
    assert_eq!(
        std::fs::read_to_string(&passages).unwrap(),
        "Robert is an English actor. He had a guest-starring role.\n"
    );
    assert!(out.contains(&format!("--corpus {}", passages.display())), "{out}");
    let served = *requests.lock().unwrap();
    assert_eq!(served, 3);

    // A second run reads the cache: nothing is fetched again.
    let o = fetch(&["caa/sycophancy"]);
    assert!(o.status.success());
    assert_eq!(*requests.lock().unwrap(), served, "a cached file was fetched again");

    // The fetched sets train and measure a layer sweep.
    let model = model_dir("gpt2-tiny").display().to_string();
    let (t, e) = (train.display().to_string(), test.display().to_string());
    let o = steerlab(&[
        "steerability",
        "--model",
        &model,
        "--pairs",
        &t,
        "--eval",
        &e,
        "--layers",
        "1",
        "--multipliers=-1,0,1",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);

    let o = fetch(&["caa/refusal"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("caa/refusal: 4 A/B items to build the vector from, 2 held out"), "{out}");

    for (names, says) in [
        (&["caa/survival-instinct"][..], "no such file (404)"),
        (&["caa/myopic-reward"], "the transfer"),
        (&["caa/hallucination"], "not an A/B set"),
        (&["caa/honesty"], "no dataset \"honesty\": there are caa/sycophancy"),
    ] {
        let o = fetch(names);
        let (_, err) = text(&o);
        assert!(!o.status.success() && err.contains(says), "{names:?}: {err}");
    }
    assert!(!Path::new(&dir.join(hall.train.cache_path())).exists(), "a file that is not an A/B set stays");
    let cut = dir.join(myopic.train.cache_path());
    assert!(!cut.exists() && !cut.with_extension("incomplete").exists(), "a cut-short download stays");
    let _ = std::fs::remove_dir_all(&dir);
}
