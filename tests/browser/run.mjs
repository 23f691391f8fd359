// Browser test: Debian's chromium, headless, driven by playwright-core, against a real
// `tandem demo`. It opens the live page and waits for an SSE update, signs in, uploads a bad
// plugin (refused), a good one and the Python port of `fair` (plugins/python/fair), starts a
// comparison of thief, fair and the Python fair and waits for it (the Python fair decides every
// window itself, choosing what fair chooses), then opens a run and a window in history, and the
// Zoo page (the live run's saved zoo and its checks window by window).
// Screenshots of each page go to $OUT (default target/browser-test).
//
// Usage: node run.mjs <tandem binary> <a valid plugin> <the Python fair component>
// (scripts/browser-test.sh builds them and calls this).
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = process.argv[2];
const goodPlugin = process.argv[3];
const pythonFair = process.argv[4];
const out = process.env.OUT || "target/browser-test";
mkdirSync(out, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), "tandem-browser-"));
const port = 18000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;

const server = spawn(bin, ["demo", "--port", String(port), "--data-dir", dataDir, "--pace", "1"], {
  stdio: ["ignore", "pipe", "inherit"],
});
let printed = "";
server.stdout.on("data", (d) => { printed += d; process.stdout.write(d); });
const stop = () => { try { server.kill("SIGINT"); } catch {} };
process.on("exit", stop);

function fail(msg) { console.error("browser test FAILED: " + msg); stop(); process.exit(1); }
async function waitFor(what, f, seconds) {
  for (let i = 0; i < seconds * 4; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  fail(`timed out after ${seconds} s waiting for ${what}`);
}

if (!pythonFair || !existsSync(pythonFair)) fail(`no Python fair component at ${pythonFair} (run scripts/setup.sh)`);
const started = Date.now();
await waitFor("the server's address", () => printed.includes("tandem dashboard:"), 180);
const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
if (!printed.includes(token)) fail("the demo did not print its admin token");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Flags from docs/tech-notes: without the networking ones chromium stalls offline.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
page.setDefaultTimeout(30000);
const shot = (name) => page.screenshot({ path: join(out, name), fullPage: true });
// The pages must work under their Content-Security-Policy: any violation fails the test.
page.on("console", (msg) => {
  if (msg.text().includes("Content Security Policy")) fail(`CSP violation: ${msg.text()}`);
});

// 1. Live: an SSE update arrives without reloading (a finished window shows up).
await page.goto(`${base}/live`);
await page.evaluate(() => { window.__sameDocument = true; });
await page.waitForFunction(() => {
  const el = document.querySelector("#live");
  const done = document.querySelector("#windows-done");
  return el && Number(el.dataset.updates) >= 2 && done && Number(done.textContent) >= 1;
}, null, { timeout: 240000 });
if (!(await page.evaluate(() => window.__sameDocument))) fail("the live page reloaded");
await shot("live.png");
console.log(`live page: SSE update seen (${((Date.now() - started) / 1000).toFixed(0)} s)`);

// 2. Sign in with the admin token.
await page.fill("#login input[name=token]", token);
await Promise.all([page.waitForNavigation(), page.click("#login button")]);
if (!(await page.isVisible("text=sign out"))) fail("sign-in did not take");

// 3. Plugins: a bad upload is refused with its reason; a good one is stored.
await page.goto(`${base}/plugins`);
const bad = join(dataDir, "broken.wasm");
writeFileSync(bad, "this is not a component");
await page.setInputFiles("#upload input[type=file]", bad);
await Promise.all([page.waitForNavigation(), page.click("#upload button")]);
const refusal = await page.textContent("#notice.error");
if (!refusal || !refusal.includes("refused broken.wasm")) fail(`no refusal shown: ${refusal}`);
await shot("plugins-refused.png");
if (goodPlugin && existsSync(goodPlugin)) {
  await page.setInputFiles("#upload input[type=file]", goodPlugin);
  await Promise.all([page.waitForNavigation(), page.click("#upload button")]);
  const ok = await page.textContent("#notice");
  if (!ok.includes("stored")) fail(`good plugin not stored: ${ok}`);
  await shot("plugins.png");
}
// The Python fair (a component of about 18 MB carrying CPython): stored after its sample run.
let t0 = Date.now();
await page.setInputFiles("#upload input[type=file]", pythonFair);
await Promise.all([page.waitForNavigation({ timeout: 600000 }), page.click("#upload button")]);
const pyOk = await page.textContent("#notice");
if (!pyOk.includes("stored fair-py")) fail(`Python fair not stored: ${pyOk}`);
await shot("plugins-python.png");
console.log(`plugins: bad upload refused, good one and the Python fair stored (Python upload ${((Date.now() - t0) / 1000).toFixed(1)} s)`);

// 4. Compare: two policies on the tiny scenario, one window each, side by side.
await page.goto(`${base}/compare`);
const tiny = await page.$("input[name=scenario][value=tiny-synthetic]");
if (tiny) await tiny.check();
// The uploaded Python policy is offered beside the built-ins.
const pyBox = await page.$("input[name=policy][value=fair-py]");
if (!pyBox) fail("the Python fair is not offered on the Compare page");
await pyBox.check();
await page.fill("input[name=windows]", "1");
await Promise.all([page.waitForNavigation(), page.click("#compare-form button")]);
await page.waitForFunction(() => {
  const s = document.querySelector("#compare-status");
  return s && s.textContent.trim() === "done";
}, null, { timeout: 300000 });
const lanes = await page.$$eval("#lanes tbody tr", (rows) => rows.map((r) => r.textContent));
if (lanes.length < 3 || !lanes.every((l) => l.includes("finished"))) fail(`lanes: ${lanes}`);
// The Python fair took its decisions itself (no fallback) and chose what fair chose.
const py = await page.$$eval("#lanes tbody tr", (rows) => rows
  .map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent.trim()))
  .find((c) => c[0] === "fair-py"));
if (!py || Number(py[5]) < 1 || Number(py[6]) !== 0) fail(`fair-py lane: ${py}`);
const same = await page.$$eval("#configs", (tables) => {
  const t = tables[0];
  const heads = [...t.querySelectorAll("thead th")].map((h) => h.textContent.trim());
  const [f, p] = [heads.indexOf("fair"), heads.indexOf("fair-py")];
  const rows = [...t.querySelectorAll("tbody tr")].map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent.trim()));
  return { f, p, rows: rows.length, differ: rows.filter((c) => c[f] !== c[p]).length };
});
if (same.f < 0 || same.p < 0 || same.rows < 1 || same.differ !== 0) fail(`fair vs fair-py configurations: ${JSON.stringify(same)}`);
await page.check("#diffonly");
await shot("compare.png");
console.log(`compare: ${lanes.length} arenas finished (${((Date.now() - started) / 1000).toFixed(0)} s)`);

// 5. History: open a run, then one of its windows.
await page.goto(`${base}/history`);
await shot("history.png");
await Promise.all([page.waitForNavigation(), page.click("#runs tbody tr:first-child a")]);
await page.waitForSelector("#windows");
await shot("run.png");
await Promise.all([page.waitForNavigation(), page.click("#windows tbody tr:first-child a")]);
await page.waitForSelector("details.call");
await shot("window.png");
console.log("history: run and window opened");

// 6. Zoo: the live run saves its zoo after every window, so the page lists at least the
// pretrained model, and shows the live run's windows (checks and uses).
await page.click("header nav a[href='/zoo']");
await page.waitForSelector("#zoo-models");
const zooModels = await page.$$eval("#zoo-models tbody tr", (rows) => rows.map((r) => r.textContent));
if (!zooModels.some((r) => r.includes("pretrained"))) fail(`zoo models: ${zooModels}`);
const zooWindows = await page.$$eval("#zoo-windows tbody tr", (rows) => rows.length);
if (zooWindows < 1) fail("the Zoo page shows no window of the live run");
await shot("zoo.png");
console.log(`zoo: ${zooModels.length} models, ${zooWindows} windows of the live run`);

await browser.close();
stop();
console.log(`browser test passed in ${((Date.now() - started) / 1000).toFixed(0)} s; screenshots in ${out}`);
process.exit(0);
