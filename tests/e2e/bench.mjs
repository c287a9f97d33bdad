// Browser benchmark: time to first token, forward-pass time, decode of one continuation and of the unsteered and
// steered ones together (as the Generate panel with a vector), CAA time, the steerability flow (CAA at up to four
// layers from the 24 built-in A/B items, then each layer's steerability over 5 multipliers x 24 items, batched), and
// with an SAE loaded the decompose flow (the five diagnostics and the steerability table, as the lab's Decompose
// panel runs them) and the features flow (10 features promoting " love": output and input scores, side effects) in
// the lab's engine worker, for the embedded fixture model with its SAE and for GPT-2 small's full-size config with
// random weights and a random 24,576-feature SAE (the same work as `steerlab bench --flow decompose|features`), on
// WebGPU and on the CPU fallback side by side. Run it against a built site: `bash scripts/build_site.sh && node
// tests/e2e/bench.mjs` (STEERLAB_DIST picks another build, STEERLAB_BASE the path it was built for, as in run.mjs;
// STEERLAB_BENCH_RUNS the timed runs per figure, default 3; STEERLAB_BENCH_WARMUP=0 skips the warm-up runs;
// STEERLAB_BENCH_ONLY "WebGPU" or "CPU fallback" runs one side; STEERLAB_BENCH_MODELS "fixture" or "GPT-2" one
// model; STEERLAB_BENCH_FLOWS=0 times the passes and decoding only, not the flows). Each figure is logged as it is
// measured.
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { serve } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.STEERLAB_DIST ?? join(here, "..", "..", "dist");
const runs = Number(process.env.STEERLAB_BENCH_RUNS ?? 3);
const warmup = process.env.STEERLAB_BENCH_WARMUP !== "0";
const flows = process.env.STEERLAB_BENCH_FLOWS !== "0";
const GPT2_SMALL = JSON.stringify({
  model_type: "gpt2", n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257,
  activation_function: "gelu_new", layer_norm_epsilon: 1e-5, bos_token_id: 50256, eos_token_id: 50256,
});
const SAE_24K = JSON.stringify({
  architecture: "standard", d_in: 768, d_sae: 24576, hook_name: "blocks.6.hook_resid_pre", apply_b_dec_to_input: true,
  normalize_activations: "none", dtype: "float32", model_name: "gpt2",
});
// (label, source, sentences in the forward-pass prompt: ~10 tokens each, within the fixture's 64 positions, SAE)
const MODELS = [
  ["fixture (gpt2-tiny)", { from: "hub", base: "hub", repo: "steerlab/gpt2-tiny", revision: "main", folder: null }, 4,
    { from: "hub", base: "hub", repo: "steerlab/gpt2-tiny-saes", revision: "main", folder: "blocks.1.hook_resid_pre" }],
  ["GPT-2 small (random)", { from: "random", config: GPT2_SMALL }, 12, { from: "random", config: SAE_24K }],
].filter(([label]) => !process.env.STEERLAB_BENCH_MODELS || label.includes(process.env.STEERLAB_BENCH_MODELS));

// Runs in the page: drives a fresh engine worker with the lab's own messages (www/src/lib.rs) and times them.
async function measure([label, source, sentences, saeSource, runs, warmup, choice, flows]) {
  // The worker's own choice would decline a software adapter (SwiftShader) for the CPU: name the device.
  const worker = new Worker(`./worker_loader.js?device=${choice}`);
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
    const total = performance.now() - t0;
    console.log(`  ${label}: ${request.op} ${(total / 1000).toFixed(2)} s`);
    return { total, first, response: reply.reply.ok };
  };
  const load = async (kind, label, source) => {
    const t0 = performance.now();
    send({ type: "load", id: id++, kind, label, source });
    const loaded = await next((m) => m.type === "loaded" || m.type === "load_failed");
    if (loaded.type !== "loaded") throw new Error(loaded.error);
    const ms = performance.now() - t0;
    console.log(`  ${label}: ${kind} loaded in ${(ms / 1000).toFixed(2)} s`);
    return { loaded, ms };
  };
  await next((m) => m.type === "device" || m.type === "failed");
  if (!device) throw new Error("the worker found no device");
  const { loaded, ms: modelLoad } = await load("model", label, source);
  const hook = `blocks.${Math.floor(loaded.n_layers / 2)}.hook_resid_pre`;
  const prompt = "The quick brown fox jumps over the lazy dog. ".repeat(sentences);
  const caa = { op: "caa", dataset: { from: "built_in", file: "love-hate.jsonl" }, hook };
  const pass = { op: "generate", prompt, options: { max_new_tokens: 1 } };
  const gen = { op: "generate", prompt: "I think that", options: { max_new_tokens: 16 } };
  const ab = { from: "built_in", file: "corrigibility-ab.json" };
  const layers = [2, 4, 6, 8].filter((l) => l < loaded.n_layers);
  const flow = { op: "layer_sweep", train: ab, eval: ab, layers: layers.length ? layers : [0], multipliers: [-2, -1, 0, 1, 2] };
  // The Generate panel with a vector: the unsteered and steered continuations decoded together (two rows a step),
  // steered by the CAA vector just computed.
  const both = (values) => ({
    op: "generate_variants", prompt: "I think that", options: { max_new_tokens: 16 },
    variants: [[], [{ kind: "vector", hook, values, rows: null, coef: 4 }]],
  });
  // Warm-up: shader compilation, allocation.
  if (warmup) {
    const vector = (await run(caa)).response.values;
    for (const r of [pass, gen, both(vector), ...(flows ? [flow] : [])]) {
      await run(r, r === gen || r.op === "generate_variants");
    }
  }
  const times = { caa: [], pass: [], ttft: [], decode: [], both: [], flow: [] };
  const perStep = (g) => (15 * 1000) / (g.total - g.first); // the 15 steps after the first token's
  for (let i = 0; i < runs; i++) {
    const c = await run(caa);
    times.caa.push(c.total);
    times.pass.push((await run(pass)).total);
    const g = await run(gen, true);
    times.ttft.push(g.first);
    times.decode.push(perStep(g));
    times.both.push(perStep(await run(both(c.response.values), true)));
    if (flows) times.flow.push((await run(flow)).total);
  }
  const median = (xs) => (xs.length ? xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
  const figures = {
    device: device.device, load: modelLoad, caa: median(times.caa), pass: median(times.pass), ttft: median(times.ttft),
    decode: median(times.decode), both: median(times.both), flow: median(times.flow), layers: flow.layers.length,
  };
  if (!flows) {
    worker.terminate();
    return figures;
  }

  // With the SAE: the lab's Decompose panel (a CAA vector from the training items at the SAE's hook, evaluated on
  // the held-out ones) and its Features panel, as `steerlab bench --flow decompose|features` runs them.
  const { loaded: withSae, ms: saeLoad } = await load("sae", `${label}, SAE`, saeSource);
  const train = { ...ab, part: "train" };
  const vector = (await run({ op: "caa", dataset: train, hook: withSae.hook })).response.values;
  const decompose = {
    op: "decompose", vector, eval: { ...ab, part: "test" }, pairs: train, corpus: null,
    multipliers: [-2, -1, 0, 1, 2], ks: [1, 4, 16, 64], top: 10, edits: [],
  };
  const features = {
    op: "features", features: [], promoting: " love", count: 10, amplification: 10, lens_k: 20, strength: null,
    prompt: null, corpus: null, prompts: null,
  };
  if (warmup) for (const r of [decompose, features]) await run(r);
  times.decompose = [];
  times.features = [];
  for (let i = 0; i < runs; i++) {
    times.decompose.push((await run(decompose)).total);
    times.features.push((await run(features)).total);
  }
  worker.terminate();
  return { ...figures, saeLoad, decompose: median(times.decompose), features: median(times.features) };
}

const server = await serve(dist, process.env.STEERLAB_BASE ?? "/");
const rows = [];
for (const [name, args, choice] of [
  ["WebGPU", ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader"], "webgpu"],
  ["CPU fallback", ["--disable-features=WebGPU"], "cpu"],
].filter(([name]) => !process.env.STEERLAB_BENCH_ONLY || process.env.STEERLAB_BENCH_ONLY === name)) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", ...args],
  });
  const page = await browser.newPage();
  page.on("console", (m) => console.error(m.text()));
  // A plain page of the same origin (not the lab, whose own worker would compete for the device).
  await page.goto(server.url + "bench-blank");
  for (const [label, source, sentences, sae] of MODELS) {
    try {
      const r = await page.evaluate(measure, [label, source, sentences, sae, runs, warmup, choice, flows]);
      rows.push([name, `${label}, ${sentences * 10}`, r]);
      console.error(`done: ${name}, ${label} (engine on ${r.device})`);
    } catch (e) {
      console.error(`failed: ${name}, ${label}: ${e.message}`);
    }
  }
  await browser.close();
}
await server.close();

const f = (ms) => (!Number.isFinite(ms) ? "—" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
console.log(`median of ${runs} runs${warmup ? " after a warm-up" : ", no warm-up"}; the forward pass reads a prompt of about the token count ` +
  "shown after the model; first token and decode (15 tokens) continue \"I think that\"");
const widths = [14, 27, 18, 10, 16, 14, 13, 13, 24, 28, 10, 12, 0];
console.log(["browser", "model, tokens", "engine on", "load", "CAA (24 pairs)", "forward pass", "first token", "decode",
  "decode, 2 rows (steps)", "steerability flow (layers)", "SAE load", "decompose", "features (10)"]
  .map((h, i) => h.padEnd(widths[i])).join(""));
for (const [name, label, r] of rows) {
  console.log([name, label, r.device, f(r.load), f(r.caa), f(r.pass), f(r.ttft), `${r.decode.toFixed(1)} tok/s`,
    `${r.both.toFixed(1)} steps/s`, `${f(r.flow)} (${r.layers})`, f(r.saeLoad), f(r.decompose), f(r.features)]
    .map((c, i) => c.padEnd(widths[i])).join(""));
}
