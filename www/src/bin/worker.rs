//! The engine's Web Worker: picks WebGPU (or the CPU fallback), loads the embedded default model from the
//! site's hub-layout folder, then runs the page's engine requests off the UI thread, posting events as they
//! come and a reply at the end. A cancel message stops a request at its next step.

#[cfg(target_arch = "wasm32")]
fn main() {
    worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the engine worker runs in a browser: build it with trunk");
}

#[cfg(target_arch = "wasm32")]
mod worker {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;
    use steerlab::device::{DeviceChoice, init_device};
    use steerlab::engine::{Engine, Reply};
    use steerlab::model::{Model, ModelFiles};
    use steerlab_www::{DEFAULT_HUB, DEFAULT_LABEL, DEFAULT_REPO, DEFAULT_REVISION, FromWorker, ToWorker, hub_url};
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::{JsFuture, spawn_local};
    use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

    fn scope() -> DedicatedWorkerGlobalScope {
        js_sys::global().unchecked_into()
    }

    fn post(msg: FromWorker) {
        let json = serde_json::to_string(&msg).expect("messages serialise");
        let _ = scope().post_message(&JsValue::from_str(&json));
    }

    pub fn start() {
        console_error_panic_hook::set_once();
        let engine: Rc<RefCell<Option<Engine>>> = Rc::default();
        let cancels: Rc<RefCell<HashMap<u32, Rc<Cell<bool>>>>> = Rc::default();

        let (slot, flags) = (engine.clone(), cancels.clone());
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            match serde_json::from_str::<ToWorker>(&text) {
                Ok(ToWorker::Cancel { id }) => {
                    if let Some(flag) = flags.borrow().get(&id) {
                        flag.set(true);
                    }
                }
                Ok(ToWorker::Run { id, request }) => {
                    let flag = Rc::new(Cell::new(false));
                    flags.borrow_mut().insert(id, flag.clone());
                    let (slot, flags) = (slot.clone(), flags.clone());
                    spawn_local(async move {
                        // The engine is only replaced before start-up posts Ready, so this borrow never clashes.
                        let guard = slot.borrow();
                        let reply = match guard.as_ref() {
                            None => Reply::Error("the engine is still starting".into()),
                            Some(e) => {
                                match e.handle(request, &flag, &mut |event| post(FromWorker::Event { id, event })).await
                                {
                                    Ok(r) => Reply::Ok(Box::new(r)),
                                    Err(e) => Reply::Error(e.to_string()),
                                }
                            }
                        };
                        drop(guard);
                        flags.borrow_mut().remove(&id);
                        post(FromWorker::Reply { id, reply });
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
            match load(&engine).await {
                Ok(ready) => post(ready),
                Err(e) => post(FromWorker::Failed { error: format!("The engine could not start: {e}") }),
            }
        });
    }

    async fn load(engine: &RefCell<Option<Engine>>) -> Result<FromWorker, String> {
        post(FromWorker::Status { text: "Looking for a WebGPU adapter…".into() });
        let (device, name, fallback) = match init_device(DeviceChoice::Wgpu).await {
            Ok(d) => (d, "WebGPU".to_string(), false),
            Err(_) => {
                let cpu = init_device(DeviceChoice::Cpu).await.map_err(|e| e.to_string())?;
                (cpu, "the CPU, as this browser offers no WebGPU adapter".to_string(), true)
            }
        };
        post(FromWorker::Status { text: format!("Loading {DEFAULT_LABEL} on {name}…") });
        let mut bytes = Vec::new();
        for file in steerlab_www::MODEL_FILES {
            bytes.push(fetch(&hub_url(DEFAULT_HUB, DEFAULT_REPO, DEFAULT_REVISION, file)).await?);
        }
        let config = String::from_utf8(bytes[0].clone()).map_err(|_| "config.json is not UTF-8 text".to_string())?;
        let files = ModelFiles { config_json: &config, safetensors: &bytes[1], tokenizer_json: &bytes[2] };
        let model = Model::from_files(DEFAULT_LABEL, files, &device).map_err(|e| e.to_string())?;
        let n_layers = model.cfg().n_layers;
        engine.borrow_mut().get_or_insert_with(Engine::default).set_model(model);
        Ok(FromWorker::Ready { device: name, fallback, model: DEFAULT_LABEL.into(), n_layers })
    }

    /// The bytes at `url` (relative to the worker's script), or why not.
    async fn fetch(url: &str) -> Result<Vec<u8>, String> {
        let fail =
            |e: JsValue| format!("downloading {url} failed: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")));
        let resp: web_sys::Response = JsFuture::from(scope().fetch_with_str(url)).await.map_err(fail)?.unchecked_into();
        if !resp.ok() {
            return Err(format!("downloading {url} failed: HTTP {}", resp.status()));
        }
        let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
        Ok(js_sys::Uint8Array::new(&buf).to_vec())
    }
}
