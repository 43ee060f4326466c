// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against the zone map of a running
// zns serve with a large namespace (thousands of zones). Usage: node zone-map-large.mjs CONTROL_URL ZONES SCREENSHOT
//   1. loads the page and measures how long the first full snapshot takes to show every cell;
//   2. drives worst-case updates through the control API: a media error over the whole namespace armed and cleared
//      (every zone's cell changes in one update), and zone actions on the first, middle and last zones;
//   3. checks the page follows each change, records the event stream's message sizes and the page's long tasks
//      (main thread busy > 50 ms) meanwhile, and that the page answers input (a frame) within a bound.
// Prints TAP-style "ok - ..." / "not ok - ..." lines (numbered by the caller) and "# ..." figures; exits non-zero on
// a failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [base, zonesArg, screenshot] = process.argv.slice(2);
const zones = +zonesArg;
let failed = 0;
const tap = (ok, what) => { console.log(`${ok ? "ok" : "not ok"} - ${what}`); if (!ok) failed++; };
const note = what => console.log(`# ${what}`);
const sleep = ms => new Promise(r => setTimeout(r, ms));
const api = async (method, p, body) => {
  const r = await fetch(new URL(p, base), { method, body: body ? JSON.stringify(body) : undefined,
    headers: body ? { "content-type": "application/json" } : {} });
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
  return r.json().catch(() => null);
};

// The stream's payload, as a second client sees it: the first (full) message and the largest update.
const sizes = [];
const streamAbort = new AbortController();
const streamDone = (async () => {
  try {
    const r = await fetch(new URL("api/namespaces/1/map", base), { signal: streamAbort.signal });
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of r.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) { sizes.push(i + 2); buf = buf.slice(i + 2); }
    }
  } catch { /* aborted */ }
})();

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "zns-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  await page.addInitScript(() => {
    window.__long = [];
    new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push(e.duration); })
      .observe({ type: "longtask", buffered: true });
  });
  const t0 = Date.now();
  await page.goto(base);
  await page.waitForFunction(n => document.querySelectorAll("#map .zone[data-cond]").length === n, zones, { timeout: 60000, polling: 100 });
  const firstMs = Date.now() - t0;
  const shown = await page.$$eval("#map .zone[data-cond]", cs => cs.length);
  tap(shown === zones, `the map shows one cell per zone (${shown} of ${zones}) after ${firstMs} ms`);
  tap(firstMs < 20000, `the first snapshot of ${zones} zones is on screen within 20 s (${firstMs} ms)`);
  const firstLong = await page.evaluate(() => Math.max(0, ...window.__long));
  note(`longest main-thread task while loading: ${firstLong.toFixed(0)} ms`);
  await page.evaluate(() => { window.__long = []; });

  // Every zone changes at once: a media error over the whole namespace, then cleared.
  const ns = (await api("GET", "api/namespaces")).find(n => n.nsid === 1);
  const blocks = ns.sizeLbas;
  const wait = async (what, fn, arg) => {
    const t = Date.now();
    try { await page.waitForFunction(fn, arg, { timeout: 15000, polling: 50 }); } catch { tap(false, `${what} (not within 15 s)`); return -1; }
    const ms = Date.now() - t;
    tap(true, `${what} (${ms} ms)`);
    return ms;
  };
  const allMedia = v => [...document.querySelectorAll("#map .zone")].every(c => c.dataset.media === v);
  for (let round = 0; round < 2; round++) {
    await api("POST", "api/faults", { mediaErrors: [{ nsid: 1, lba: 0, blocks, on: "read" }] });
    await wait(`round ${round + 1}: every cell shows the media error armed over the whole namespace`, allMedia, "1");
    await api("DELETE", "api/faults");
    await wait(`round ${round + 1}: every cell shows it cleared`, allMedia, "0");
  }
  const last = zones - 1, mid = Math.floor(zones / 2);
  await api("POST", `api/namespaces/1/zones/${last}/offline`);
  await api("POST", `api/namespaces/1/zones/${mid}/readonly`);
  await api("POST", "api/namespaces/1/zones/0/finish");
  await wait("the first, middle and last zones turn full, read only and offline",
    ([m, l]) => { const c = document.querySelectorAll("#map .zone");
      return c[0].dataset.cond === "fu" && c[m].dataset.cond === "ro" && c[l].dataset.cond === "of"; }, [mid, last]);

  // Input is answered while nothing is pending: one animation frame.
  const frameMs = await page.evaluate(() => new Promise(r => { const t = performance.now(); requestAnimationFrame(() => r(performance.now() - t)); }));
  const longest = await page.evaluate(() => Math.max(0, ...window.__long));
  note(`longest main-thread task during the updates: ${longest.toFixed(0)} ms; next frame after ${frameMs.toFixed(0)} ms`);
  tap(longest < 2000, `no update froze the page (longest task ${longest.toFixed(0)} ms < 2000 ms)`);
  // Scroll to the end: the last cells render (blocks off screen are skipped until they come into view).
  await page.$eval("#map", m => { m.scrollTop = m.scrollHeight; });
  await sleep(300);
  const grey = await page.$eval(`#map .zone[data-zone="${last}"]`, c => getComputedStyle(c).backgroundColor);
  tap(grey === "rgb(136, 136, 136)", `scrolled to the end, the offline last zone is grey (${grey})`);
  await page.screenshot({ path: screenshot });
  streamAbort.abort();
  await streamDone;
  const full = sizes[0] ?? 0, largest = Math.max(0, ...sizes.slice(1));
  note(`event stream: ${sizes.length} messages, first (full) ${full} bytes (${(full / zones).toFixed(1)} per zone), largest update ${largest} bytes`);
  tap(full > 0 && full < zones * 64, `the full snapshot is under 64 bytes per zone (${full} bytes)`);
} catch (e) {
  tap(false, `large zone map check: ${e.message.split("\n")[0]}`);
} finally {
  streamAbort.abort();
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
