//! The engine worker's stack: wasm32's default is 1 MiB, which the nested async flows of a dev (unoptimised) build
//! overflow (a "memory access out of bounds" trap in the worker). 16 MiB, like a native thread's, for both bins.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-bins=-zstack-size=16777216");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
