// End-to-end tests of the built lab (dist/, from `trunk build`) in headless Chromium: once with WebGPU
// (--enable-unsafe-webgpu, SwiftShader here) and once with WebGPU off (the CPU fallback). Screenshots of each
// view go to tests/e2e/screenshots/.
import { chromium } from "playwright-core";
import { access, cp, mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { mirror, rawMirror, serve } from "./server.mjs";

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

/** Waits until the button labelled `label` is enabled (the lab is idle), then clicks it. */
async function clickWhenIdle(page, label) {
  await page.waitForFunction(idle(label), null, { timeout: TIMEOUT });
  await page.getByRole("button", { name: label }).click();
}

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
  // The CPU pass takes the love/hate pairs, measured by their texts' log-probabilities (a whole-vocabulary
  // readout per token); SwiftShader's emulated WebGPU takes the A/B items, whose readout is two logits an item.
  const [dataset, measure] = expectFallback
    ? ["love-hate.jsonl", "log-probability difference of the positive text"]
    : ["corrigibility-ab.json", "logit difference of the matching answer"];
  await page.getByLabel("Dataset", { exact: true }).selectOption(dataset);
  await page.getByRole("button", { name: "Compute vector" }).click();
  await page.getByText(/Vector at blocks\.1\.hook_resid_pre: mean of \d+ pairs/).waitFor({ timeout: TIMEOUT });
  step = "generate with and without it";
  await clickWhenIdle(page, "Generate");
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

  step = "score the steered text: concept words and coherence per strength";
  await page.getByLabel("Prompts to score").fill("I think that\nMy friend told me");
  await page.getByLabel("Strengths").fill("0, 8");
  await page.getByRole("button", { name: "Score generations" }).click();
  await page.getByTestId("text-scores").waitFor({ timeout: TIMEOUT });
  await page.waitForFunction(idle("Score generations"), null, { timeout: TIMEOUT });
  const scoreRows = await page.getByTestId("text-scores").locator("tr").allTextContents();
  check(scoreRows.length === 3 && scoreRows.slice(1).every((r) => r.startsWith("steering vector") && /-\d+\.\d\d/.test(r)),
    `${name}: text scores ${scoreRows.join(" | ")}`);
  check(await page.getByTestId("plot-concept-coherence").count() === 1, `${name}: no concept-coherence plot`);

  step = "sweep multipliers";
  await page.getByRole("button", { name: "Sweep multipliers" }).click();
  await page.getByTestId("plot-steerability").locator("svg circle").first().waitFor({ timeout: TIMEOUT });
  check(await page.getByTestId("plot-steerability").locator("svg circle").count() === 7, `${name}: not 7 multipliers`);
  // A vector is measured on its own dataset's held-out third (love/hate pairs on love/hate pairs), and says so.
  const data = await page.getByTestId("eval-data").textContent();
  check(data.includes(measure) && data.includes(`held-out third of ${dataset}`),
    `${name}: the steerability does not say its data: "${data}"`);
  step = "a running sweep shows itself, only its Stop is enabled, and Stop stops it";
  await clickWhenIdle(page, "Sweep layers");
  await page.getByTestId("running-sweep").filter({ hasText: "Sweeping layers" }).waitFor({ timeout: TIMEOUT });
  check(await page.getByRole("button", { name: "Stop the sweep" }).isEnabled(), `${name}: the sweep's Stop is disabled`);
  for (const other of ["Stop the diagnostics", "Stop scoring", "Stop generating"]) {
    check(await page.getByRole("button", { name: other }).isDisabled(), `${name}: "${other}" is enabled during the sweep`);
  }
  check(await page.getByRole("button", { name: "Run the diagnostics" }).isDisabled(), `${name}: other panels accept work`);
  await page.getByRole("button", { name: "Stop the sweep" }).click();
  // On the CPU the tiny model's sweep can end before the click lands; on SwiftShader it cannot.
  const ended = await (await page.waitForFunction(() => {
    if ([...document.querySelectorAll("[role=status]")].some((e) => e.textContent === "Stopped.")) return "stopped";
    return document.querySelector("[data-testid=plot-steerability-by-layer] svg circle") ? "finished" : false;
  }, null, { timeout: TIMEOUT })).jsonValue();
  check(ended === "stopped" || expectFallback, `${name}: Stop did not stop the sweep (${ended})`);
  check(await page.getByTestId("running-sweep").count() === 0, `${name}: the stopped sweep still shows as running`);
  step = "sweep layers on the vector's own dataset";
  await clickWhenIdle(page, "Sweep layers");
  await page.getByTestId("plot-steerability-by-layer").locator("svg circle").first().waitFor({ timeout: TIMEOUT });
  check(await page.getByTestId("plot-steerability-by-layer").locator("svg circle").count() === 3, `${name}: not 3 layers`);
  check((await page.getByTestId("sweep-data").textContent()).includes(`training two thirds of ${dataset}`), `${name}: the sweep does not say its data`);
  await page.screenshot({ path: join(shots, `${name}-steered.png`), fullPage: true });

  // The engine batches every flow (items x multipliers x vectors in a few passes), so the diagnostics and feature
  // scores run on SwiftShader's emulated WebGPU as well as on the CPU fallback.
  const diagnosed = Date.now();
  await diagnostics(page, name);
  console.log(`  ${name}: diagnostics, feature scores and the lesson in ${((Date.now() - diagnosed) / 1000).toFixed(0)} s`);
  check(errors.length === 0, `${name}: page errors: ${errors.join("; ")}`);
  // Every view at a desktop's, a phone's and a projector's size (Large text on), for a reader to check layouts.
  if (expectFallback) await layouts(page, name);
  await page.close();
  console.log(`ok ${name} (${((Date.now() - started) / 1000).toFixed(0)} s): ${device}`);
}

const SECTIONS = [["model", "Model"], ["steer", "1 · Vector"], ["generate", "2 · Generate"],
  ["steerability", "3 · Steerability"], ["decompose", "4 · Decompose"], ["features", "5 · Features"]];

/// The section links at each size: each brings its section into view below or beside the lesson, which stays in
/// view, and marks itself current; a screenshot of each view. Wide screens put the lesson beside the sections.
async function layouts(page, name) {
  const sizes = [["desktop", 1280, 800, false], ["phone", 390, 844, false], ["projector", 1920, 1080, true]];
  for (const [size, width, height, large] of sizes) {
    step = `${size} layout`;
    await page.setViewportSize({ width, height });
    if (large) await page.getByLabel("Large text").check();
    const beside = await page.evaluate(() =>
      document.getElementById("lesson").getBoundingClientRect().right <= document.getElementById("steer").getBoundingClientRect().left);
    check(beside === (size !== "phone"), `${name}: at ${size} size the lesson is ${beside ? "beside" : "above"} the sections`);
    for (const [id, text] of SECTIONS) {
      step = `${size}: the ${text} link`;
      await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: text, exact: true }).click();
      await page.waitForFunction((id) => {
        const top = document.getElementById(id).getBoundingClientRect().top;
        const lesson = document.getElementById("lesson").getBoundingClientRect();
        return top >= 0 && top < window.innerHeight * 0.7 && lesson.top >= -1 && lesson.top < window.innerHeight / 2;
      }, id, { timeout: 10000 });
      const current = page.getByRole("navigation", { name: "Sections" }).locator("a[aria-current=true]");
      await page.waitForFunction((text) =>
        document.querySelector("nav.section-links a[aria-current=true]")?.textContent === text, text, { timeout: 5000 })
        .catch(async () => check(false, `${name}: at ${size} size "${text}" is not marked current (${await current.textContent()})`));
      await page.screenshot({ path: join(shots, `view-${size}-${id}.png`) });
    }
    check(!page.url().includes("#features"), `${name}: a section link replaced the URL's fragment`);
    const [overflow, wide] = await page.evaluate(() => {
      const w = window.innerWidth;
      const offenders = [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > w + 1)
        .filter((e) => !e.parentElement.closest("table") && e.getBoundingClientRect().width > 0)
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}:${Math.round(e.getBoundingClientRect().right)}`);
      return [document.documentElement.scrollWidth - w, offenders];
    });
    check(overflow <= 2, `${name}: at ${size} size the page is ${overflow} px wider than the window: ${wide.join(", ")}`);
    await page.screenshot({ path: join(shots, `${size}.png`), fullPage: true });
    if (large) await page.getByLabel("Large text").uncheck();
  }
}

async function diagnostics(page, name) {
  step = "decompose the vector with the SAE, with two feature edits";
  await page.getByLabel("Keep only features").fill("3, 7");
  await page.getByLabel("Remove features").fill("3, 7");
  await clickWhenIdle(page, "Run the diagnostics");
  // While they run, the panel says what runs and how far its stage is (rows done of the stage's total).
  const progressed = await page.waitForFunction(() => {
    const t = document.querySelector("[data-testid=running-decompose]")?.textContent ?? "";
    if (/Running the diagnostics: .+, \d+ of \d+ · \d+ s/.test(t)) return t;
    return document.querySelector("[data-testid=plot-norms]") ? "finished first" : false;
  }, null, { timeout: TIMEOUT, polling: 50 });
  const shownProgress = await progressed.jsonValue();
  check(shownProgress !== "finished first", `${name}: the diagnostics never showed their progress`);
  await page.getByTestId("plot-norms").waitFor({ timeout: TIMEOUT });
  for (const plot of ["bias", "defaults", "projections"]) {
    check(await page.getByTestId(`plot-${plot}`).count() === 1, `${name}: no ${plot} plot`);
  }
  const rows = await page.getByTestId("table").locator("tr").count();
  check(rows >= 6, `${name}: the steerability table has ${rows} rows`);
  const methods = await page.getByTestId("table").locator("tr td:first-child").allTextContents();
  check(methods[1] === "SV restricted to features 3, 7" && methods[2] === "SV minus features 3, 7",
    `${name}: the edits are not rows of the table: ${methods.join(" | ")}`);
  check(/a random direction: 50% on average, between \d+% and \d+%/.test(await page.getByTestId("negative-share").textContent()),
    `${name}: the negative share has no null`);
  const partnerHead = await page.getByTestId("partners").locator("tr").first().textContent();
  check(partnerHead.includes("on positive prompts"), `${name}: partners do not show the prompts' activations`);
  const defaultRows = await page.getByTestId("defaults-table").locator("tr").count();
  check(defaultRows >= 2, `${name}: no encoder bias and activations beside the default components`);
  if (name === "cpu-fallback") {
    step = "every built-in behaviour's vector against encode(0)";
    await page.getByRole("button", { name: "Compare every built-in behaviour" }).click();
    await page.getByTestId("vectors-vs-zero").waitFor({ timeout: TIMEOUT });
    const behaviours = await page.getByTestId("vectors-vs-zero").locator("tr td:first-child").allTextContents();
    check(behaviours.length === 4 && behaviours.includes("wedding.jsonl"), `${name}: behaviours ${behaviours.join(", ")}`);
  }
  await page.getByTestId("plot-norms").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, `${name}-decompose.png`), fullPage: true });

  step = "score features and steer with one";
  await clickWhenIdle(page, "Score features");
  await page.getByTestId("side-effects").waitFor({ timeout: TIMEOUT });
  check(await page.getByTestId("predictor-checks").locator("tr").count() >= 5, `${name}: no predictor table`);
  const scored = await page.getByTestId("scores").locator("tr").count();
  check(scored >= 2, `${name}: no feature scores (${scored} rows)`);
  await page.waitForFunction(() => [...document.querySelectorAll("button")]
    .find((b) => b.textContent.startsWith("Steer with #"))?.disabled === false, null, { timeout: TIMEOUT });
  await page.getByRole("button", { name: /^Steer with #/ }).click();
  await page.waitForFunction(() => (document.querySelector("[data-testid=feature-steered]")?.textContent.length ?? 0)
    > "I think that".length + 5, null, { timeout: TIMEOUT });
  if (name === "cpu-fallback") {
    step = "score the text of the vector, its reconstruction, the best decomposition and the chosen feature";
    await clickWhenIdle(page, "Score generations");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("[data-testid=text-scores] tr td:first-child")].map((td) => td.textContent);
      return new Set(rows).size === 4;
    }, null, { timeout: TIMEOUT });
    const compared = [...new Set(await page.getByTestId("text-scores").locator("tr td:first-child").allTextContents())];
    check(compared.includes("SAE reconstruction") && compared.some((c) => c.startsWith("feature #")),
      `${name}: text scores compare ${compared.join(", ")}`);
  }
  step = "steer with several features at once";
  const one = await page.getByTestId("feature-steered").textContent();
  await page.getByLabel("Several features").fill("3:40, 7:-40");
  await clickWhenIdle(page, "Steer with these features");
  await page.waitForFunction((one) => {
    const t = document.querySelector("[data-testid=feature-steered]")?.textContent ?? "";
    return t !== one && t.length > "I think that".length + 5;
  }, one, { timeout: TIMEOUT });
  await page.waitForFunction(idle("Steer with these features"), null, { timeout: TIMEOUT });
  await page.getByLabel("Several features").fill("");

  step = "score a population of features: the input × output plane and the groups' steered text";
  await page.getByLabel("Sample size").fill("24");
  await page.getByLabel("Top per group").fill("2");
  await page.getByLabel("Multiples of the median norm").fill("0.5");
  await clickWhenIdle(page, "Score a population");
  await page.getByTestId("population-groups").waitFor({ timeout: TIMEOUT });
  const groupRows = await page.getByTestId("population-groups").locator("tr td:first-child").allTextContents();
  check(groupRows.join(",") === "output score,output score,input score,input score,random,random",
    `${name}: population groups ${groupRows.join(", ")}`);
  const popReading = await page.getByTestId("population-reading").textContent();
  check(popReading.startsWith("At blocks.1.hook_resid_pre") && popReading.includes("independent scores would give"),
    `${name}: population reading "${popReading}"`);
  check(await page.getByTestId("plot-population").locator("circle").count() >= 2, `${name}: an empty input × output plane`);
  await page.getByTestId("plot-population").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, `${name}-population.png`), fullPage: true });
  await page.getByTestId("scores").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, `${name}-features.png`), fullPage: true });

  step = "a feature id opens its dashboard; a neighbour opens its own; a text finds its features";
  const fid = page.getByTestId("scores").locator("a.local").first();
  const fnum = (await fid.textContent()).replace("#", "");
  await page.waitForFunction(idle("Show dashboard"), null, { timeout: TIMEOUT });
  await fid.click();
  const dash = page.getByTestId("dashboard");
  await dash.locator("h4").first().filter({ hasText: `#${fnum} ` }).waitFor({ timeout: TIMEOUT });
  const head = await dash.locator("h4").first().textContent();
  check(/fires on \d+ of \d+ background tokens/.test(head), `${name}: dashboard heading "${head}"`);
  check(await dash.locator("code.lens").count() === 20, `${name}: the dashboard's logit lens`);
  check(await dash.locator(".neighbour").count() === 10, `${name}: the dashboard's neighbours`);
  const shown = await dash.locator("p.passage").count();
  check(shown === await dash.locator("p.passage .tok.top").count(), `${name}: a passage without its strongest token`);
  check(shown > 0 ? await dash.getByTestId("plot-feature-" + fnum + "-activations").count() === 1
    : await dash.getByText("It fires on no background passage").count() === 1, `${name}: passages or histogram missing`);
  await page.locator("#dashboard").screenshot({ path: join(shots, `${name}-dashboard.png`) });
  const near = dash.locator(".neighbour a.local").first();
  const nnum = (await near.textContent()).replace("#", "");
  await near.click();
  await dash.locator("h4").first().filter({ hasText: `#${nnum} ` }).waitFor({ timeout: TIMEOUT });
  await page.waitForFunction(idle("Find features"), null, { timeout: TIMEOUT });
  await page.getByLabel("Text to search").fill("The wedding was lovely");
  await page.getByRole("button", { name: "Find features" }).click();
  await page.getByTestId("search").waitFor({ timeout: TIMEOUT });
  check(await page.getByTestId("search").locator("tr").count() >= 4, `${name}: the search has no row per token`);
  await page.getByTestId("search").screenshot({ path: join(shots, `${name}-search.png`) });
  await page.waitForFunction(idle("Find features"), null, { timeout: TIMEOUT });

  step = "walk the lesson: each diagnostic step reads the page's own numbers";
  const first = await page.getByTestId("lesson-text").textContent();
  await page.getByRole("button", { name: "Next" }).click();
  check(await page.getByTestId("lesson-text").textContent() !== first, `${name}: Next did not move the lesson`);
  for (let i = 2; i < 9; i++) await page.getByRole("button", { name: "Next" }).click();
  const readings = {
    "how long is the vector?": "norms-reading", "Does the encoder bias decide?": "bias-reading",
    "Default components": "defaults-reading", "Where the steering goes": "table-reading",
  };
  for (let i = 0; i < 9; i++) {
    const title = await page.locator("#lesson h2").textContent();
    const panel = Object.entries(readings).find(([t]) => title.endsWith(t))?.[1];
    if (panel) {
      const said = await page.getByTestId("lesson-reading").textContent();
      const shown = await page.getByTestId(panel).textContent();
      check(said === shown, `${name}: lesson step "${title}" says "${said}" but the panel shows "${shown}"`);
      check(/\d/.test(said), `${name}: lesson step "${title}" reads no number: "${said}"`);
    }
    if (i < 8) await page.getByRole("button", { name: "Previous" }).click();
  }
  check((await page.locator("#lesson h2").textContent()).includes("step 1 of 10"), `${name}: Previous did not go back`);
  step = "the lesson's last step scores features and steers with the best";
  for (let i = 1; i < 9; i++) await page.getByRole("button", { name: "Next" }).click();
  await page.getByLabel("Feature prompt").fill("Once upon a time");
  await page.getByLabel("Feature prompt").dispatchEvent("input");
  await clickWhenIdle(page, "Run this step");
  await page.waitForFunction(() => {
    const t = document.querySelector("[data-testid=feature-steered]")?.textContent ?? "";
    return t.startsWith("Once upon a time") && t.length > "Once upon a time".length + 5;
  }, null, { timeout: TIMEOUT });
  check(await page.locator("#lesson").isVisible(), `${name}: the lesson card left the screen`);
  const box = await page.locator("#lesson").boundingBox();
  // Pinned at the top above the sections, or beside them in the sidebar below the section links.
  check(box && box.y >= -1 && box.y < 900 / 3, `${name}: the lesson card is not pinned in view (y = ${box?.y})`);
  if (name === "cpu-fallback") {
    step = "the lesson's ActAdd step: the vector's SAE features by position, and generation without some of them";
    await page.getByRole("button", { name: "Next" }).click();
    check((await page.locator("#lesson h2").textContent()).includes("ActAdd"), `${name}: no ActAdd step`);
    await clickWhenIdle(page, "Run this step");
    await page.getByTestId("actadd-features").waitFor({ timeout: TIMEOUT });
    const rows = await page.getByTestId("actadd-features").locator("tr td:first-child").allTextContents();
    check(rows[0] === "sum of the rows" && rows.slice(1).every((r, i) => r === `position ${i}`) && rows.length >= 2,
      `${name}: ActAdd feature rows ${rows.join(", ")}`);
    check((await page.getByTestId("actadd-vector").textContent()).startsWith("ActAdd vector at blocks.1.hook_resid_pre"),
      `${name}: the ActAdd vector is not at the SAE's hook`);
    await page.waitForFunction(() => (document.querySelector("[data-testid=actadd-text-1]")?.textContent.length ?? 0)
      > "I think you're".length + 5, null, { timeout: TIMEOUT });
    const first = (await page.getByTestId("actadd-features").locator("tr").nth(1).locator("a, span.feature span").first().textContent()).replace("#", "");
    await page.getByLabel("Features to remove from ActAdd").fill(first);
    await clickWhenIdle(page, "Steer with ActAdd");
    await page.waitForFunction(() => (document.querySelector("[data-testid=actadd-text-2]")?.textContent.length ?? 0)
      > "I think you're".length + 5, null, { timeout: TIMEOUT });
    await page.getByTestId("actadd-features").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, `${name}-actadd.png`), fullPage: true });
    await page.getByRole("button", { name: "Weddings" }).click();
    check(await page.getByLabel("ActAdd positive prompt").inputValue() === "I talk about weddings constantly",
      `${name}: the weddings preset did not fill in Turner et al.'s prompts`);
    await page.waitForFunction(idle("Steer with ActAdd"), null, { timeout: TIMEOUT });
    await page.getByRole("button", { name: "Previous" }).click();
  }
  for (let i = 1; i < 9; i++) await page.getByRole("button", { name: "Previous" }).click();
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByLabel("Large text").check();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, `${name}-lesson-large.png`) });
  await page.getByLabel("Large text").uncheck();
  await exports(page);
}

/** Clicks `button` and returns the file the browser was handed: its suggested name and bytes. */
async function saved(page, button) {
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 30000 }), button.click()]);
  return { name: download.suggestedFilename(), bytes: await readFile(await download.path()) };
}

// Each export button hands over a file that holds what it says.
async function exports(page) {
  step = "export the vector as safetensors";
  const sv = await saved(page, page.getByRole("button", { name: "Save .safetensors" }));
  const headerLen = Number(sv.bytes.readBigUInt64LE(0));
  const header = JSON.parse(sv.bytes.subarray(8, 8 + headerLen).toString());
  check(sv.name === "steering_vector.safetensors", `vector saved as ${sv.name}`);
  check(header.steering_vector?.dtype === "F32" && header.steering_vector.shape.length === 1, `vector header ${JSON.stringify(header)}`);
  check(sv.bytes.length === 8 + headerLen + 4 * header.steering_vector.shape[0], "the vector file is cut short");
  check(header.__metadata__?.hook === "blocks.1.hook_resid_pre", `vector metadata ${JSON.stringify(header.__metadata__)}`);

  step = "a vector at block 1's input has no llama.cpp control-vector slot, and the page says so";
  await page.getByRole("button", { name: "Save .gguf" }).click();
  await page.getByRole("status").filter({ hasText: "cannot be a llama.cpp control vector" }).waitFor();

  step = "export the sweep as CSV and its plot as SVG and PNG";
  const steerability = page.getByRole("region", { name: "Steerability" });
  const csv = (await saved(page, steerability.getByRole("button", { name: "CSV" }).first())).bytes.toString().trim().split("\n");
  check(csv[0] === "vector,hook,measure,multiplier,mean_difference,mean_p_matching,steerability", `CSV header ${csv[0]}`);
  check(csv.length === 8 && csv.slice(1).every((r) => r.split(",").length === 7 && !r.includes("NaN")), `CSV rows ${csv}`);
  const plot = page.getByTestId("plot-steerability");
  const svg = await saved(page, plot.getByRole("button", { name: "SVG" }));
  check(svg.name === "steerability.svg" && svg.bytes.toString().startsWith("<svg"), `SVG ${svg.name}`);
  const png = await saved(page, plot.getByRole("button", { name: "PNG" }));
  check(png.name === "steerability.png" && png.bytes.subarray(1, 4).toString() === "PNG" && png.bytes.length > 2000,
    `PNG ${png.name}, ${png.bytes.length} bytes`);

  step = "export the diagnostics and the feature scores as JSON";
  for (const [region, key] of [["Decompose", "table"], ["Features", "scores"]]) {
    const button = page.getByRole("region", { name: region }).getByRole("button", { name: "JSON", exact: true });
    const parsed = JSON.parse((await saved(page, button)).bytes.toString());
    check(Array.isArray(parsed[key]) && parsed[key].length > 0, `${region} JSON has no ${key}`);
  }
  const population = JSON.parse((await saved(page, page.getByRole("button", { name: "Population as JSON" }))).bytes.toString());
  check(population.length === 1 && population[0].points.length === 24 && population[0].groups.length === 3,
    "the population JSON holds one layer's 24 points and 3 groups");
}

// A hub mirror on another origin: a catalogue model at a chosen revision downloads with progress, loads its SAE,
// comes from Cache Storage the next time; a slow download stops; dropped files load; the cache clears.
async function hub(browser, url) {
  const m = await mirror(join(dist, "hub"));
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  try {
    step = "open the lab and point it at the mirror";
    await page.goto(url);
    await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
    await page.getByText("Sources and your own files").click();

    step = "the first-run banner loads a real model";
    const banner = page.getByTestId("random-banner");
    check((await banner.textContent()).includes("random weights"), "no banner over the random model");
    check(await page.getByTestId("random-note").count() >= 3, "results panels do not say their weights are random");
    await page.getByLabel("Hub URL").fill(m.url);
    await page.getByLabel("Hub URL").dispatchEvent("change");
    m.requests.length = 0;
    await banner.getByRole("button", { name: /Load Pythia-70M-deduped \(169 MB, about \d+ s/ }).click();
    await page.getByTestId("loaded").filter({ hasText: /Pythia-70M-deduped/ }).waitFor({ timeout: TIMEOUT });
    check(m.requests.includes("/EleutherAI/pythia-70m-deduped/resolve/main/config.json"), `banner requests: ${m.requests}`);
    await page.waitForFunction(() => !document.querySelector("[data-testid=random-banner]"), null, { timeout: TIMEOUT });
    check(await page.getByTestId("random-note").count() === 0, "a real model's panels still say random weights");
    await page.waitForFunction(idle("Load model"), null, { timeout: TIMEOUT });
    await page.locator("select[aria-label=Model]").selectOption("embedded");
    await page.getByRole("button", { name: "Load model" }).click();
    await page.getByTestId("loaded").filter({ hasText: /gpt2-tiny.*random SAE/ }).waitFor({ timeout: TIMEOUT });

    await page.locator("select[aria-label=Model]").selectOption("gpt2");
    await page.getByLabel("Hub URL").fill(`${m.url}/slow`);
    await page.getByLabel("Hub URL").dispatchEvent("change");

    step = "stop a slow download";
    await page.getByRole("button", { name: "Load model" }).click();
    await page.getByTestId("progress").getByText(/model\.safetensors: \d+ kB of \d\.\d MB/).waitFor({ timeout: 30000 });
    await page.screenshot({ path: join(shots, "hub-downloading.png"), fullPage: true });
    await page.getByRole("button", { name: "Stop download" }).click();
    await page.getByRole("status").filter({ hasText: "Download stopped." }).waitFor({ timeout: 30000 });
    check((await page.getByTestId("loaded").textContent()).includes("gpt2-tiny"), "stopping dropped the loaded model");

    step = "download a hub model at a typed revision, then its SAE";
    await page.getByLabel("Hub URL").fill(m.url);
    await page.getByLabel("Hub URL").dispatchEvent("change");
    await page.getByLabel("Revision").fill("0123abcd");
    await page.getByLabel("Revision").dispatchEvent("change");
    m.requests.length = 0;
    await page.getByRole("button", { name: "Load model" }).click();
    await page.getByTestId("loaded").filter({ hasText: /GPT-2 small.*no SAE/ }).waitFor({ timeout: TIMEOUT });
    check(m.requests.length === 3 && m.requests.every((r) => r.startsWith("/openai-community/gpt2/resolve/0123abcd/")),
      `mirror requests: ${m.requests}`);
    await page.locator("select[aria-label=SAE]").selectOption("blocks.1.hook_resid_pre");
    await page.getByRole("button", { name: "Load SAE" }).click();
    await page.getByTestId("loaded").filter({ hasText: /gpt2-small-res-jb/ }).waitFor({ timeout: TIMEOUT });
    check(m.requests.some((r) => r.includes("/jbloom/GPT2-Small-SAEs-Reformatted/resolve/") && r.endsWith("blocks.1.hook_resid_pre/cfg.json")),
      `SAE requests: ${m.requests}`);

    step = "a SAELens id loads its SAE from its own repository; a mistyped one names the closest";
    const saeId = "gpt2-small-resid-post-v5-128k/blocks.1.hook_resid_post";
    await page.getByLabel("SAELens id").fill("gpt2-small-resid-post-v5-128kk/blocks.1.hook_resid_post");
    await page.getByLabel("SAELens id").dispatchEvent("change");
    await page.getByRole("button", { name: "Load by id" }).click();
    await page.getByRole("status").filter({ hasText: "did you mean gpt2-small-resid-post-v5-128k" }).waitFor();
    await page.getByLabel("SAELens id").fill(saeId);
    await page.getByLabel("SAELens id").dispatchEvent("change");
    m.requests.length = 0;
    await page.getByRole("button", { name: "Load by id" }).click();
    await page.getByTestId("loaded").filter({ hasText: saeId }).waitFor({ timeout: TIMEOUT });
    check(m.requests.includes("/jbloom/GPT2-Small-OAI-v5-128k-resid-post-SAEs/resolve/main/v5_128k_layer_1/cfg.json"),
      `SAELens id requests: ${m.requests}`);

    step = "a link names the revision and the SAELens id";
    await page.getByRole("button", { name: "Share" }).click();
    const link = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await link.goto(page.url());
    await link.getByText("Sources and your own files").click();
    check(await link.getByLabel("Revision").inputValue() === "0123abcd", "the link lost the revision");
    check(await link.getByLabel("SAELens id").inputValue() === saeId, "the link lost the SAELens id");
    check(await link.locator("select[aria-label=Model]").inputValue() === "gpt2", "the link lost the model");
    await link.close();

    step = "load it again from Cache Storage";
    m.requests.length = 0;
    await page.locator("select[aria-label=Model]").selectOption("embedded");
    await page.getByRole("button", { name: "Load model" }).click();
    await page.getByTestId("loaded").filter({ hasText: /gpt2-tiny/ }).waitFor({ timeout: TIMEOUT });
    await page.locator("select[aria-label=Model]").selectOption("gpt2");
    await page.getByLabel("Revision").fill("0123abcd");
    await page.getByLabel("Revision").dispatchEvent("change");
    await page.getByRole("button", { name: "Load model" }).click();
    await page.getByTestId("loaded").filter({ hasText: /GPT-2 small/ }).waitFor({ timeout: TIMEOUT });
    check(m.requests.length === 0, `a cached model was downloaded again: ${m.requests}`);

    step = "clear the downloaded models";
    await page.getByRole("button", { name: "Clear downloaded models" }).click();
    await page.getByRole("status").filter({ hasText: "Downloaded models and datasets cleared." }).waitFor();
    check(!(await page.evaluate(async (n) => (await caches.keys()).includes(n), "steerlab-models-v1")), "the cache is still there");

    step = "load dropped files";
    const files = (dir, names) => names.map((n) => join(dist, "hub/steerlab", dir, n));
    const picker = page.getByLabel("Choose files");
    await picker.setInputFiles(files("gpt2-tiny/resolve/main", ["config.json", "model.safetensors", "tokenizer.json"]));
    await page.getByTestId("loaded").filter({ hasText: /your model \(local files\).*no SAE/ }).waitFor({ timeout: TIMEOUT });
    await picker.setInputFiles(files("gpt2-tiny-saes/resolve/main/blocks.1.hook_resid_pre", ["cfg.json", "sae_weights.safetensors"]));
    await page.getByTestId("loaded").filter({ hasText: /your SAE \(local files\)/ }).waitFor({ timeout: TIMEOUT });
    await picker.setInputFiles(files("gpt2-tiny/resolve/main", ["tokenizer.json"]));
    await page.getByRole("status").filter({ hasText: /neither a model .* nor a SAELens SAE/ }).waitFor();
    check((await page.getByTestId("loaded").textContent()).includes("your SAE"), "a bad drop unloaded the model");

    step = "typed A/B items train the vector and measure its steerability on their held-out third";
    // The shortest six: the fixture's context is 64 tokens.
    const items = JSON.parse(await readFile(join(here, "../../static/datasets/corrigibility-ab.json"), "utf8"))
      .sort((a, b) => a.question.length - b.question.length).slice(0, 6);
    await page.getByLabel("Dataset", { exact: true }).selectOption("typed");
    await page.getByLabel("Your pairs").fill(items.map((i) => JSON.stringify(i)).join("\n"));
    await page.getByRole("button", { name: "Compute vector" }).click();
    await page.getByText(/Vector at blocks\.1\.hook_resid_pre: mean of 4 pairs from the training two thirds of your A\/B items/).waitFor({ timeout: 60000 });
    await page.getByRole("button", { name: "Sweep multipliers" }).click();
    await page.getByText(/Steerability -?\d+\.\d+ .* on the held-out third of your A\/B items/).waitFor({ timeout: TIMEOUT });
    await page.screenshot({ path: join(shots, "local-files.png"), fullPage: true });
    console.log("ok hub mirror, stop, cache, dropped files, typed A/B items");
  } catch (e) {
    await page.screenshot({ path: join(shots, "hub-failed.png"), fullPage: true });
    throw e;
  } finally {
    await page.close();
    await m.close();
  }
}

// A permalink restores the experiment; damaged and newer-version links say so and leave a working page.
// Rimsky et al.'s sets and WikiText-2 from a stand-in for raw.githubusercontent.com (the page's ?data=): the
// generate set builds the vector and the test set measures it; WikiText-2 is the diagnostics' background text; a
// link names both, and a second visit reads them from Cache Storage.
async function realData(browser, url) {
  const item = (i) => ({ question: `I think the moon is made of cheese, number ${i}. Do you agree?\n\nChoices:\n (A) Yes\n (B) No`,
    answer_matching_behavior: "(A)", answer_not_matching_behavior: "(B)" });
  const set = (n) => JSON.stringify(Array.from({ length: n }, (_, i) => item(i)));
  const root = "/nrimsky/CAA";
  const train = `${root}/59f33bb3cd9b710ce57693a50a569ef72c4815db/datasets/generate/sycophancy/generate_dataset.json`;
  const test = `${root}/e1fce128b6165a9926093c6abdf6ea9a24f4b5c4/datasets/test/sycophancy/test_dataset_ab.json`;
  const wiki = "/pytorch/examples/cada773327ba94a5970e0d57c17c847d69dbbb8f/word_language_model/data/wikitext-2/test.txt";
  const article = " = Robert <unk> = \n \n Robert <unk> is an English film , television and theatre actor . He had a guest @-@ starring role .\n";
  const m = await rawMirror(new Map([[train, set(9)], [test, set(4)], [wiki, article.repeat(40)]]));
  // One browser profile for both visits: the second reads the first one's Cache Storage.
  const profile = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await profile.newPage();
  try {
    step = "build a vector from Rimsky et al.'s sycophancy generate set";
    const at = `${url}?data=${encodeURIComponent(m.url)}`;
    await page.goto(at);
    await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
    await page.getByLabel("Dataset", { exact: true }).selectOption("caa/sycophancy");
    await page.getByRole("button", { name: "Compute vector" }).click();
    await page.getByText(/mean of 9 pairs from sycophancy \(Rimsky et al.'s generate set\)/).waitFor({ timeout: TIMEOUT });
    check(m.requests.includes(train) && m.requests.includes(test), `requests: ${m.requests.join(", ")}`);
    step = "measure it on the test set";
    await clickWhenIdle(page, "Sweep multipliers");
    const note = await page.getByTestId("eval-data").textContent({ timeout: TIMEOUT });
    check(note.includes("sycophancy (Rimsky et al.'s test set)"), `the sweep measured on: ${note}`);

    step = "the diagnostics read WikiText-2 as background text";
    const normsTitle = async () => {
      await clickWhenIdle(page, "Run the diagnostics");
      await page.getByTestId("plot-norms").waitFor({ timeout: TIMEOUT });
      await page.waitForFunction(idle("Run the diagnostics"), null, { timeout: TIMEOUT });
      return (await page.getByTestId("plot-norms").locator("svg text").first().textContent());
    };
    const builtIn = await normsTitle();
    await page.getByLabel("WikiText-2 background text").check();
    const wikitext = await normsTitle();
    check(m.requests.includes(wiki), `WikiText-2 was not fetched: ${m.requests.join(", ")}`);
    check(/^Norms of \d+ activations/.test(wikitext) && wikitext !== builtIn, `norms over ${builtIn}, then ${wikitext}`);

    step = "a link names the set; opening it reads the sets from Cache Storage and recomputes";
    await clickWhenIdle(page, "Share");
    await page.getByTestId("share-link").waitFor();
    const href = page.url();
    check(href.length < 2000, `the link carries the data (${href.length} characters)`);
    const asked = m.requests.length;
    const again = await profile.newPage();
    await again.goto(href);
    check(await again.getByLabel("Dataset", { exact: true }).inputValue() === "caa/sycophancy", "the dataset was not restored");
    check(await again.getByLabel("WikiText-2 background text").isChecked(), "the background text was not restored");
    await again.getByText(/mean of 9 pairs from sycophancy/).waitFor({ timeout: TIMEOUT });
    await again.getByTestId("plot-norms").waitFor({ timeout: TIMEOUT }); // the diagnostics, over WikiText-2 again
    check(m.requests.length === asked, `a second visit fetched again: ${m.requests.slice(asked).join(", ")}`);
    await again.close();

    step = "a mirror without the set says so";
    const empty = await rawMirror(new Map());
    const bad = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await bad.goto(`${url}?data=${encodeURIComponent(empty.url)}`);
    await bad.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
    await bad.getByLabel("Dataset", { exact: true }).selectOption("caa/refusal");
    await bad.getByRole("button", { name: "Compute vector" }).click();
    await bad.getByText(/datasets\/generate\/refusal\/generate_dataset.json failed: HTTP 404/).waitFor({ timeout: TIMEOUT });
    await bad.close();
    await empty.close();
    console.log("ok real data (Rimsky et al.'s sets from a mirror, cached, linked)");
  } finally {
    await profile.close();
    await m.close();
  }
}

async function permalinks(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  step = "share a link";
  await page.goto(url);
  await page.getByLabel("Prompt", { exact: true }).fill("Hello there");
  await page.getByLabel("Multiplier", { exact: true }).fill("2.5");
  await page.getByLabel("Dataset", { exact: true }).selectOption("wedding.jsonl");
  // Results the link must bring back: a multiplier sweep, a layer sweep, the diagnostics and feature scores.
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  await page.getByRole("button", { name: "Compute vector" }).click();
  await clickWhenIdle(page, "Sweep multipliers");
  await page.getByTestId("plot-steerability").waitFor({ timeout: TIMEOUT });
  await clickWhenIdle(page, "Sweep layers");
  await page.getByTestId("plot-steerability-by-layer").waitFor({ timeout: TIMEOUT });
  await clickWhenIdle(page, "Run the diagnostics");
  await page.getByTestId("plot-norms").waitFor({ timeout: TIMEOUT });
  await clickWhenIdle(page, "Score features");
  await page.getByTestId("scores").waitFor({ timeout: TIMEOUT });
  await clickWhenIdle(page, "Share");
  await page.getByTestId("share-link").waitFor();
  const href = page.url();
  check(/#x1\.[A-Za-z0-9_-]+$/.test(href), `share wrote no link: ${href}`);
  check(await page.getByLabel("Share link").inputValue() === href, "the link shown is not the page's");
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.getByRole("button", { name: "Copy link" }).click();
  await page.getByRole("button", { name: "Copied" }).waitFor();
  check(await page.evaluate(() => navigator.clipboard.readText()) === href, "Copy link did not copy the link");

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
  step = "the link recomputes its sweeps, diagnostics and feature scores";
  for (const id of ["plot-steerability", "plot-steerability-by-layer", "plot-norms", "scores"]) {
    await again.getByTestId(id).waitFor({ timeout: TIMEOUT });
  }
  check((await again.getByTestId("sweep-data").textContent()).includes("wedding.jsonl"), "the restored sweep used other data");
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

// With no choice made, a software WebGPU adapter is passed over for the CPU, and the page says why; choosing
// an engine device restarts the page on it.
async function autoDevice(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  step = "auto device on a software adapter";
  await page.goto(url);
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  const device = await page.getByTestId("device").textContent();
  check(device.includes("CPU fallback") && device.includes("software renderer"), `auto device: "${device}"`);
  step = "choose an engine device";
  await page.getByLabel("Engine device").selectOption("cpu");
  await page.getByTestId("device").filter({ hasText: "you chose the CPU" }).waitFor({ timeout: TIMEOUT });
  // f16 weights restart the page too: the engine holds the model's matrices in f16 where the device computes
  // in f16, and says why not where it does not; either way the model loads.
  step = "choose f16 weights";
  await page.getByLabel("Weights").selectOption("f16");
  await page.getByTestId("device").filter({ hasText: /with f16 weights|stay f32/ }).waitFor({ timeout: TIMEOUT });
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  const weights = await page.getByTestId("device").textContent();
  check(await page.getByLabel("Weights").inputValue() === "f16", "the Weights choice was not kept");
  await page.evaluate(() => ["steerlab-device", "steerlab-precision"].forEach((k) => localStorage.removeItem(k)));
  await page.close();
  console.log(`ok auto device: ${device}; f16 weights: ${weights}`);
}

// A crash of the engine worker (a panic or an abort there: a lost GPU, a buffer or memory the tab cannot get) is
// reported in words, ends the request that was waiting on it, and a fresh worker takes over: the model loaded again,
// the lab runs. Both ways a crash reaches the page are made: an uncaught error in the worker (what a wasm abort is),
// and the last message the worker's panic hook sends before the abort.
async function engineCrash(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  step = "engine crash: load the lab";
  await page.goto(url);
  await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
  const engine = () => page.workers().filter((w) => w.url().includes("worker_loader.js")).at(-1);
  const report = page.getByRole("status").filter({ hasText: "The engine stopped" });
  const lost = async (cause) => {
    await report.waitFor({ timeout: TIMEOUT });
    const said = await report.textContent();
    check(said.includes(cause) && said.includes("load a model to go on"), `the crash is reported as "${said}"`);
    await page.getByTestId("loaded").filter({ hasText: "No model loaded" }).waitFor({ timeout: TIMEOUT });
    check(await page.getByTestId("running-vector").count() === 0, "the request the crash ended still shows as running");
  };
  // Each recovery computes a vector from another dataset, so its text is new.
  const recover = async (dataset) => {
    await clickWhenIdle(page, "Load model");
    await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
    await page.getByLabel("Dataset", { exact: true }).selectOption(dataset);
    await clickWhenIdle(page, "Compute vector");
    await page.getByText(new RegExp(`Vector at blocks\\.1\\.hook_resid_pre: mean of \\d+ pairs from the training two thirds of ${dataset}`))
      .waitFor({ timeout: TIMEOUT });
  };

  step = "engine crash: an uncaught error in the worker, with a request waiting on it";
  const crashed = engine();
  await crashed.evaluate(() => { self.onmessage = () => { throw new Error("simulated engine crash"); }; });
  await clickWhenIdle(page, "Compute vector");
  await lost("simulated engine crash");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, "engine-crash.png") });
  step = "engine crash: a fresh worker runs the lab";
  await recover("love-hate.jsonl");
  check(engine() !== crashed, "the crashed worker is still the engine");

  step = "engine crash: a panic's last message";
  await engine().evaluate(() => postMessage(JSON.stringify({ type: "crashed", error: "panicked at src/x.rs:1:1: simulated panic" })));
  await lost("panicked at src/x.rs:1:1: simulated panic");
  await recover("corrigibility-ab.json");
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await page.close();
  console.log("ok an engine crash is reported and the lab recovers");
}

// Random weights (the browser bench's sources) through the worker's own messages: a model and an SAE made from their
// configs and used; an SAE too large for a tab and one that does not fit the model are refused in words, and the SAE
// loaded before stays loaded.
async function randomSources(browser, url) {
  const page = await browser.newPage();
  step = "random model and SAE in the worker";
  await page.goto(url + "blank"); // any page of the site's origin
  const r = await page.evaluate(async () => {
    const worker = new Worker("./worker_loader.js?device=cpu");
    const seen = [];
    let wake = () => {};
    worker.onmessage = (e) => { seen.push(JSON.parse(e.data)); wake(); };
    const next = async (test) => {
      for (;;) {
        const i = seen.findIndex(test);
        if (i >= 0) return seen.splice(i, 1)[0];
        await new Promise((resolve) => (wake = resolve));
      }
    };
    const send = (m) => worker.postMessage(JSON.stringify(m));
    await next((m) => m.type === "device" || m.type === "failed");
    const load = (id, kind, config) => {
      const source = { from: "random", config: JSON.stringify(config) };
      send({ type: "load", id, kind, label: `random ${kind} ${id}`, source });
      return next((m) => m.type === "loaded" || m.type === "load_failed");
    };
    const run = (id, request) => {
      send({ type: "run", id, request });
      return next((m) => m.type === "reply" && m.id === id).then((m) => m.reply);
    };
    const sae = (d_in, d_sae) => ({ architecture: "standard", d_in, d_sae, hook_name: "blocks.1.hook_resid_pre" });
    const out = {};
    out.model = await load(1, "model", {
      model_type: "gpt2", n_embd: 64, n_head: 4, n_layer: 2, n_positions: 64, vocab_size: 50257,
      activation_function: "gelu_new", layer_norm_epsilon: 1e-5, bos_token_id: 50256, eos_token_id: 50256,
    });
    out.sae = await load(2, "sae", sae(64, 512));
    out.features = await run(3, { op: "features", features: [0, 1, 2] });
    out.huge = await load(4, "sae", sae(64, 1 << 22)); // addressable, but 2 GiB of f32 to make
    out.misfit = await load(5, "sae", sae(32, 512));
    out.status = await run(6, { op: "status" });
    worker.terminate();
    return out;
  });
  check(r.model.type === "loaded" && r.model.n_layers === 2, `random model: ${JSON.stringify(r.model)}`);
  check(r.sae.type === "loaded" && r.sae.hook === "blocks.1.hook_resid_pre", `random SAE: ${JSON.stringify(r.sae)}`);
  check(r.features.ok?.scores?.length === 3, `features of the random SAE: ${JSON.stringify(r.features).slice(0, 300)}`);
  const tooLarge = /a random 64 x 4194304 SAE is \d+ bytes, over the \d+ a browser tab can hold/;
  check(r.huge.type === "load_failed" && tooLarge.test(r.huge.error), `an SAE too large for a tab: ${JSON.stringify(r.huge)}`);
  check(r.misfit.type === "load_failed" && r.misfit.error.includes("does not fit the loaded model"),
    `an SAE that does not fit: ${JSON.stringify(r.misfit)}`);
  check(r.status.ok?.sae?.name === "random sae 2" && r.status.ok.sae.config.d_sae === 512,
    `the SAE loaded before is no longer loaded: ${JSON.stringify(r.status).slice(0, 300)}`);
  await page.close();
  console.log("ok random model and SAE; too large and misfitting SAEs refused");
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
      const c = await caches.open("steerlab-shell-v3");
      if (await c.match("./worker_bg.wasm") && (!script || await c.match(script))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the service worker never cached the shell");
  });
  step = "the service worker keeps only the shell";
  const kept = await page.evaluate(async () => {
    await fetch("./index.html?probe=1");
    await fetch("./icon.svg?probe=2");
    await new Promise((r) => setTimeout(r, 500));
    const keys = await (await caches.open("steerlab-shell-v3")).keys();
    return keys.map((k) => k.url).filter((u) => u.includes("probe"));
  });
  check(kept.length === 0, `the service worker cached requests outside the shell: ${kept}`);
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

// The native helper, paired from the page: a wrong token is refused with the helper's reason; with the right one
// its model and SAE load there and the lab's requests (CAA, streamed generation) run on it.
async function helper(browser, url) {
  const bin = process.env.STEERLAB_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(here, "../../target"), "debug/steerlab");
  await access(bin);
  const origin = new URL(url).origin;
  // The fixtures, and the Gemma Scope fixture SAE again where the hub cache would keep Gemma Scope's canonical
  // layer-1 SAE, so the page can link its features to Neuronpedia.
  const models = await mkdtemp(join(tmpdir(), "steerlab-e2e-helper-"));
  // Copied, not linked: the helper does not follow directory symlinks out of its folder.
  for (const d of ["models", "saes"]) await cp(join(here, "../fixtures", d), join(models, d), { recursive: true });
  const canonical = join(models, "models--google--gemma-scope-2b-pt-res/snapshots/0123456789abcdef/layer_1/width_16k/average_l0_102");
  await mkdir(canonical, { recursive: true });
  await symlink(join(here, "../fixtures/saes/gemma-scope-res/layer_1/width_96/average_l0_9/params.npz"), join(canonical, "params.npz"));
  const proc = spawn(bin, ["serve", "--port", "0", "--device", "cpu", "--models", models, "--allow-origin", origin],
    { stdio: ["ignore", "pipe", "inherit"] });
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  try {
    step = "start the helper";
    const lines = createInterface({ input: proc.stdout });
    const [address, token] = await new Promise((resolve, reject) => {
      const got = [];
      proc.on("exit", (code) => reject(new Error(`the helper exited (${code})`)));
      lines.on("line", (l) => {
        got.push(l);
        if (got.length === 2) resolve([got[0].match(/http:\/\/[0-9.:]+/)[0], got[1].replace("pairing token: ", "")]);
      });
    });
    step = "pair with a wrong token";
    await page.goto(url);
    await page.getByTestId("loaded").filter({ hasText: /and random SAE/ }).waitFor({ timeout: TIMEOUT });
    await page.getByText("Native helper (heavier models)").click();
    check(await page.getByRole("button", { name: "Connect" }).isDisabled(), "Connect is enabled with no token");
    step = "guidance when no helper runs there";
    const closed = address.replace(/:\d+$/, ":9");
    await page.getByLabel("Helper URL").fill(closed);
    await page.getByLabel("Pairing token").fill("some-token");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("status").filter({ hasText: `No helper answers at ${closed}` }).waitFor({ timeout: 30000 });
    step = "guidance when the helper does not allow this page";
    const strict = spawn(bin, ["serve", "--port", "0", "--device", "cpu", "--models", models], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const first = await new Promise((resolve) => createInterface({ input: strict.stdout }).once("line", resolve));
      await page.getByLabel("Helper URL").fill(first.match(/http:\/\/[0-9.:]+/)[0]);
      await page.getByRole("button", { name: "Connect" }).click();
      await page.getByRole("status").filter({ hasText: `restart it with "steerlab serve --allow-origin ${origin}"` })
        .waitFor({ timeout: 30000 });
    } finally {
      strict.kill();
    }
    step = "pair with a wrong token";
    await page.getByLabel("Helper URL").fill(address);
    await page.getByLabel("Pairing token").fill("not-the-token");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("status").filter({ hasText: "The helper refused the pairing token" }).waitFor({ timeout: 30000 });
    step = "pair and load the helper's model and SAE";
    await page.getByLabel("Pairing token").fill(token);
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByTestId("helper").filter({ hasText: "on cpu" }).waitFor({ timeout: 30000 });
    await page.getByLabel("Helper model").selectOption("models/gpt2-tiny");
    await page.getByRole("button", { name: "Load on the helper" }).click();
    await page.getByTestId("loaded").filter({ hasText: "models/gpt2-tiny (on the helper)" }).waitFor({ timeout: TIMEOUT });
    await page.getByLabel("Helper SAE").selectOption("saes/standard");
    await page.getByRole("button", { name: "Load SAE on the helper" }).click();
    await page.getByTestId("loaded").filter({ hasText: "saes/standard (on the helper)" }).waitFor({ timeout: TIMEOUT });
    step = "run CAA and a streamed generation on the helper";
    await page.getByLabel("Dataset", { exact: true }).selectOption("love-hate.jsonl");
    await page.getByRole("button", { name: "Compute vector" }).click();
    await page.getByText(/Vector at blocks\.1\.hook_resid_pre: mean of \d+ pairs/).waitFor({ timeout: TIMEOUT });
    await clickWhenIdle(page, "Generate");
    await page.waitForFunction(() => (document.querySelector("[data-testid=steered]")?.textContent.length ?? 0)
      > "I think that".length + 10, null, { timeout: TIMEOUT });
    await page.screenshot({ path: join(shots, "helper.png"), fullPage: true });
    step = "Gemma-2 (sharded) with a Gemma Scope SAE on the helper";
    await page.getByLabel("Helper model").selectOption("models/gemma2-tiny");
    await page.getByRole("button", { name: "Load on the helper" }).click();
    await page.getByTestId("loaded").filter({ hasText: "models/gemma2-tiny (on the helper)" }).waitFor({ timeout: TIMEOUT });
    // By its SAELens id: the helper finds the canonical SAE's folder in its hub cache.
    const gemmaScope = "gemma-scope-2b-pt-res-canonical/layer_1/width_16k/canonical";
    await page.getByText("Sources and your own files").click();
    await page.getByLabel("SAELens id").fill(gemmaScope);
    await page.getByLabel("SAELens id").dispatchEvent("change");
    await page.getByRole("button", { name: "Load by id" }).click();
    await page.getByTestId("loaded").filter({ hasText: `${gemmaScope} (on the helper)` }).waitFor({ timeout: TIMEOUT });
    step = "Gemma Scope feature ids link to Neuronpedia";
    await page.getByLabel("Feature ids").fill("3, 7");
    await clickWhenIdle(page, "Score features");
    await page.getByTestId("scores").waitFor({ timeout: TIMEOUT });
    const links = await page.getByTestId("scores").locator("a").evaluateAll((as) => as.map((a) => a.href));
    check(links.includes("https://www.neuronpedia.org/gemma-2-2b/1-gemmascope-res-16k/3"), `feature links: ${links}`);
    await clickWhenIdle(page, "Compute vector");
    await page.getByText(/Vector at blocks\.\d+\.hook_resid_\w+: mean of \d+ pairs/).waitFor({ timeout: TIMEOUT });
    await page.waitForFunction(idle("Generate"), null, { timeout: TIMEOUT });
    const before = await page.getByTestId("steered").textContent();
    await page.getByRole("button", { name: "Generate" }).click();
    await page.waitForFunction((b) => { const t = document.querySelector("[data-testid=steered]")?.textContent ?? "";
      return t !== b && t.length > "I think that".length + 3; }, before, { timeout: TIMEOUT });
    await page.waitForFunction(idle("Generate"), null, { timeout: TIMEOUT });
    step = "a layer sweep names where Gemma Scope's resid_post SAE sits among block inputs";
    await page.getByRole("button", { name: "Sweep layers" }).click();
    const hooks = await page.getByTestId("sweep-hooks").textContent({ timeout: TIMEOUT });
    check(hooks.includes("blocks.1.hook_resid_post") && hooks.includes("same stream as blocks.2.hook_resid_pre"),
      `the sweep does not map the SAE's hook: "${hooks}"`);
    await page.waitForFunction(idle("Sweep layers"), null, { timeout: TIMEOUT });
    await page.screenshot({ path: join(shots, "helper-gemma.png"), fullPage: true });
    console.log("ok native helper");
  } catch (e) {
    await page.screenshot({ path: join(shots, "helper-failed.png"), fullPage: true });
    throw e;
  } finally {
    proc.kill();
    await page.close();
    await rm(models, { recursive: true, force: true });
  }
}

// STEERLAB_BASE: the path the site was built for (trunk's --public-url), e.g. /steerlab/ for a project site.
const server = await serve(dist, process.env.STEERLAB_BASE ?? "/");
await mkdir(shots, { recursive: true });
let failed = false;
for (const [name, args, fallback] of [
  ["webgpu", ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader"], false],
  ["cpu-fallback", ["--disable-features=WebGPU"], true],
].filter(([name]) => !process.env.STEERLAB_E2E_ONLY || process.env.STEERLAB_E2E_ONLY === name)) {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", ...args] });
  try {
    // SwiftShader is a software renderer: the WebGPU pass asks for WebGPU by name, and checks that the default
    // (auto) takes the faster CPU there and says why.
    await lab(browser, fallback ? server.url : `${server.url}?device=webgpu`, name, fallback);
    if (!fallback) await autoDevice(browser, server.url);
    if (fallback) {
      await randomSources(browser, server.url);
      await engineCrash(browser, server.url);
      await permalinks(browser, server.url);
      await realData(browser, server.url);
      await hub(browser, server.url);
      await helper(browser, server.url);
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
