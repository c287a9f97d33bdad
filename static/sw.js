// steerlab's service worker: keeps the app shell (page, engine worker, styles, the embedded model) so that after
// one visit the lab opens with the network off. Same-origin requests go to the network first (so an updated site
// is seen at once) and fall back to the cache. Only the shell is kept here: files listed below or linked from
// index.html, each under MAX_FILE_BYTES; a good response refreshes a file already kept and adds nothing else, so
// no other request (a permalink's query, a typo, a large file) grows the cache. Downloaded models live in their
// own cache (steerlab-models-v1), which the engine worker fills with the files the learner chose.
const SHELL = "steerlab-shell-v3";
// The engine worker's wasm is the largest shell file (tens of MB in a dev build, a few in a release one).
const MAX_FILE_BYTES = 128 * 1024 * 1024;
// Files whose names trunk does not hash; the page's hashed files are read from index.html at install.
const FIXED = [
  "./", "./index.html", "./worker_loader.js", "./worker.js", "./worker_bg.wasm", "./manifest.webmanifest",
  "./icon.svg", "./icon-192.png", "./icon-512.png",
  "./hub/steerlab/gpt2-tiny/resolve/main/config.json",
  "./hub/steerlab/gpt2-tiny/resolve/main/model.safetensors",
  "./hub/steerlab/gpt2-tiny/resolve/main/tokenizer.json",
  "./hub/steerlab/gpt2-tiny-saes/resolve/main/blocks.1.hook_resid_pre/cfg.json",
  "./hub/steerlab/gpt2-tiny-saes/resolve/main/blocks.1.hook_resid_pre/sae_weights.safetensors",
];

async function precache() {
  const cache = await caches.open(SHELL);
  const html = await (await fetch("./index.html", { cache: "no-cache" })).text();
  const linked = [...html.matchAll(/(?:href|src)="([^"#]+)"|'([^']+\.(?:js|wasm))'/g)]
    .map((m) => m[1] ?? m[2])
    .filter((u) => !/^[a-z]+:/i.test(u));
  // Resolved against the site's own folder, so a site served from a sub-path (--public-url /steerlab/) keeps the
  // right files.
  const urls = [...new Set([...FIXED, ...linked].map((u) => new URL(u, self.registration.scope).href))];
  // One missing optional file must not stop the rest from being kept.
  await Promise.all(urls.map(async (u) => {
    try {
      const r = await fetch(u, { cache: "no-cache" });
      if (r.ok && await small(r)) await cache.put(u, r);
    } catch (_) { /* offline during install: the next visit's install tries again */ }
  }));
}

// Whether a response may be kept: its declared length, else its actual one, within the cap.
async function small(r) {
  const n = Number(r.headers.get("content-length"));
  if (Number.isFinite(n) && n > 0) return n <= MAX_FILE_BYTES;
  return (await r.clone().blob()).size <= MAX_FILE_BYTES;
}

self.addEventListener("install", (e) => {
  e.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith("steerlab-shell-") && k !== SHELL) await caches.delete(k);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin) return;
  e.respondWith((async () => {
    const cache = await caches.open(SHELL);
    try {
      const r = await fetch(e.request);
      if (r.status === 200 && await cache.match(e.request) && await small(r)) cache.put(e.request, r.clone());
      return r;
    } catch (err) {
      // Offline: the page itself for any navigation inside the lab, else the file as last seen.
      const hit = await cache.match(e.request, { ignoreSearch: true })
        ?? (e.request.mode === "navigate" ? await cache.match(new URL("./index.html", self.registration.scope).href) : undefined);
      if (hit) return hit;
      throw err;
    }
  })());
});
