// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against the zone map of a running
// zns serve. Usage: node zone-map-check.mjs URL REPORT_FILE DONE_FILE SCREENSHOT
//   1. loads URL, waits for the grid, and waits until a live update shows a zone being written (the host writes);
//   2. when DONE_FILE appears (the host has finished writing and REPORT_FILE holds `zns zones` output taken then),
//      compares every cell's condition, and the write pointer fill of every zone whose write pointer is valid,
//      with the report; then saves SCREENSHOT.
// The live view around the map, while the host does I/O and after it:
//   - the plots over time (from /api/history) are drawn: every canvas shows its series' colours, the newest
//     sample moves on and the number of points drawn grows (or fills the window);
//   - the figures the page shows as text (IOPS, MB/s, latency, per direction) are the values /api/history returned
//     for the same sample (its t), while some IOPS figure is not zero;
//   - once the host has finished: the zones per condition the page shows are those of /metrics (zns_zones);
//     clicking a zone opens its details with the write pointer, condition and last commands of
//     GET /api/namespaces/1/zones/{zone}; a fault armed through POST /api/faults (a media error that cannot fire:
//     probability 1e-9, once, on reads of the last block) is listed with a disarm button, and the button removes it
//     (GET /api/faults no longer has it). The screenshot is taken with the details and the fault shown.
// Prints TAP-style "ok - ..." / "not ok - ..." lines (numbered by the caller) and exits non-zero on a failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [url, reportFile, doneFile, screenshot] = process.argv.slice(2);
let failed = 0;
const tap = (ok, what) => { console.log(`${ok ? "ok" : "not ok"} - ${what}`); if (!ok) failed++; };
const sleep = ms => new Promise(r => setTimeout(r, ms));
const note = what => console.log(`# ${what}`);
const api = async (method, p, body) => {
  const r = await fetch(new URL(p, url), { method, body: body ? JSON.stringify(body) : undefined,
    headers: body ? { "content-type": "application/json" } : {} });
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
  return p === "metrics" ? r.text() : r.json();
};
const until = async (what, ms, step = 250) => {
  for (const end = Date.now() + ms; ; await sleep(step)) {
    const v = await what();
    if (v || Date.now() > end) return v;
  }
};
// A figure as the page prints it ("12.3k", "0.45", "1.2M") and the most rounding can have changed it by.
const parseShown = text => {
  const m = /^(-?\d+(?:\.(\d+))?)([kMG]?)$/.exec(text.trim());
  if (!m) return null;
  const mult = { "": 1, k: 1e3, M: 1e6, G: 1e9 }[m[3]];
  return { value: parseFloat(m[1]) * mult, tol: 0.5 * 10 ** -(m[2] || "").length * mult + 1e-9 };
};
// What each plot's canvas holds: points drawn, newest sample, pixels of each series' colour.
const plotState = page => page.$$eval("#plots .plot", plots => plots.map(p => {
  const c = p.querySelector("canvas");
  const css = getComputedStyle(document.documentElement);
  const data = c.width && c.height ? c.getContext("2d").getImageData(0, 0, c.width, c.height).data : [];
  const rgb = col => {
    const e = document.createElement("i"); e.style.color = col; document.body.appendChild(e);
    const m = getComputedStyle(e).color.match(/\d+/g).map(Number); e.remove(); return m;
  };
  const keys = [...p.querySelectorAll(".key")].map(k => ({ key: k.dataset.key, t: +k.dataset.t, text: k.querySelector("b").textContent,
    rgb: rgb(getComputedStyle(k.querySelector("i")).backgroundColor) }));
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 100) continue;   // a line 1.5 px wide covers its pixels only partly
    if (keys.some(k => Math.abs(k.rgb[0] - data[i]) + Math.abs(k.rgb[1] - data[i + 1]) + Math.abs(k.rgb[2] - data[i + 2]) < 30)) coloured++;
  }
  return { id: p.id, points: +c.dataset.points, lastT: +c.dataset.lastT || 0, coloured, keys };
}));
const sampleValue = (s, key) => key.split(".").reduce((o, k) => o == null ? undefined : o[k], s);

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

  // The plots while the host does I/O.
  await page.selectOption("#span", "60");   // the last minute: a point every few pixels
  let plots = await until(async () => { const s = await plotState(page); return s.every(p => p.points >= 3 && p.coloured > 20) && s; }, 20000);
  if (!plots) plots = await plotState(page);
  tap(plots.every(p => p.points >= 3), `every plot has points from /api/history (${plots.map(p => p.id + " " + p.points).join(", ")})`);
  // A plot whose series were all zero in the window (no zone resets during a write-only run, say) has no line
  // above its axis to colour; every plot with a non-zero value in the window must show its series' colours.
  const window60 = await api("GET", "api/history?nsid=1&seconds=60");
  const hasData = p => window60.samples.some(x => p.keys.some(k => (sampleValue(x, k.key) ?? 0) > 0));
  tap(plots.every(p => !hasData(p) || p.coloured > 20) && plots.some(p => p.coloured > 20),
    `every plot with data is drawn in its series' colours (pixels: ${plots.map(p => p.id + " " + p.coloured + (hasData(p) ? "" : " (all zero)")).join(", ")})`);
  const first = plots;
  await sleep(3500);
  plots = await plotState(page);
  const full = p => p.points >= 60;   // the window holds the last minute
  tap(plots.every((p, i) => p.lastT >= first[i].lastT + 2000 && (p.points > first[i].points || full(p))),
    `the plots move on each second and gain points (${first[0].points} -> ${plots[0].points} points, newest sample ${(plots[0].lastT - first[0].lastT) / 1000} s later)`);

  // The figures shown are those /api/history returned for the same sample, taken while some IOPS figure is not zero.
  const shownIo = async () => {
    const s = await plotState(page);
    const iops = s.find(p => p.id === "plot-iops").keys;
    return iops.some(k => (parseShown(k.text)?.value ?? 0) > 0) && s;
  };
  plots = await until(shownIo, 20000, 500) || await plotState(page);
  const history = await api("GET", "api/history?nsid=1&seconds=600");
  const shown = plots.filter(p => ["plot-iops", "plot-mbps", "plot-latency"].includes(p.id)).flatMap(p => p.keys);
  const differ = [];
  for (const k of shown) {
    const s = history.samples.find(x => x.t === k.t);
    const v = s && sampleValue(s, k.key), got = parseShown(k.text);
    if (!s || !got || Math.abs(got.value - v) > got.tol) differ.push(`${k.key} shows ${k.text}, sample ${k.t} has ${v}`);
  }
  const iopsText = shown.filter(k => /Iops$/.test(k.key)).map(k => `${k.key} ${k.text}`).join(", ");
  // Taken while some IOPS figure was not zero when the host was still doing I/O; a slow guest may have finished
  // by then, and the figures must still be the sample's.
  const ioSeen = history.samples.some(x => x.t >= (shown[0]?.t ?? 0) - 20000 && (x.readIops > 0 || x.writeIops > 0));
  const nonZeroShown = shown.some(k => /Iops$/.test(k.key) && parseShown(k.text)?.value > 0);
  tap(differ.length === 0 && shown.length === 7 && (nonZeroShown || !ioSeen),
    `the IOPS, MB/s and latency figures shown are /api/history's for the same sample (${iopsText} at t=${shown[0]?.t})` +
    (differ.length ? `; differ: ${differ.slice(0, 3).join("; ")}` : ""));

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

  // Zones per condition, as the page shows the newest sample, against /metrics (the host has finished).
  await sleep(2500);
  const metrics = await api("GET", "metrics");
  const zoneKeys = (await plotState(page)).find(p => p.id === "plot-zones").keys;
  const condOf = { empty: "empty", implicitlyOpen: "implicitly_opened", explicitlyOpen: "explicitly_opened", closed: "closed",
    full: "full", readOnly: "read_only", offline: "offline" };
  const zoneDiffer = zoneKeys.filter(k => {
    const m = new RegExp(`^zns_zones\\{[^}]*condition="${condOf[k.key.slice(6)]}"[^}]*nsid="1"[^}]*\\} (\\d+)`, "m").exec(metrics)
      || new RegExp(`^zns_zones\\{[^}]*nsid="1"[^}]*condition="${condOf[k.key.slice(6)]}"[^}]*\\} (\\d+)`, "m").exec(metrics);
    return !m || +m[1] !== +k.text;
  });
  tap(zoneKeys.length === 7 && zoneDiffer.length === 0,
    `the zones per condition shown are /metrics' zns_zones (${zoneKeys.map(k => k.key.slice(6) + " " + k.text).join(", ")})` +
    (zoneDiffer.length ? `; differ: ${zoneDiffer.map(k => k.key).join(" ")}` : ""));

  // A zone's details on click: a partly written zone if there is one (else the first with a valid write pointer).
  let pick = cells.findIndex(c => ["oi", "oe", "cl"].includes(c.cond) && c.fill > 0 && c.fill < 1000);
  if (pick < 0) pick = cells.findIndex(c => ["em", "oi", "oe", "cl"].includes(c.cond));
  if (pick < 0) pick = 0;
  await page.locator(`#map .zone[data-zone="${pick}"]`).scrollIntoViewIfNeeded();
  await page.click(`#map .zone[data-zone="${pick}"]`);
  await page.waitForSelector(`#zone-panel[data-loaded="${pick}"]`, { timeout: 10000 });
  const zone = await api("GET", `api/namespaces/1/zones/${pick}`);
  const details = await page.$eval("#zone-panel", p => ({
    wp: p.querySelector('[data-field="writePointer"]').dataset.value,
    wpText: p.querySelector('[data-field="writePointer"]').textContent,
    cond: p.querySelector('[data-field="condition"]').dataset.value,
    ext: p.querySelector('[data-field="descriptorExtension"]')?.textContent,
    recent: p.querySelectorAll("#zone-recent tr:not(:has(td[colspan]))").length }));
  tap(+details.wp === zone.writePointer && details.wpText.startsWith("0x" + zone.writePointer.toString(16) + " ") && details.cond === zone.condition,
    `clicking zone ${pick} opens its details with the API's write pointer and condition (${details.wpText}, ${details.cond})`);
  tap(Array.isArray(zone.recent) && details.recent === zone.recent.length && "descriptorExtension" in zone && details.ext !== undefined,
    `the zone's details list its last commands and descriptor extension (${details.recent} commands shown, API ${zone.recent?.length}; extension ${details.ext})`);

  // A fault armed through the API is listed; its disarm button removes it.
  const ns = (await api("GET", "api/namespaces")).find(n => n.nsid === 1);
  const faultsBefore = await api("GET", "api/faults");
  const armed = await api("POST", "api/faults", { mediaErrors: [{ nsid: 1, lba: ns.sizeLbas - 1, blocks: 1, on: "read", times: 1, probability: 1e-9 }] });
  const known = new Set(faultsBefore.mediaErrors.map(r => r.id));
  const id = armed.mediaErrors.find(r => !known.has(r.id))?.id;
  const listed = await page.waitForSelector(`#fault-list li[data-id="${id}"] button`, { timeout: 10000 }).then(() => true, () => false);
  tap(id !== undefined && listed, `a fault armed through the API is listed with a disarm button (#${id})`);
  await page.screenshot({ path: screenshot, fullPage: true });
  tap(fs.statSync(screenshot).size > 1000, `screenshot saved (${screenshot})`);
  if (listed) await page.click(`#fault-list li[data-id="${id}"] button`);
  const gone = await page.waitForSelector(`#fault-list li[data-id="${id}"]`, { state: "detached", timeout: 10000 }).then(() => true, () => false);
  const after = await api("GET", "api/faults");
  tap(listed && gone && !after.mediaErrors.some(r => r.id === id) && after.mediaErrors.length === faultsBefore.mediaErrors.length,
    `its disarm button removes it (the page no longer lists it; GET /api/faults has ${after.mediaErrors.length} media error rules, as before)`);
} catch (e) {
  tap(false, `zone map check: ${e.message.split("\n")[0]}`);
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
