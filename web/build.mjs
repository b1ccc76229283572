// Builds the dashboard into ../internal/web/dist, the directory the Go
// package embeds. Run through `go generate ./internal/web` (which runs
// `npm ci` first) or `npm run build` here. Offline once npm's cache holds the
// packages of package-lock.json.
//
// Output:
//   dist/index.html                 references the hashed files below, relative URLs only
//   dist/assets/app-<hash>.js       one ES module: our code, uPlot, d3-force
//   dist/assets/app-<hash>.css      our styles and uPlot's
//   dist/assets/icon-<hash>.svg     the favicon
//   dist/assets/licenses-<hash>.txt the licences of the bundled npm packages
//   dist/manifest.json              not served: the files, and the hash of the sources they were built from
//
// The build is deterministic: the same sources and lockfile give the same bytes.

import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../internal/web/dist');
// Built next to dist/ and swapped in at the end: a failed build leaves dist/ as it was.
const out = `${dist}.tmp`;
const assets = path.join(out, 'assets');

const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const hashed = (name, data) => {
  const ext = path.extname(name);
  return `${path.basename(name, ext)}-${sha256(data).slice(0, 8).toUpperCase()}${ext}`;
};

// sourcesHash must match internal/web's sourcesHash (web_test.go): sha256
// over "sha256(content)  path\n" lines, sorted by path relative to web/.
export function sourcesHash() {
  const files = ['build.mjs', 'package.json', 'package-lock.json'];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(here, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.isFile()) files.push(rel);
    }
  };
  walk('src');
  files.sort();
  return sha256(files.map((f) => `${sha256(fs.readFileSync(path.join(here, f)))}  ${f}\n`).join(''));
}

async function build() {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(assets, { recursive: true });

  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: { app: 'src/main.js' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    outdir: assets,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    legalComments: 'none', // the licences go to licenses-<hash>.txt
    charset: 'utf8',
    metafile: true,
    logLevel: 'warning',
  });

  const outputs = Object.entries(result.metafile.outputs);
  const [jsPath, js] = outputs.find(([, o]) => o.entryPoint === 'src/main.js');
  const cssPath = js.cssBundle;
  if (!cssPath) throw new Error('build: no CSS bundle');
  const base = (p) => path.basename(p);

  // The licences of every npm package that ended up in the bundle.
  const pkgs = new Set();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) pkgs.add(m[1]);
  }
  let licenses = 'Third-party software in the netmeter dashboard\n';
  for (const p of [...pkgs].sort()) {
    const dir = path.join(here, 'node_modules', p);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const lic = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    if (!lic) throw new Error(`build: ${p} has no licence file`);
    licenses += `\n==== ${p} ${meta.version} (${meta.license}) ====\n\n` + fs.readFileSync(path.join(dir, lic), 'utf8').trim() + '\n';
  }
  const licName = hashed('licenses.txt', licenses);
  fs.writeFileSync(path.join(assets, licName), licenses);

  const icon = fs.readFileSync(path.join(here, 'src/icon.svg'));
  const iconName = hashed('icon.svg', icon);
  fs.writeFileSync(path.join(assets, iconName), icon);

  const names = { js: base(jsPath), css: base(cssPath), icon: iconName, licenses: licName };
  let html = fs.readFileSync(path.join(here, 'src/index.html'), 'utf8');
  for (const [k, v] of Object.entries(names)) {
    if (!html.includes(`{{${k}}}`)) throw new Error(`build: src/index.html lacks {{${k}}}`);
    html = html.replaceAll(`{{${k}}}`, `assets/${v}`);
  }
  fs.writeFileSync(path.join(out, 'index.html'), html);

  const files = {};
  for (const f of ['index.html', ...fs.readdirSync(assets).sort().map((f) => `assets/${f}`)]) {
    files[f] = fs.statSync(path.join(out, f)).size;
  }
  const manifest = { sources: sourcesHash(), files };
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

  fs.rmSync(dist, { recursive: true, force: true });
  fs.renameSync(out, dist);

  const total = Object.values(files).reduce((a, b) => a + b, 0);
  for (const [f, n] of Object.entries(files)) console.log(`${String(n).padStart(8)}  ${f}`);
  console.log(`${String(total).padStart(8)}  total`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await build();
  } catch (e) {
    fs.rmSync(out, { recursive: true, force: true });
    console.error(e.message);
    process.exit(1);
  }
}
