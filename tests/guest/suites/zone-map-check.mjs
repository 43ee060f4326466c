// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against the zone map of a running
// zns serve. Usage: node zone-map-check.mjs URL REPORT_FILE DONE_FILE SCREENSHOT
//   1. loads URL, waits for the grid, and waits until a live update shows a zone being written (the host writes);
//   2. when DONE_FILE appears (the host has finished writing and REPORT_FILE holds `zns zones` output taken then),
//      compares every cell's condition, and the write pointer fill of every zone whose write pointer is valid,
//      with the report; then saves SCREENSHOT.
// Prints TAP-style "ok - ..." / "not ok - ..." lines (numbered by the caller) and exits non-zero on a failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [url, reportFile, doneFile, screenshot] = process.argv.slice(2);
let failed = 0;
const tap = (ok, what) => { console.log(`${ok ? "ok" : "not ok"} - ${what}`); if (!ok) failed++; };
const sleep = ms => new Promise(r => setTimeout(r, ms));

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "zns-chromium-"));
// A fresh profile (--user-data-dir, which playwright passes from its first argument).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  await page.goto(url);
  await page.waitForSelector("#map .zone[data-cond]", { timeout: 60000 });
  const zones = await page.$$eval("#map .zone", cells => cells.length);
  tap(zones > 0, `the map shows one cell per zone (${zones})`);

  // Live: some zone's write count rises while the page is open, without reloading it.
  const before = await page.$$eval("#map .zone", cells => cells.map(c => +(c.dataset.writes || 0)));
  fs.writeFileSync(doneFile + ".ready", "");
  let live = false;
  for (let i = 0; i < 600 && !live; i++) {
    await sleep(200);
    const now = await page.$$eval("#map .zone", cells => cells.map(c => +(c.dataset.writes || 0)));
    live = now.some((w, z) => w > before[z]);
    if (!live && fs.existsSync(doneFile)) break;
  }
  tap(live, "the map updates live while the host writes (a zone's write count rises)");

  for (let i = 0; i < 3000 && !fs.existsSync(doneFile); i++) await sleep(200);
  await sleep(1500); // a few stream intervals, so the page has the final state
  const cells = await page.$$eval("#map .zone", cs => cs.map(c => ({ cond: c.dataset.cond, fill: +c.dataset.fill, attrs: +c.dataset.attrs })));
  const lines = fs.readFileSync(reportFile, "utf8").split("\n").filter(l => l.includes("zcond:"));
  tap(lines.length === cells.length, `the report and the map have the same zones (${lines.length} / ${cells.length})`);
  let condMismatch = [], fillMismatch = [];
  lines.forEach((l, z) => {
    const m = /cap 0x([0-9a-f]+), wptr 0x([0-9a-f]+) .*zcond:\s*\d+\(([a-z]+)\)/.exec(l);
    if (!m || !cells[z]) { condMismatch.push(z); return; }
    const [cap, wptr, cond] = [parseInt(m[1], 16), parseInt(m[2], 16), m[3]];
    if (cells[z].cond !== cond) condMismatch.push(`${z}:${cells[z].cond}/${cond}`);
    if (["em", "oi", "oe", "cl"].includes(cond) && cells[z].fill !== Math.floor(wptr * 1000 / cap)) fillMismatch.push(`${z}:${cells[z].fill}/${wptr}`);
  });
  tap(condMismatch.length === 0, `every cell's condition matches the zone report${condMismatch.length ? " (differ: " + condMismatch.slice(0, 5).join(" ") + ")" : ""}`);
  tap(fillMismatch.length === 0, `every writable zone's fill matches its write pointer${fillMismatch.length ? " (differ: " + fillMismatch.slice(0, 5).join(" ") + ")" : ""}`);
  const offline = cells.filter(c => c.cond === "of").length;
  const grey = await page.$$eval("#map .zone.of", cs => cs.length ? getComputedStyle(cs[0]).backgroundColor : "");
  tap(offline > 0 && grey === "rgb(136, 136, 136)", `offline zones are grey (${offline}, ${grey})`);
  await page.screenshot({ path: screenshot, fullPage: true });
  tap(fs.statSync(screenshot).size > 1000, `screenshot saved (${screenshot})`);
} catch (e) {
  tap(false, `zone map check: ${e.message.split("\n")[0]}`);
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
