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
async function lab(browser, url, name, expectFallback) {
  const started = Date.now();
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  step = "load the page and the model";
  await page.goto(url);
  const status = page.getByRole("status");
  await page.waitForFunction(() => /Running .* on /.test(document.querySelector("[role=status]")?.textContent ?? ""),
    null, { timeout: TIMEOUT });
  const text = await status.textContent();
  check(expectFallback === text.includes("the CPU"), `${name}: unexpected device in "${text}"`);
  await page.screenshot({ path: join(shots, `${name}-ready.png`), fullPage: true });

  step = "compute a CAA vector";
  await page.getByRole("button", { name: "Compute vector" }).click();
  await page.getByText(/Vector at blocks\.\d+\.hook_resid_pre: mean of \d+ pairs/).waitFor({ timeout: TIMEOUT });
  step = "generate with and without it";
  await page.getByRole("button", { name: "Generate" }).click();
  for (const id of ["plain", "steered"]) {
    await page.waitForFunction((id) => {
      const el = document.querySelector(`[data-testid=${id}]`);
      return el && el.textContent.length > "I think that".length + 10;
    }, id, { timeout: TIMEOUT });
  }
  await page.waitForFunction(() => [...document.querySelectorAll("button")]
    .find((b) => b.textContent === "Generate")?.disabled === false, null, { timeout: TIMEOUT });
  const plain = await page.getByTestId("plain").textContent();
  const steered = await page.getByTestId("steered").textContent();
  check(plain !== steered, `${name}: steering changed nothing ("${plain}")`);
  await page.screenshot({ path: join(shots, `${name}-steered.png`), fullPage: true });
  check(errors.length === 0, `${name}: page errors: ${errors.join("; ")}`);
  await page.close();
  console.log(`ok ${name} (${((Date.now() - started) / 1000).toFixed(0)} s): ${text}`);
}

// A permalink restores the experiment; damaged and newer-version links say so and leave a working page.
async function permalinks(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  step = "share a link";
  await page.goto(url);
  await page.getByLabel("Prompt").fill("Hello there");
  await page.getByLabel("Multiplier").fill("2.5");
  await page.getByLabel("Dataset").selectOption("wedding.jsonl");
  await page.getByRole("button", { name: "Share" }).click();
  await page.getByTestId("link").waitFor();
  const href = page.url();
  check(/#x1\.[A-Za-z0-9_-]+$/.test(href), `share wrote no link: ${href}`);

  step = "open the link";
  const again = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await again.goto(href);
  check(await again.getByLabel("Prompt").inputValue() === "Hello there", "the prompt was not restored");
  check(await again.getByLabel("Multiplier").inputValue() === "2.5", "the multiplier was not restored");
  check(await again.getByLabel("Dataset").inputValue() === "wedding.jsonl", "the dataset was not restored");
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

const server = await serve(dist);
await mkdir(shots, { recursive: true });
let failed = false;
for (const [name, args, fallback] of [
  ["webgpu", ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader"], false],
  ["cpu-fallback", ["--disable-features=WebGPU"], true],
]) {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", ...args] });
  try {
    await lab(browser, server.url, name, fallback);
    if (fallback) await permalinks(browser, server.url);
  } catch (e) {
    failed = true;
    console.error(`FAIL ${name} (${step}): ${e.message}`);
  } finally {
    await browser.close();
  }
}
await server.close();
process.exit(failed ? 1 : 0);
