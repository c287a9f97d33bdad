// Browser benchmark: time to first token, forward-pass time, CAA time and the steerability flow (CAA at up to four
// layers from the 24 built-in A/B items, then each layer's steerability over 5 multipliers x 24 items, batched) in
// the lab's engine worker, for the
// embedded fixture model and for GPT-2 small's full-size config with random weights, on WebGPU and on the CPU
// fallback side by side. Run it against a built site: `trunk build --release --offline && node bench.mjs`
// (STEERLAB_DIST picks another build; STEERLAB_BENCH_RUNS the timed runs per figure, default 3; STEERLAB_BENCH_ONLY
// "WebGPU" or "CPU fallback" runs one side).
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { serve } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.STEERLAB_DIST ?? join(here, "..", "..", "dist");
const runs = Number(process.env.STEERLAB_BENCH_RUNS ?? 3);
const GPT2_SMALL = JSON.stringify({
  model_type: "gpt2", n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257,
  activation_function: "gelu_new", layer_norm_epsilon: 1e-5, bos_token_id: 50256, eos_token_id: 50256,
});
// (label, source, sentences in the forward-pass prompt: ~10 tokens each, within the fixture's 64 positions)
const MODELS = [
  ["fixture (gpt2-tiny)", { from: "hub", base: "hub", repo: "steerlab/gpt2-tiny", revision: "main", folder: null }, 4],
  ["GPT-2 small (random)", { from: "random", config: GPT2_SMALL }, 12],
];

// Runs in the page: drives a fresh engine worker with the lab's own messages (www/src/lib.rs) and times them.
async function measure([label, source, sentences, runs]) {
  const worker = new Worker("./worker_loader.js");
  const waiters = [];
  let device = null;
  worker.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "device") device = msg;
    for (const w of [...waiters]) if (w.test(msg)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(msg); }
  };
  const next = (test) => new Promise((resolve) => waiters.push({ test, resolve }));
  const send = (m) => worker.postMessage(JSON.stringify(m));
  let id = 1;
  const run = async (request, onFirstEvent) => {
    const my = id++;
    const t0 = performance.now();
    let first = null;
    const firstEvent = next((m) => m.type === "event" && m.id === my).then(() => { first = performance.now() - t0; });
    send({ type: "run", id: my, request });
    const reply = await next((m) => m.type === "reply" && m.id === my);
    if (reply.reply.error) throw new Error(reply.reply.error);
    if (onFirstEvent) await firstEvent;
    return { total: performance.now() - t0, first };
  };
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  await next((m) => m.type === "device" || m.type === "failed");
  if (!device) throw new Error("the worker found no device");
  const t0 = performance.now();
  send({ type: "load", id: id++, kind: "model", label, source });
  const loaded = await next((m) => m.type === "loaded" || m.type === "load_failed");
  if (loaded.type !== "loaded") throw new Error(loaded.error);
  const load = performance.now() - t0;
  const hook = `blocks.${Math.floor(loaded.n_layers / 2)}.hook_resid_pre`;
  const prompt = "The quick brown fox jumps over the lazy dog. ".repeat(sentences);
  const caa = { op: "caa", dataset: { from: "built_in", file: "love-hate.jsonl" }, hook };
  const pass = { op: "generate", prompt, options: { max_new_tokens: 1 } };
  const gen = { op: "generate", prompt: "I think that", options: { max_new_tokens: 16 } };
  const ab = { from: "built_in", file: "corrigibility-ab.json" };
  const layers = [2, 4, 6, 8].filter((l) => l < loaded.n_layers);
  const flow = { op: "layer_sweep", train: ab, eval: ab, layers: layers.length ? layers : [0], multipliers: [-2, -1, 0, 1, 2] };
  for (const r of [caa, pass, gen, flow]) await run(r, r === gen); // warm-up: shader compilation, allocation
  const times = { caa: [], pass: [], ttft: [], decode: [], flow: [] };
  for (let i = 0; i < runs; i++) {
    times.flow.push((await run(flow)).total);
    times.caa.push((await run(caa)).total);
    times.pass.push((await run(pass)).total);
    const g = await run(gen, true);
    times.ttft.push(g.first);
    times.decode.push((15 * 1000) / (g.total - g.first));
  }
  worker.terminate();
  return {
    device: device.device, load, caa: median(times.caa), pass: median(times.pass),
    ttft: median(times.ttft), decode: median(times.decode), flow: median(times.flow), layers: flow.layers.length,
  };
}

const server = await serve(dist);
const rows = [];
for (const [name, args] of [
  ["WebGPU", ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader"]],
  ["CPU fallback", ["--disable-features=WebGPU"]],
].filter(([name]) => !process.env.STEERLAB_BENCH_ONLY || process.env.STEERLAB_BENCH_ONLY === name)) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", ...args],
  });
  const page = await browser.newPage();
  // A plain page of the same origin (not the lab, whose own worker would compete for the device).
  await page.goto(server.url + "bench-blank");
  for (const [label, source, sentences] of MODELS) {
    try {
      const r = await page.evaluate(measure, [label, source, sentences, runs]);
      rows.push([name, `${label}, ${sentences * 10}`, r]);
      console.error(`done: ${name}, ${label} (engine on ${r.device})`);
    } catch (e) {
      console.error(`failed: ${name}, ${label}: ${e.message}`);
    }
  }
  await browser.close();
}
await server.close();

const f = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
console.log(`median of ${runs} runs after a warm-up; the forward pass reads a prompt of about the token count ` +
  "shown after the model; first token and decode (15 tokens) continue \"I think that\"");
const widths = [14, 27, 10, 10, 16, 14, 13, 13, 0];
console.log(["browser", "model, tokens", "engine on", "load", "CAA (24 pairs)", "forward pass", "first token", "decode",
  "steerability flow (layers)"].map((h, i) => h.padEnd(widths[i])).join(""));
for (const [name, label, r] of rows) {
  console.log([name, label, r.device, f(r.load), f(r.caa), f(r.pass), f(r.ttft), `${r.decode.toFixed(1)} tok/s`,
    `${f(r.flow)} (${r.layers})`].map((c, i) => c.padEnd(widths[i])).join(""));
}
