//! Saving results from the page: files built in memory and handed to the browser's download, plots as SVG or
//! drawn onto a canvas as PNG, steering vectors as safetensors.

use std::collections::HashMap;
use steerlab::tensor_file::{NamedTensor, to_safetensors};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Offers `bytes` as a download named `name`.
pub fn download(name: &str, mime: &str, bytes: &[u8]) {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    click_link(name, &url);
    // Revoked a minute later: some browsers read the blob after the click returns.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    let _ =
        leptos::prelude::window().set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
}

fn click_link(name: &str, href: &str) {
    let document = leptos::prelude::document();
    if let Ok(a) = document.create_element("a").map(|a| a.unchecked_into::<web_sys::HtmlAnchorElement>()) {
        a.set_href(href);
        a.set_download(name);
        a.click();
    }
}

/// A plot as PNG: the SVG drawn at twice its size onto a canvas.
pub fn png(name: &str, svg: &str) {
    let Ok(img) = web_sys::HtmlImageElement::new() else { return };
    let (name, svg_img) = (name.to_string(), img.clone());
    let onload = Closure::once(move || {
        let document = leptos::prelude::document();
        let Ok(canvas) = document.create_element("canvas") else { return };
        let canvas: web_sys::HtmlCanvasElement = canvas.unchecked_into();
        let (w, h) = (svg_img.natural_width().max(560) * 2, svg_img.natural_height().max(300) * 2);
        canvas.set_width(w);
        canvas.set_height(h);
        let Ok(Some(ctx)) = canvas.get_context("2d") else { return };
        let ctx: web_sys::CanvasRenderingContext2d = ctx.unchecked_into();
        let _ = ctx.draw_image_with_html_image_element_and_dw_and_dh(&svg_img, 0.0, 0.0, w as f64, h as f64);
        if let Ok(url) = canvas.to_data_url_with_type("image/png") {
            click_link(&name, &url);
        }
    });
    img.set_onload(Some(onload.as_ref().unchecked_ref()));
    onload.forget();
    img.set_src(&format!("data:image/svg+xml;charset=utf-8,{}", js_sys::encode_uri_component(svg)));
}

/// Rows as CSV, quoting fields that need it.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let field = |f: &str| {
        if f.contains([',', '"', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.to_string() }
    };
    let mut out = header.iter().map(|h| field(h)).collect::<Vec<_>>().join(",") + "\n";
    for r in rows {
        out += &(r.iter().map(|f| field(f)).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// A steering vector as the CLI writes it: one tensor `steering_vector` ([d] or [rows, d]) and its metadata.
pub fn vector_file(values: &[f32], rows: Option<usize>, meta: &[(&str, String)]) -> Vec<u8> {
    let shape = match rows {
        Some(r) => vec![r, values.len() / r.max(1)],
        None => vec![values.len()],
    };
    let metadata: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    to_safetensors(&[NamedTensor::f32("steering_vector", shape, values.to_vec())], metadata)
        .expect("a vector always serialises")
}
