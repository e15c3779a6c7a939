// The page's service worker: keeps one build of the page in the browser's Cache Storage, so that
// after the first visit it opens and trains without a network.
//
// What it keeps is listed by the build: offline-files.js (written by ./build.sh, with
// tools/offline-files.mjs) names every file of the page with its SHA-256, in two groups: `core`,
// kept when this worker installs (the page, its scripts, the CPU module, the data index), and
// `webgpu` (the WebGPU module, five times the CPU module's size), kept once the page says it has
// an adapter to use it on. The MNIST chunks are kept as the page loads them, each checked against
// the SHA-256 the kept data index gives it (and checked again by the page, data/data.js).
//
// One build, one cache: the cache's name is the build's version, a hash of the whole list, so a
// rebuild changes offline-files.js, which makes the browser install this worker anew into a new
// cache. Every byte put into a cache has the hash this build lists for it, wherever it came from
// (the server, or an earlier build's cache holding the same bytes), so a cache never mixes one
// build's scripts with another's wasm; a server already on a newer build makes the install fail
// rather than mix. The old build keeps serving its tabs until the page's "Reload with the new
// version" (app/offline.js) lets the new one take over, which drops the older caches.
//
// Plain script (importScripts), not a module: Firefox ESR runs no module service workers.
/* global OFFLINE */
importScripts('offline-files.js');

const PREFIX = 'autoencoder-lab-';
const CACHE = `${PREFIX}${OFFLINE.version}`;
const LISTED = { ...OFFLINE.core, ...OFFLINE.webgpu };
const INDEX = 'data/index.json';
const SCOPE = new URL(self.registration.scope);

/** The path of `url` inside the page's folder ('js/main.js'), or null where it is not the page's. */
function pathIn(url) {
  const u = new URL(url);
  if (u.origin !== SCOPE.origin || !u.pathname.startsWith(SCOPE.pathname)) return null;
  return decodeURIComponent(u.pathname.slice(SCOPE.pathname.length));
}

/** A cache's key for `path`: its full address, without any query. */
const keyOf = (path) => new URL(path, SCOPE).href;

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A response to keep: `bytes` with the headers the server sent (the page's policy among them). */
const keepable = (bytes, from) => new Response(bytes, { status: 200, statusText: 'OK', headers: from.headers });

/** `path` from the server, revalidated past the HTTP cache, if its bytes are the ones `hash` names. */
async function fetchChecked(path, hash) {
  const response = await fetch(keyOf(path), { cache: 'no-cache' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  if ((await sha256(bytes)) !== hash) {
    throw new Error(`${path} on the server is not the one this build lists (the server has a newer build: reload the page)`);
  }
  return keepable(bytes, response);
}

/** `path` as some other build's cache holds it, if its bytes are the ones `hash` names. */
async function fromOlder(path, hash) {
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const hit = await (await caches.open(name)).match(keyOf(path));
    if (!hit) continue;
    const bytes = await hit.arrayBuffer();
    if ((await sha256(bytes)) === hash) return keepable(bytes, hit);
  }
  return null;
}

/** Whether `cache` holds `path` with the bytes `hash` names (an install of this build cut short). */
async function holds(cache, path, hash) {
  const hit = await cache.match(keyOf(path));
  return !!hit && (await sha256(await hit.arrayBuffer())) === hash;
}

// The kept data index's chunks, file -> SHA-256, read once per run of this worker.
let chunkHashes = null;
async function chunkHash(cache, file) {
  if (!chunkHashes) {
    const index = await (await cache.match(keyOf(INDEX)))?.json();
    if (!index) return null;
    chunkHashes = new Map([...index.train, ...index.test].map((e) => [e.file, e.sha256]));
  }
  return chunkHashes.get(file) ?? null;
}

// --- install: the page, whole, or nothing ---------------------------------------------------

async function install() {
  const cache = await caches.open(CACHE);
  for (const [path, hash] of Object.entries(OFFLINE.core)) {
    if (await holds(cache, path, hash)) continue;
    await cache.put(keyOf(path), (await fromOlder(path, hash)) ?? (await fetchChecked(path, hash)));
  }
  // What an earlier build kept beyond the page and this build has unchanged (the WebGPU module,
  // chunks the data index still lists): kept again without a download.
  const optional = Object.entries(OFFLINE.webgpu);
  const index = await (await cache.match(keyOf(INDEX))).json();
  for (const e of [...index.train, ...index.test]) optional.push([`data/${e.file}`, e.sha256]);
  for (const [path, hash] of optional) {
    if (await cache.match(keyOf(path))) continue;
    const older = await fromOlder(path, hash);
    if (older) await cache.put(keyOf(path), older);
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    install().catch(async (err) => {
      // Nothing of a build that failed stays; the page says why (app/offline.js); the browser
      // drops this worker, and the previous build, if any, goes on serving.
      await caches.delete(CACHE);
      for (const client of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) {
        client.postMessage({ type: 'install-failed', why: err.message });
      }
      throw err;
    }),
  );
});

// The pages this build now serves use its cache alone: the other builds' go.
self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    })(),
  );
});

// --- serving: the kept copy first --------------------------------------------------------------

/** A file this build lists: kept, or fetched, checked and kept (the WebGPU module, the first time). */
async function listed(path) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(keyOf(path));
  if (hit) return hit;
  const response = await fetchChecked(path, LISTED[path]);
  await cache.put(keyOf(path), response.clone());
  return response;
}

/** A data chunk: kept, or from the server, kept once its bytes are the ones the index names. */
async function chunk(event, path) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(keyOf(path));
  if (hit) return hit;
  const response = await fetch(event.request);
  const hash = await chunkHash(cache, path.slice('data/'.length));
  if (hash && response.ok) {
    const copy = response.clone();
    event.waitUntil(
      (async () => {
        const bytes = await copy.arrayBuffer();
        if ((await sha256(bytes)) === hash) await cache.put(keyOf(path), keepable(bytes, copy));
      })(),
    );
  }
  return response;
}

/** A HEAD request for a file this build lists (the page asks whether the WebGPU module is there): the kept copy's answer. */
async function head(request, path) {
  const hit = await (await caches.open(CACHE)).match(keyOf(path));
  return hit ? new Response(null, { status: hit.status, statusText: hit.statusText, headers: hit.headers }) : fetch(request);
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  let path = pathIn(request.url);
  if (path === null) return;
  if (request.method === 'HEAD' && Object.hasOwn(LISTED, path)) {
    event.respondWith(head(request, path));
    return;
  }
  if (request.method !== 'GET') return;
  if (request.mode === 'navigate') {
    // The page at any query (a link to a run): the one kept page. Other pages (bench.html) are not kept.
    if (path !== '' && path !== 'index.html') return;
    path = 'index.html';
  }
  if (Object.hasOwn(LISTED, path)) event.respondWith(listed(path));
  else if (path.startsWith('data/')) event.respondWith(chunk(event, path));
});

// --- what the page asks -------------------------------------------------------------------------

/**
 * Keeps what the page has used beyond the page itself: the WebGPU module (`webgpu`) and the
 * chunks named in `chunks` (only those the kept index lists). Answers what the cache now holds.
 */
async function keep({ webgpu, chunks }) {
  const cache = await caches.open(CACHE);
  const wanted = webgpu ? Object.entries(OFFLINE.webgpu) : [];
  for (const file of Array.isArray(chunks) ? chunks : []) {
    const hash = await chunkHash(cache, String(file));
    if (hash) wanted.push([`data/${file}`, hash]);
  }
  const failed = [];
  for (const [path, hash] of wanted) {
    if (await cache.match(keyOf(path))) continue;
    try {
      await cache.put(keyOf(path), await fetchChecked(path, hash));
    } catch (err) {
      failed.push(err.message);
    }
  }
  const kept = new Set((await cache.keys()).map((request) => pathIn(request.url)));
  return {
    version: OFFLINE.version,
    webgpu: Object.keys(OFFLINE.webgpu).every((path) => kept.has(path)),
    chunks: [...kept].filter((path) => path?.startsWith('data/') && path !== INDEX).map((path) => path.slice('data/'.length)),
    failed,
  };
}

self.addEventListener('message', (event) => {
  const { data } = event;
  if (data?.type === 'take-over') self.skipWaiting();
  else if (data?.type === 'keep') {
    const answer = keep(data).catch((err) => ({ version: OFFLINE.version, webgpu: false, chunks: [], failed: [err.message] }));
    event.waitUntil(answer.then((a) => event.ports[0]?.postMessage(a)));
  }
});
