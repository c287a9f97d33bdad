//! The browser lab's page. All compute happens in the engine worker (src/bin/worker/); the page sends it
//! requests and renders what comes back (src/page/: one file per view). It is built for wasm32 only (trunk):
//! natively the crate is its shared pieces (messages, catalogue, plots), which `cargo test` tests without
//! compiling Leptos and web-sys for the host.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod page;

#[cfg(target_arch = "wasm32")]
fn main() {
    app::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the lab's page runs in a browser: build it with trunk (scripts/lab.sh)");
}
