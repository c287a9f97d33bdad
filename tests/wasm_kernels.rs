//! The browser's SIMD128 product loops (src/model/simd128.rs), which no native build compiles: built alone for
//! wasm32 as the site builds them (tests/wasm_kernels/) and checked in node against scalar arithmetic. It needs the
//! wasm32 target and node, which the browser tests need too, so it runs when STEERLAB_BROWSER=1 asks for them.

use std::path::Path;
use std::process::Command;

#[test]
fn simd128_loops_match_scalar_arithmetic() {
    if std::env::var_os("STEERLAB_BROWSER").is_none() {
        eprintln!("skipping the wasm kernel check: set STEERLAB_BROWSER=1 (it needs the wasm32 target and node)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Its own target dir: this test runs while cargo holds the main one. Run from the repository, so that
    // .cargo/config.toml turns SIMD128 on as for the site.
    let target = std::env::temp_dir().join("steerlab-wasm-kernels-target");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--target", "wasm32-unknown-unknown", "--manifest-path"])
        .arg(root.join("tests/wasm_kernels/Cargo.toml"))
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "building tests/wasm_kernels failed: {status}");
    let wasm = target.join("wasm32-unknown-unknown/release/wasm_kernels_check.wasm");
    let script = "const fs = require('fs'); \
        WebAssembly.instantiate(fs.readFileSync(process.argv[1])).then(({ instance }) => { \
          const failed = instance.exports.check(); \
          if (failed) { console.error(`failing case ${failed}`); process.exit(1); } \
        });";
    let out = Command::new("node").args(["-e", script]).arg(&wasm).output().expect("cannot run node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
