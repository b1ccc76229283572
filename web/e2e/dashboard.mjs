// Drives the dashboard of a running `netmeter serve` in Chromium
// (playwright-core; no browser download: it uses the system's Chromium) and
// prints what each page showed as one JSON object on stdout. The checks
// against ground truth are made by the caller: internal/web's
// TestDashboardInBrowser, which starts the agent, seeds its history and
// sends the traffic.
//
//   NETMETER_URL=http://127.0.0.1:9797/ node e2e/dashboard.mjs
//
// Environment: NETMETER_URL (required), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOTS (a directory: one PNG per page and viewport), EXPECT (JSON:
// {"history": "interface:NAME"} picks the entity the history page shows),
// ONLY (comma-separated page ids: visit only these, no phone/dark variants).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.NETMETER_URL;
if (!base) {
  console.error('NETMETER_URL is required');
  process.exit(2);
}
const shots = process.env.SCREENSHOTS || '';
const only = (process.env.ONLY || '').split(',').filter(Boolean);
const expect = JSON.parse(process.env.EXPECT || '{}');
if (shots) fs.mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
const out = { pages: {} };

async function session(name, options, fn) {
  const ctx = await browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`exception: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
  });
  try {
    await fn(page, errors);
  } finally {
    await ctx.close();
  }
}

async function shot(page, file) {
  if (shots) await page.screenshot({ path: path.join(shots, file), fullPage: true });
}

const desktop = { viewport: { width: 1366, height: 768 }, colorScheme: 'light' };

// Each page in a fresh tab, so its errors and load time are its own.
async function visit(id, route, fn, options = desktop) {
  if (only.length && !only.includes(id)) return;
  await session(id, options, async (page, errors) => {
    const began = Date.now();
    await page.goto(new URL(`#/${route}`, base).href);
    const facts = await fn(page, began);
    await shot(page, `${id}.png`);
    out.pages[id] = { route, errors, ...facts };
  });
}

const num = (s) => (s == null || s === '' ? null : Number(s));

await visit('overview', 'overview', async (page, began) => {
  await page.waitForSelector('[data-iface] [data-field="rx-rate"][data-value]');
  const firstRenderMs = Date.now() - began;
  const timing = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { fcp: fcp ? Math.round(fcp.startTime) : null };
  });
  await page.waitForTimeout(4000); // a few live updates
  const ifaces = await page.$$eval('[data-iface]', (els) => els.map((el) => ({
    name: el.dataset.iface,
    rxRate: Number(el.querySelector('[data-field="rx-rate"]').dataset.value),
    txRate: Number(el.querySelector('[data-field="tx-rate"]').dataset.value),
    rxTotal: Number(el.querySelector('[data-field="rx-total"]').dataset.value),
    charts: el.querySelectorAll('canvas').length,
  })));
  const mode = await page.getAttribute('#status', 'data-mode');
  const engineNote = await page.$eval('#engine-note', (el) => (el.hidden ? '' : el.textContent));
  return { firstRenderMs, fcpMs: timing.fcp, ifaces, mode, engineNote };
});

await visit('top', 'top?tab=flows&window=2m&limit=500', async (page) => {
  await page.waitForSelector('#top-panel tr[data-id]');
  const rows = async () => page.$$eval('#top-panel tr[data-id]', (trs) => trs.map((tr) => {
    const v = (f, a = 'value') => tr.querySelector(`[data-field="${f}"]`)?.dataset[a];
    return { id: tr.dataset.id, txBytes: Number(v('tx-bytes')), rxBytes: Number(v('rx-bytes')), txPayload: Number(v('tx-bytes', 'payload')), rxPayload: Number(v('rx-bytes', 'payload')) };
  }));
  const flows = await rows();
  await page.click('#tab-processes');
  await page.waitForSelector('#top-panel tr[data-id^="process:"]');
  const processes = await rows();
  let detail = null;
  if (expect.process) {
    const link = page.locator(`#top-panel a[data-entity="process:${expect.process}"]`);
    if (await link.count()) {
      await link.click();
      await page.waitForSelector('aside.detail h2');
      detail = await page.textContent('aside.detail h2');
    }
  }
  return { flows, processes, detail };
});

await visit('topology', 'topology?window=2m', async (page) => {
  await page.waitForSelector('[data-node]');
  await page.waitForTimeout(3000); // let the layout settle for the screenshot
  const nodes = await page.$$eval('[data-node]', (els) => els.map((el) => el.dataset.node));
  const edges = await page.$$eval('[data-edge]', (els) => els.map((el) => ({ id: el.dataset.edge, width: Number(el.getAttribute('stroke-width')), class: el.getAttribute('class') })));
  return { nodes, edges };
});

const hist = expect.history || 'interface:lo';
const [hk, hn] = [hist.slice(0, hist.indexOf(':')), hist.slice(hist.indexOf(':') + 1)];
await visit('history', `history?kind=${hk}&e=${encodeURIComponent(hn)}&res=day&range=all`, async (page, began) => {
  await page.waitForSelector('[data-field="periods"]');
  await page.waitForSelector('.chart.big canvas');
  const renderMs = Date.now() - began;
  const v = async (f) => num(await page.getAttribute(`[data-field="${f}"]`, 'data-value'));
  const api = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/') && !e.name.includes('/events')).map((e) => `${e.name.replace(/^.*\/api\/v1\//, '')} ${Math.round(e.startTime)}+${Math.round(e.duration)} ms`));
  const facts = { renderMs, api, periods: await v('periods'), rxBytes: await v('rx-bytes'), txBytes: await v('tx-bytes'), tableRows: await page.locator('#history-table tbody tr').count() };
  // The same entity at hourly resolution over everything (a year of points, if seeded).
  const t0 = Date.now();
  await page.goto(new URL(`#/history?kind=${hk}&e=${encodeURIComponent(hn)}&res=hour&range=all`, base).href);
  await page.waitForSelector('[data-field="periods"]');
  await page.waitForSelector('.chart.big canvas');
  facts.hourly = { renderMs: Date.now() - t0, periods: await v('periods'), rxBytes: await v('rx-bytes'), txBytes: await v('tx-bytes') };
  return facts;
});

await visit('billing', 'billing', async (page) => {
  await page.waitForSelector('[data-quota] .chart[data-cumulative]');
  await page.waitForSelector('#main tr[data-account], #main .empty');
  const quotas = await page.$$eval('[data-quota]', (els) => els.map((el) => ({
    name: el.dataset.quota,
    used: Number(el.dataset.used),
    limit: Number(el.dataset.limit),
    status: el.dataset.status,
    cumulative: Number(el.querySelector('.chart').dataset.cumulative),
    charts: el.querySelectorAll('canvas').length,
  })));
  const accounts = await page.$$eval('#main tr[data-account]', (trs) => trs.map((tr) => ({
    account: tr.dataset.account,
    rxPayload: Number(tr.querySelector('[data-field="rx-bytes"]').dataset.payload),
    rxBytes: Number(tr.querySelector('[data-field="rx-bytes"]').dataset.value),
  })));
  return { quotas, accounts };
});

await visit('health', 'health', async (page) => {
  await page.waitForSelector('[data-indicator]');
  await page.waitForTimeout(3000);
  await page.evaluate(() => document.querySelectorAll('[data-indicator] details').forEach((d) => { d.open = true; }));
  await page.waitForTimeout(1500);
  const indicators = await page.$$eval('[data-indicator]', (els) => els.map((el) => ({
    id: el.dataset.indicator,
    state: el.querySelector('.badge[data-state]')?.dataset.state,
    explanation: el.querySelector('.explanation')?.textContent,
    samples: el.querySelectorAll('svg.strip rect').length,
    charts: el.querySelectorAll('canvas').length,
  })));
  return { indicators };
});

// Phone and dark: every page renders there too, without errors.
for (const [variant, options] of only.length ? [] : [['phone', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, colorScheme: 'light' }], ['dark', { ...desktop, colorScheme: 'dark' }]]) {
  for (const id of ['overview', 'top', 'topology', 'history', 'billing', 'health']) {
    await visit(`${id}-${variant}`, out.pages[id].route, async (page) => {
      await page.waitForSelector('main h1');
      await page.waitForTimeout(2500);
      return { width: await page.evaluate(() => document.documentElement.scrollWidth) };
    }, options);
  }
}

await browser.close();
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
