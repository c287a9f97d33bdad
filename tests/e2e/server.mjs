// A static file server for the built site (dist/), with the MIME types browsers insist on (wasm, JS modules).
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml",
  ".webmanifest": "application/manifest+json", ".png": "image/png", ".safetensors": "application/octet-stream",
};

/**
 * Serves `root` on a free port of 127.0.0.1 under the path `base` (a site built with `--public-url /steerlab/` is
 * served at `/steerlab/`, as a GitHub Pages project site is; nothing answers outside it); resolves to { url, close }.
 */
export function serve(root, base = "/") {
  const server = createServer(async (req, res) => {
    const full = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const inside = full.startsWith(base) ? full.slice(base.length - 1) : null;
    const path = normalize(inside ?? "/nowhere/").replace(/^(\.\.[/\\])+/, "");
    let file = inside === null ? "" : join(root, path);
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}${base}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    });
  });
}

/**
 * A stand-in for the Hugging Face hub on another origin: `/{owner}/{repo}/resolve/{revision}/{path}` for any
 * repository answers with the embedded fixture's files (a model's three files, or an SAE folder's two), with the
 * hub's CORS header. Under `/slow/` it trickles bodies out (8 kB every 50 ms) so a download can be stopped.
 * `requests` lists the paths asked for.
 */
export function mirror(hubRoot) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    requests.push(path);
    const m = path.match(/^(\/slow)?\/[^/]+\/[^/]+\/resolve\/[^/]+\/(.+)$/);
    const name = m?.[2].split("/").pop();
    const file = !m ? null
      : ["config.json", "model.safetensors", "tokenizer.json"].includes(m[2])
        ? join(hubRoot, "steerlab/gpt2-tiny/resolve/main", m[2])
        : ["cfg.json", "sae_weights.safetensors"].includes(name) && m[2].includes("/")
          ? join(hubRoot, "steerlab/gpt2-tiny-saes/resolve/main/blocks.1.hook_resid_pre", name)
          : null;
    const headers = { "access-control-allow-origin": "*" };
    let body;
    try {
      body = await readFile(file);
    } catch {
      res.writeHead(404, { ...headers, "content-type": "text/plain" });
      res.end("Entry not found");
      return;
    }
    res.writeHead(200, { ...headers, "content-type": "application/octet-stream", "content-length": body.length });
    if (!m[1]) return res.end(body);
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= body.length) {
        clearInterval(timer);
        return res.end();
      }
      res.write(body.subarray(at, at + 8192));
      at += 8192;
    }, 50);
    res.on("close", () => clearInterval(timer));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    });
  });
}

/**
 * A stand-in for raw.githubusercontent.com on another origin: `files` maps a path (`/{repo}/{commit}/{path}`) to
 * its text, answered with the CORS header raw files carry; anything else is a 404. `requests` lists the paths
 * asked for.
 */
export function rawMirror(files) {
  const requests = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    requests.push(path);
    const headers = { "access-control-allow-origin": "*" };
    const body = files.get(path);
    if (body === undefined) {
      res.writeHead(404, { ...headers, "content-type": "text/plain" });
      return res.end("404: Not Found");
    }
    res.writeHead(200, { ...headers, "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    });
  });
}
