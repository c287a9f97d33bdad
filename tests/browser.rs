//! The browser lab end to end: builds the site with trunk (or takes STEERLAB_DIST, a site already built) and runs
//! tests/e2e/run.mjs in headless Chromium, with WebGPU (SwiftShader) and with the CPU fallback. It needs trunk,
//! wasm-bindgen-cli, node/npm and chromium, and a cold wasm build takes about 25 minutes on 2 cores, so it runs
//! only when STEERLAB_BROWSER=1 asks for it; then a missing tool fails it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn works(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

#[test]
fn browser_lab_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let prebuilt = std::env::var_os("STEERLAB_DIST").map(PathBuf::from);
    let mut tools = vec!["node", "npm", chromium.as_str()];
    if prebuilt.is_none() {
        tools.extend(["trunk", "wasm-bindgen"]);
    }
    if std::env::var_os("STEERLAB_BROWSER").is_none() {
        eprintln!("skipping the browser tests: set STEERLAB_BROWSER=1 to build the site and run them");
        return;
    }
    let missing: Vec<&str> = tools.into_iter().filter(|t| !works(t)).collect();
    assert!(missing.is_empty(), "missing for the browser tests: {missing:?}");
    let dist = match prebuilt {
        Some(d) => d,
        None => {
            // Its own target dir: this test runs while cargo holds the main one.
            let target = std::env::temp_dir().join("steerlab-browser-target");
            let dist = std::env::temp_dir().join(format!("steerlab-dist-{}", std::process::id()));
            run(Command::new("trunk")
                .args(["build", "--offline", "--dist"])
                .arg(&dist)
                .current_dir(root)
                .env("CARGO_TARGET_DIR", target));
            dist
        }
    };
    let e2e = root.join("tests/e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&e2e));
    }
    run(Command::new("node")
        .arg("run.mjs")
        .current_dir(&e2e)
        .env("STEERLAB_DIST", &dist)
        .env("CHROMIUM", &chromium)
        .env("STEERLAB_BIN", env!("CARGO_BIN_EXE_steerlab")));
}
