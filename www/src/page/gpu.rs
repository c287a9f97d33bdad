//! What WebGPU adapter this browser offers, and its limits that matter here (the storage-binding limit decides
//! whether a big embedding must be split). Read through JS reflection: web-sys's WebGPU types are unstable.

use js_sys::{Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The limits shown, with how to read each.
const LIMITS: [(&str, &str); 5] = [
    ("maxStorageBufferBindingSize", "largest tensor one shader binding can read"),
    ("maxBufferSize", "largest buffer"),
    ("maxComputeWorkgroupStorageSize", "shared memory per workgroup"),
    ("maxComputeInvocationsPerWorkgroup", "threads per workgroup"),
    ("maxStorageBuffersPerShaderStage", "storage bindings per shader"),
];

#[derive(Clone, PartialEq)]
pub struct AdapterInfo {
    /// Vendor, architecture and description, as the browser reports them (often partly blank for privacy).
    pub name: String,
    pub fallback: bool,
    /// (limit, meaning, value)
    pub limits: Vec<(&'static str, &'static str, f64)>,
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The adapter, or why there is none.
pub async fn adapter_info() -> Result<AdapterInfo, String> {
    let gpu = get(&web_sys::window().ok_or("no window")?.navigator(), "gpu");
    if gpu.is_undefined() {
        return Err("this browser offers no WebGPU (navigator.gpu is missing)".into());
    }
    let request: js_sys::Function = get(&gpu, "requestAdapter").dyn_into().map_err(|_| "requestAdapter is missing")?;
    let promise: Promise =
        request.call0(&gpu).map_err(|e| format!("{e:?}"))?.dyn_into().map_err(|_| "not a promise")?;
    let adapter = JsFuture::from(promise).await.map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU is present but offers no adapter (blocklisted GPU or disabled)".into());
    }
    let info = get(&adapter, "info");
    let parts: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|k| get(&info, k).as_string())
        .filter(|s| !s.is_empty())
        .collect();
    let limits_js = get(&adapter, "limits");
    let limits = LIMITS.iter().filter_map(|(k, what)| get(&limits_js, k).as_f64().map(|v| (*k, *what, v))).collect();
    let fallback = get(&info, "isFallbackAdapter").as_bool().or_else(|| get(&adapter, "isFallbackAdapter").as_bool());
    Ok(AdapterInfo {
        name: if parts.is_empty() { "unnamed adapter".into() } else { parts.join(" · ") },
        fallback: fallback == Some(true),
        limits,
    })
}
