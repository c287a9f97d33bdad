// End-to-end tests of the built lab (dist/, from `trunk build`) in headless Chromium: once with WebGPU
// (--enable-unsafe-webgpu, SwiftShader here) and once with WebGPU off (the CPU fallback). Screenshots of each
// view go to tests/e2e/screenshots/.
import { chromium } from "playwright-core";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { serve } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.STEERLAB_DIST ?? join(here, "..", "..", "dist");
const shots = join(here, "screenshots");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 10 * 60 * 1000; // SwiftShader WebGPU is slow on 2 cores

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

let step = "";
const idle = (label) => `[...document.querySelectorAll("button")].find((b) => b.textContent === ${JSON.stringify(label)})?.disabled === false`;

async function lab(browser, url, name, expectFallback) {
  const started = Date.now();
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  step = "load the page, the model and its SAE (with progress)";
  await page.goto(url);
  await page.getByTestId("progress").waitFor({ timeout: TIMEOUT });
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  const device = await page.getByTestId("device").textContent();
  check(expectFallback === device.includes("CPU fallback"), `${name}: unexpected device in "${device}"`);
  await page.locator("details.adapter summary").click();
  await page.screenshot({ path: join(shots, `${name}-ready.png`), fullPage: true });

  step = "compute a CAA vector";
  await page.getByRole("button", { name: "Compute vector" }).click();
  await page.getByText(/Vector at blocks\.1\.hook_resid_pre: mean of \d+ pairs/).waitFor({ timeout: TIMEOUT });
  step = "generate with and without it";
  await page.waitForFunction(idle("Generate"), null, { timeout: TIMEOUT });
  await page.getByRole("button", { name: "Generate" }).click();
  for (const id of ["plain", "steered"]) {
    await page.waitForFunction((id) => {
      const el = document.querySelector(`[data-testid=${id}]`);
      return el && el.textContent.length > "I think that".length + 10;
    }, id, { timeout: TIMEOUT });
  }
  await page.waitForFunction(idle("Generate"), null, { timeout: TIMEOUT });
  const plain = await page.getByTestId("plain").textContent();
  const steered = await page.getByTestId("steered").textContent();
  check(plain !== steered, `${name}: steering changed nothing ("${plain}")`);

  step = "sweep multipliers";
  await page.getByRole("button", { name: "Sweep multipliers" }).click();
  await page.getByTestId("plot-steerability").locator("svg circle").first().waitFor({ timeout: TIMEOUT });
  check(await page.getByTestId("plot-steerability").locator("svg circle").count() === 7, `${name}: not 7 multipliers`);
  await page.screenshot({ path: join(shots, `${name}-steered.png`), fullPage: true });

  // The diagnostics run hundreds of small forward passes: seconds on the CPU fallback, over ten minutes on SwiftShader's
  // emulated WebGPU, so they run in the CPU pass (the wgpu parity tests cover that path natively).
  if (expectFallback) await diagnostics(page, name);
  check(errors.length === 0, `${name}: page errors: ${errors.join("; ")}`);
  await page.close();
  console.log(`ok ${name} (${((Date.now() - started) / 1000).toFixed(0)} s): ${device}`);
}

async function diagnostics(page, name) {
  step = "decompose the vector with the SAE";
  await page.waitForFunction(idle("Run the diagnostics"), null, { timeout: TIMEOUT });
  await page.getByRole("button", { name: "Run the diagnostics" }).click();
  await page.getByTestId("plot-norms").waitFor({ timeout: TIMEOUT });
  for (const plot of ["bias", "defaults", "projections"]) {
    check(await page.getByTestId(`plot-${plot}`).count() === 1, `${name}: no ${plot} plot`);
  }
  const rows = await page.getByTestId("table").locator("tr").count();
  check(rows >= 4, `${name}: the steerability table has ${rows} rows`);
  await page.getByTestId("plot-norms").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, `${name}-decompose.png`), fullPage: true });

  step = "score features and steer with one";
  await page.waitForFunction(idle("Score features"), null, { timeout: TIMEOUT });
  await page.getByRole("button", { name: "Score features" }).click();
  await page.getByTestId("side-effects").waitFor({ timeout: TIMEOUT });
  const scored = await page.getByTestId("scores").locator("tr").count();
  check(scored >= 2, `${name}: no feature scores (${scored} rows)`);
  await page.waitForFunction(() => [...document.querySelectorAll("button")]
    .find((b) => b.textContent.startsWith("Steer with #"))?.disabled === false, null, { timeout: TIMEOUT });
  await page.getByRole("button", { name: /^Steer with #/ }).click();
  await page.waitForFunction(() => (document.querySelector("[data-testid=feature-steered]")?.textContent.length ?? 0)
    > "I think that".length + 5, null, { timeout: TIMEOUT });
  await page.getByTestId("scores").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, `${name}-features.png`), fullPage: true });

  step = "walk the lesson in large text";
  const first = await page.getByTestId("lesson-text").textContent();
  await page.getByRole("button", { name: "Next" }).click();
  check(await page.getByTestId("lesson-text").textContent() !== first, `${name}: Next did not move the lesson`);
  await page.getByLabel("Large text").check();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, `${name}-lesson-large.png`) });
}

// A permalink restores the experiment; damaged and newer-version links say so and leave a working page.
async function permalinks(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  step = "share a link";
  await page.goto(url);
  await page.getByLabel("Prompt", { exact: true }).fill("Hello there");
  await page.getByLabel("Multiplier", { exact: true }).fill("2.5");
  await page.getByLabel("Dataset", { exact: true }).selectOption("wedding.jsonl");
  await page.getByRole("button", { name: "Share" }).click();
  await page.getByTestId("link").waitFor();
  const href = page.url();
  check(/#x1\.[A-Za-z0-9_-]+$/.test(href), `share wrote no link: ${href}`);

  step = "open the link";
  const again = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await again.goto(href);
  check(await again.getByLabel("Prompt", { exact: true }).inputValue() === "Hello there", "the prompt was not restored");
  check(await again.getByLabel("Multiplier", { exact: true }).inputValue() === "2.5", "the multiplier was not restored");
  check(await again.getByLabel("Dataset", { exact: true }).inputValue() === "wedding.jsonl", "the dataset was not restored");
  step = "the link recomputes its experiment";
  await again.waitForFunction(() => {
    const el = document.querySelector("[data-testid=steered]");
    return el && el.textContent.length > "Hello there".length + 5;
  }, null, { timeout: TIMEOUT });
  await again.screenshot({ path: join(shots, "permalink-restored.png"), fullPage: true });

  for (const [fragment, says] of [["#x1.not*base64", "could not be opened"], ["#x99.AAAA", "newer steerlab"]]) {
    step = `open ${fragment}`;
    const bad = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await bad.goto(url + fragment);
    const note = await bad.getByTestId("link").textContent();
    check(note.includes(says), `${fragment}: "${note}"`);
    check(await bad.getByRole("button", { name: "Generate" }).isVisible(), `${fragment}: the page did not render`);
    await bad.screenshot({ path: join(shots, `permalink-bad-${fragment.slice(1, 4)}.png`), fullPage: true });
    await bad.close();
  }
  await again.close();
  await page.close();
  console.log("ok permalinks");
}

// After one visit the service worker has the app shell: with the network off the lab reloads and runs.
async function offline(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  step = "first visit installs the service worker";
  await page.goto(url);
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    // Wait until the shell cache holds the page's own script.
    const script = [...document.querySelectorAll("link[rel=modulepreload], script[src]")].map((e) => e.href || e.src)[0];
    for (let i = 0; i < 600; i++) {
      const c = await caches.open("steerlab-shell-v1");
      if (await c.match("./worker_bg.wasm") && (!script || await c.match(script))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the service worker never cached the shell");
  });
  step = "reload offline";
  await context.setOffline(true);
  await page.reload();
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  await page.getByRole("button", { name: "Compute vector" }).click();
  await page.getByText(/Vector at blocks\.1\.hook_resid_pre/).waitFor({ timeout: TIMEOUT });
  await page.screenshot({ path: join(shots, "offline.png"), fullPage: true });
  await context.close();
  console.log("ok offline");
}

const server = await serve(dist);
await mkdir(shots, { recursive: true });
let failed = false;
for (const [name, args, fallback] of [
  ["webgpu", ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader"], false],
  ["cpu-fallback", ["--disable-features=WebGPU"], true],
].filter(([name]) => !process.env.STEERLAB_E2E_ONLY || process.env.STEERLAB_E2E_ONLY === name)) {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", ...args] });
  try {
    await lab(browser, server.url, name, fallback);
    if (fallback) {
      await permalinks(browser, server.url);
      await offline(browser, server.url);
    }
  } catch (e) {
    failed = true;
    console.error(`FAIL ${name} (${step}): ${e.message}`);
  } finally {
    await browser.close();
  }
}
await server.close();
process.exit(failed ? 1 : 0);
