#!/usr/bin/env node
// Writes www/offline-files.js: what the page's service worker (www/sw.js) keeps for offline use,
// each file with its SHA-256, and the build's version, a hash of the whole list and of sw.js
// itself. Any change to a file the page is made of (a script, a wasm module, the data index, the
// service worker) gives a new version, which the browser sees as a new service worker: it installs
// the new build into a cache of its own and the page offers to take it.
//
//   node tools/offline-files.mjs [www]
//
// ./build.sh build runs it last, after everything it lists is built; ./build.sh serve runs it
// before the WebGPU module is built behind the server (the list then has no WebGPU module, and the
// page fetches it from the server as it comes), and again once it is. The MNIST chunks are not
// listed: the data index lists them with their SHA-256, and is itself listed.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const www = process.argv[2] ?? 'www';

// The page and everything it loads to start and train on the CPU: kept when the service worker installs.
const CORE = ['index.html', 'style.css', 'manifest.webmanifest', 'icons', 'vendor/uPlot.esm.js', 'vendor/uPlot.min.css', 'js', 'pkg-cpu', 'data/index.json'];
// The WebGPU module: kept where the page has an adapter to use it on.
const WEBGPU = ['pkg'];
// Under those, what the page never loads: the benchmark page's script, npm metadata.
const LEFT_OUT = (path) => path.startsWith('js/bench/') || /(^|\/)(package\.json|\.gitignore|[^/]*\.d\.ts|README\.md)$/.test(path);

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

/** Every file under `entry` (a file or a folder of www), as paths relative to www with '/'. */
function files(entry, optional = false) {
  const full = join(www, entry);
  if (!existsSync(full) && optional) return [];
  if (!existsSync(full)) fail(`${full} is missing: build the page first (./build.sh build)`);
  if (!statSync(full).isDirectory()) return [entry];
  return readdirSync(full, { recursive: true })
    .map((name) => relative(www, join(full, String(name))).split(sep).join('/'))
    .filter((path) => statSync(join(www, path)).isFile());
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function group(entries, optional = false) {
  const paths = entries.flatMap((entry) => files(entry, optional)).filter((path) => !LEFT_OUT(path)).sort();
  return Object.fromEntries(paths.map((path) => [path, sha256(readFileSync(join(www, path)))]));
}

const core = group(CORE);
// Still being built behind ./build.sh serve: listed once it is there.
const webgpu = group(WEBGPU, true);
const lines = [...Object.entries({ ...core, ...webgpu }), ['sw.js', sha256(readFileSync(join(www, 'sw.js')))]]
  .map(([path, hash]) => `${path} ${hash}\n`)
  .sort();
const version = sha256(lines.join('')).slice(0, 12);

const out = join(www, 'offline-files.js');
writeFileSync(
  out,
  '// Written by tools/offline-files.mjs (./build.sh build): what www/sw.js keeps, and the version\n' +
    '// of this build. Do not edit: any change to a listed file changes it on the next build.\n' +
    `self.OFFLINE = ${JSON.stringify({ version, core, webgpu }, null, 1)};\n`,
);
const bytes = (list) => Object.keys(list).reduce((n, path) => n + statSync(join(www, path)).size, 0);
console.log(
  `${out}: build ${version}; ${Object.keys(core).length} files kept at install (${(bytes(core) / 1e6).toFixed(1)} MB), ` +
    `${Object.keys(webgpu).length} with WebGPU (${(bytes(webgpu) / 1e6).toFixed(1)} MB)`,
);
