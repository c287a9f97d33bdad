//! The browser lab's first page: picks WebGPU (or the CPU, with a note), loads the embedded default
//! model through the engine and generates text from a prompt, token by token.

use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::RefCell;
use std::rc::Rc;
use steerlab::device::{DeviceChoice, init_device};
use steerlab::model::generate::{GenerateOptions, generate};
use steerlab::model::hooks::Hooks;
use steerlab::model::{Model, ModelFiles};

/// The embedded default: a tiny random-weight GPT-2 with the real tokenizer, so the page works with
/// no download.
const DEFAULT_NAME: &str = "gpt2-tiny (embedded, random weights)";
const DEFAULT_CONFIG: &str = include_str!("../../tests/fixtures/models/gpt2-tiny/config.json");
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../tests/fixtures/models/gpt2-tiny/model.safetensors");
const DEFAULT_TOKENIZER: &[u8] = include_bytes!("../../tests/fixtures/models/gpt2-tiny/tokenizer.json");

#[derive(Clone, PartialEq)]
enum Status {
    Info(String),
    Warn(String),
    Error(String),
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let (status, set_status) = signal(Status::Info("Looking for a WebGPU adapter…".into()));
    let (prompt, set_prompt) = signal(String::from("I think that"));
    let (output, set_output) = signal(String::new());
    let (busy, set_busy) = signal(true);
    let model: Rc<RefCell<Option<Model>>> = Rc::new(RefCell::new(None));

    let slot = model.clone();
    spawn_local(async move {
        let (device, note) = match init_device(DeviceChoice::Wgpu).await {
            Ok(d) => (d, Status::Info(format!("WebGPU ready. Model: {DEFAULT_NAME}."))),
            Err(e) => (
                init_device(DeviceChoice::Cpu).await.expect("the CPU device always exists"),
                Status::Warn(format!("No WebGPU ({e}); running on the CPU, which is slower. Model: {DEFAULT_NAME}.")),
            ),
        };
        let files =
            ModelFiles { config_json: DEFAULT_CONFIG, safetensors: DEFAULT_WEIGHTS, tokenizer_json: DEFAULT_TOKENIZER };
        match Model::from_files(DEFAULT_NAME, files, &device) {
            Ok(m) => {
                *slot.borrow_mut() = Some(m);
                set_status.set(note);
                set_busy.set(false);
            }
            Err(e) => set_status.set(Status::Error(format!("Loading the model failed: {e}"))),
        }
    });

    let on_generate = move |_| {
        let model = model.clone();
        set_busy.set(true);
        set_output.set(String::new());
        spawn_local(async move {
            let guard = model.borrow();
            let Some(m) = guard.as_ref() else { return };
            let text = prompt.get_untracked();
            let result = async {
                let tokens = m.encode(&text, false)?;
                let mut so_far = Vec::new();
                let opts = GenerateOptions { max_new_tokens: 24, ..Default::default() };
                generate(m, &tokens, &mut Hooks::default(), &opts, |t| {
                    so_far.push(t);
                    if let Ok(s) = m.tokenizer.decode(&so_far) {
                        set_output.set(s);
                    }
                    true
                })
                .await
            }
            .await;
            if let Err(e) = result {
                set_status.set(Status::Error(e.to_string()));
            }
            set_busy.set(false);
        });
    };

    view! {
        <main>
            <h1>"steerlab"</h1>
            <p class="tagline">"Steering vectors and sparse autoencoders, on your own GPU."</p>
            {move || {
                let (class, text) = match status.get() {
                    Status::Info(t) => ("status", t),
                    Status::Warn(t) => ("status warn", t),
                    Status::Error(t) => ("status error", t),
                };
                view! { <p class=class role="status">{text}</p> }
            }}
            <div class="row">
                <input
                    type="text"
                    aria-label="Prompt"
                    prop:value=move || prompt.get()
                    on:input=move |ev| set_prompt.set(event_target_value(&ev))
                />
                <button on:click=on_generate disabled=move || busy.get()>"Generate"</button>
            </div>
            <pre class="output">
                <b>{move || prompt.get()}</b>
                {move || output.get()}
            </pre>
        </main>
    }
}
