//! The engine's Web Worker: picks WebGPU (or the CPU fallback), loads the models and SAEs the page asks for
//! (from a hub-layout URL through Cache Storage, with progress, or from files the user dropped), then runs the
//! page's engine requests off the UI thread, posting events as they come and a reply at the end. A cancel
//! message stops a request or a download at its next step.

#[cfg(target_arch = "wasm32")]
fn main() {
    worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the engine worker runs in a browser: build it with trunk");
}

#[cfg(target_arch = "wasm32")]
mod fetch;

#[cfg(target_arch = "wasm32")]
mod worker {
    use super::fetch::{Files, read_files};
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;
    use steerlab::device::{DeviceChoice, Precision, has_f16, init_device};
    use steerlab::engine::{Engine, Reply};
    use steerlab::model::config::ModelConfig;
    use steerlab::model::random::RandomWeights;
    use steerlab::model::{Model, ModelFiles};
    use steerlab::sae::Sae;
    use steerlab::sae::config::SaeConfig;
    use steerlab::tokenizer::Tokenizer;
    use steerlab_www::catalog::{EMBEDDED, MODEL_FILES, SAE_FILES, SITE_HUB};
    use steerlab_www::{
        FromWorker, Kind, Source, ToWorker, precision_from_query, random_sae_too_large, software_adapter,
    };
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::spawn_local;
    use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

    fn scope() -> DedicatedWorkerGlobalScope {
        js_sys::global().unchecked_into()
    }

    pub fn post(msg: FromWorker) {
        let json = serde_json::to_string(&msg).expect("messages serialise");
        let _ = scope().post_message(&JsValue::from_str(&json));
    }

    struct State {
        engine: RefCell<Engine>,
        device: RefCell<Option<steerlab::device::Device>>,
        /// How loaded models hold their weights: f16 where the learner asked and the device computes in it.
        precision: Cell<Precision>,
        cancels: RefCell<HashMap<u32, Rc<Cell<bool>>>>,
    }

    pub fn start() {
        // A panic aborts the wasm (no unwinding on wasm32): tell the page why first, so it can say so and start a
        // fresh worker, since this one's state may be half-updated.
        std::panic::set_hook(Box::new(|info| {
            console_error_panic_hook::hook(info);
            post(FromWorker::Crashed { error: info.to_string() });
        }));
        let state = Rc::new(State {
            engine: RefCell::new(Engine::default()),
            device: RefCell::new(None),
            precision: Cell::new(Precision::F32),
            cancels: RefCell::default(),
        });

        let s = state.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            // A message is JSON text, or [JSON text, File...] when it carries dropped files.
            let data = ev.data();
            let (text, files) = match data.dyn_ref::<js_sys::Array>() {
                Some(a) => (a.get(0).as_string(), a.slice(1, a.length())),
                None => (data.as_string(), js_sys::Array::new()),
            };
            let Some(text) = text else { return };
            match serde_json::from_str::<ToWorker>(&text) {
                Ok(ToWorker::Cancel { id }) => {
                    if let Some(flag) = s.cancels.borrow().get(&id) {
                        flag.set(true);
                    }
                }
                Ok(ToWorker::Run { id, request }) => {
                    let (s, flag) = (s.clone(), cancel_flag(&s, id));
                    let stop: steerlab::engine::Stop = Rc::new(move || flag.get());
                    // A stage's progress, at most five messages a second (and always its first).
                    let last = Cell::new(f64::NEG_INFINITY);
                    let progress: steerlab::model::Progress = Rc::new(move |stage: &str, done, total| {
                        let now = js_sys::Date::now();
                        if done == 0 || now - last.get() >= 200.0 {
                            last.set(now);
                            let event = steerlab::engine::Event::Progress { stage: stage.into(), done, total };
                            post(FromWorker::Event { id, event });
                        }
                    });
                    // Requests share the engine read-only; loads wait until none holds it (see `load`).
                    #[allow(clippy::await_holding_refcell_ref)]
                    spawn_local(async move {
                        let reply = {
                            let engine = s.engine.borrow();
                            let on_event = &mut |event| post(FromWorker::Event { id, event });
                            Reply::of(engine.handle_reporting(request, stop, Some(progress), on_event).await)
                        };
                        s.cancels.borrow_mut().remove(&id);
                        post(FromWorker::Reply { id, reply });
                    });
                }
                Ok(ToWorker::Load { id, kind, label, source, config_overrides }) => {
                    let (s, flag) = (s.clone(), cancel_flag(&s, id));
                    spawn_local(async move {
                        let msg =
                            match load(&s, kind, &label, &source, config_overrides.as_deref(), &files, &flag).await {
                                Ok(msg) => msg,
                                Err(error) => FromWorker::LoadFailed { kind, error },
                            };
                        s.cancels.borrow_mut().remove(&id);
                        post(msg);
                    });
                }
                Err(e) => post(FromWorker::Failed {
                    error: format!("The engine worker got a message it does not understand: {e}"),
                }),
            }
        });
        scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();

        spawn_local(async move {
            // The page passes the learner's choices in the loader's URL (`?device=…&precision=…`).
            let search = scope().location().search();
            let choice = steerlab_www::DeviceChoice::from_query(&search).unwrap_or(steerlab_www::DeviceChoice::Auto);
            let asked = precision_from_query(&search).unwrap_or_default();
            post(FromWorker::Status { text: "Looking for a WebGPU adapter…".into() });
            let adapter = adapter_facts().await;
            let (use_gpu, why) = device_plan(choice, adapter.as_ref());
            let gpu = match use_gpu {
                true => init_device(DeviceChoice::Wgpu).await.ok(),
                false => None,
            };
            let (device, name, fallback, why) = match gpu {
                Some(d) => {
                    // Batches are cut to the adapter's own binding limit (the device is created with it).
                    if let Some(limits) = adapter.as_ref().and_then(|a| a.limits) {
                        state.engine.borrow_mut().limits = limits;
                    }
                    (Ok(d), "WebGPU", false, why)
                }
                None if use_gpu => (
                    init_device(DeviceChoice::Cpu).await,
                    "the CPU fallback",
                    true,
                    "WebGPU would not start here, so the lab uses the CPU. It works, only slower than a GPU".into(),
                ),
                None => (init_device(DeviceChoice::Cpu).await, "the CPU fallback", true, why),
            };
            match device {
                Ok(d) => {
                    let (precision, device, why) = match asked {
                        Precision::F16 if has_f16(&d) => (Precision::F16, format!("{name} with f16 weights"), why),
                        Precision::F16 => (
                            Precision::F32,
                            name.to_string(),
                            format!(
                                "{why}; f16 weights need f16 arithmetic (WebGPU's shader-f16), which {name} lacks \
                                 here, so the weights stay f32"
                            ),
                        ),
                        Precision::F32 => (Precision::F32, name.to_string(), why),
                    };
                    state.precision.set(precision);
                    *state.device.borrow_mut() = Some(d);
                    post(FromWorker::Device { device, fallback, why });
                }
                Err(e) => post(FromWorker::Failed { error: format!("The engine could not start: {e}") }),
            }
        });
    }

    /// What the browser says of its WebGPU adapter.
    struct AdapterFacts {
        /// Vendor, architecture, device and description, where given.
        names: Vec<String>,
        fallback: bool,
        /// Its largest storage binding and buffer, as batch limits.
        limits: Option<steerlab::model::batch::Limits>,
    }

    /// Whether to run on WebGPU for `choice`, and why, in words the page shows after "Running on …: ".
    fn device_plan(choice: steerlab_www::DeviceChoice, adapter: Option<&AdapterFacts>) -> (bool, String) {
        use steerlab_www::DeviceChoice::*;
        let named = |a: &AdapterFacts| if a.names.is_empty() { "unnamed".to_string() } else { a.names.join(" · ") };
        let software = adapter.is_some_and(|a| software_adapter(a.fallback, &a.names));
        match (choice, adapter) {
            (Cpu, _) => (false, "you chose the CPU under Engine device".into()),
            (_, None) => (
                false,
                "this browser offers no WebGPU adapter, so the lab uses the CPU. It works, only \
                slower than a GPU"
                    .into(),
            ),
            (Auto, Some(a)) if software => (
                false,
                format!(
                    "this browser's WebGPU adapter ({}) is a software renderer, many times slower here than the CPU \
                 (choose WebGPU under Engine device to use it anyway)",
                    named(a)
                ),
            ),
            (Auto, Some(a)) => (true, format!("a hardware adapter ({})", named(a))),
            (WebGpu, Some(a)) if software => (
                true,
                format!(
                    "you chose it under Engine device; its adapter ({}) is a software renderer, slower than the CPU \
                 here",
                    named(a)
                ),
            ),
            (WebGpu, Some(a)) => (true, format!("you chose it under Engine device ({})", named(a))),
        }
    }

    async fn adapter_facts() -> Option<AdapterFacts> {
        use js_sys::Reflect;
        let get = |v: &JsValue, k: &str| Reflect::get(v, &k.into()).ok().filter(|v| !v.is_undefined());
        let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
        let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
        let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
        let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| !a.is_null())?;
        let info = get(&adapter, "info");
        let names = ["vendor", "architecture", "device", "description"]
            .iter()
            .filter_map(|k| info.as_ref().and_then(|i| get(i, k)).and_then(|v| v.as_string()))
            .filter(|s| !s.is_empty())
            .collect();
        let flag = |v: Option<JsValue>| v.and_then(|f| f.as_bool());
        let fallback = flag(info.as_ref().and_then(|i| get(i, "isFallbackAdapter")))
            .or_else(|| flag(get(&adapter, "isFallbackAdapter")))
            .unwrap_or(false);
        let limits = get(&adapter, "limits").and_then(|limits| {
            let binding = get(&limits, "maxStorageBufferBindingSize")?.as_f64()?;
            let buffer = get(&limits, "maxBufferSize").and_then(|b| b.as_f64()).unwrap_or(binding);
            let defaults = steerlab::model::batch::Limits::default();
            Some(steerlab::model::batch::Limits { max_binding_bytes: binding.min(buffer) as u64, ..defaults })
        });
        Some(AdapterFacts { names, fallback, limits })
    }

    fn cancel_flag(s: &State, id: u32) -> Rc<Cell<bool>> {
        let flag = Rc::new(Cell::new(false));
        s.cancels.borrow_mut().insert(id, flag.clone());
        flag
    }

    async fn load(
        s: &State,
        kind: Kind,
        label: &str,
        source: &Source,
        overrides: Option<&str>,
        dropped: &js_sys::Array,
        cancel: &Cell<bool>,
    ) -> Result<FromWorker, String> {
        let device = s.device.borrow().clone().ok_or("the engine has no device yet")?;
        let names: &[&str] = match kind {
            Kind::Model => &MODEL_FILES,
            Kind::Sae => &SAE_FILES,
        };
        if let Source::Random { config } = source {
            return match kind {
                Kind::Model => load_random_model(s, label, config, &device, cancel).await,
                Kind::Sae => load_random_sae(s, label, config, overrides, &device, cancel).await,
            };
        }
        let Files(bytes) = read_files(source, names, dropped, cancel).await?;
        let text =
            |i: usize| String::from_utf8(bytes[i].clone()).map_err(|_| format!("{} is not UTF-8 text", names[i]));
        post(FromWorker::Status { text: format!("Reading {label}…") });
        match kind {
            Kind::Model => {
                let config = text(0)?;
                let files = ModelFiles { config_json: &config, safetensors: &bytes[1], tokenizer_json: &bytes[2] };
                let model = Model::from_files(label, files, &device)
                    .and_then(|m| m.with_precision(s.precision.get()))
                    .map_err(|e| e.to_string())?;
                let n_layers = model.cfg().n_layers;
                engine_mut(s, cancel).await?.set_model(model);
                Ok(FromWorker::Loaded { kind, label: label.into(), n_layers, hook: None })
            }
            Kind::Sae => {
                let cfg = steerlab::sae::config::with_overrides(&text(0)?, overrides)?;
                let sae = Sae::from_files(label, &cfg, &bytes[1], &device).map_err(|e| e.to_string())?;
                install_sae(s, label, sae, cancel).await
            }
        }
    }

    /// Puts `sae` beside the loaded model.
    async fn install_sae(s: &State, label: &str, sae: Sae, cancel: &Cell<bool>) -> Result<FromWorker, String> {
        let hook = sae.cfg.hook_name.clone();
        let mut engine = engine_mut(s, cancel).await?;
        engine.set_sae(sae).map_err(|e| format!("{label} does not fit the loaded model: {e}"))?;
        let n_layers = engine.model.as_ref().map_or(0, |m| m.cfg().n_layers);
        Ok(FromWorker::Loaded { kind: Kind::Sae, label: label.into(), n_layers, hook: Some(hook) })
    }

    /// A model of `config`'s shape with random weights (steerlab::model::random) and the embedded GPT-2 tokenizer.
    async fn load_random_model(
        s: &State,
        label: &str,
        config: &str,
        device: &steerlab::device::Device,
        cancel: &Cell<bool>,
    ) -> Result<FromWorker, String> {
        let embedded = Source::Hub {
            base: SITE_HUB.into(),
            repo: EMBEDDED.repo.into(),
            revision: EMBEDDED.revision.into(),
            folder: None,
        };
        let Files(tokenizer) = read_files(&embedded, &["tokenizer.json"], &js_sys::Array::new(), cancel).await?;
        let cfg = ModelConfig::from_json(config, "config").map_err(|e| e.to_string())?;
        let net = Model::build(cfg, &RandomWeights { seed: 0 }, device).map_err(|e| e.to_string())?;
        let tokenizer = Tokenizer::from_bytes(&tokenizer[0], "tokenizer.json").map_err(|e| e.to_string())?;
        let model = Model::new(label, net, tokenizer).with_precision(s.precision.get()).map_err(|e| e.to_string())?;
        let n_layers = model.cfg().n_layers;
        engine_mut(s, cancel).await?.set_model(model);
        Ok(FromWorker::Loaded { kind: Kind::Model, label: label.into(), n_layers, hook: None })
    }

    /// An SAE of `config`'s (a cfg.json's) sizes with random weights (steerlab::sae::random), if a tab holds it.
    async fn load_random_sae(
        s: &State,
        label: &str,
        config: &str,
        overrides: Option<&str>,
        device: &steerlab::device::Device,
        cancel: &Cell<bool>,
    ) -> Result<FromWorker, String> {
        let cfg = steerlab::sae::config::with_overrides(config, overrides)?;
        let cfg = SaeConfig::from_json(&cfg, "cfg.json").map_err(|e| e.to_string())?;
        if let Some(e) = random_sae_too_large(cfg.d_in, cfg.d_sae) {
            return Err(e);
        }
        post(FromWorker::Status { text: format!("Making {label}…") });
        let sae = Sae::random(label, cfg, 7, device).map_err(|e| e.to_string())?;
        install_sae(s, label, sae, cancel).await
    }

    /// The engine, to swap a model or SAE in: a request still running holds it, so wait for it (or a cancel).
    async fn engine_mut<'a>(s: &'a State, cancel: &Cell<bool>) -> Result<std::cell::RefMut<'a, Engine>, String> {
        loop {
            if let Ok(e) = s.engine.try_borrow_mut() {
                return Ok(e);
            }
            if cancel.get() {
                return Err("cancelled".into());
            }
            sleep(50).await;
        }
    }

    async fn sleep(ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}
