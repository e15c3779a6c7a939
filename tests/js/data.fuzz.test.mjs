// Fuzzes the page's data reader (www/js/data.js) in Node: index.json and chunk bytes mangled the
// ways a broken server, proxy or disk mangles them, and arbitrary bytes. Every case must end in a
// checked index, checked chunks, or a DataError (the page shows its message); never another
// exception, a hang, or a buffer sized by a field nobody checked.
//
// Reads the chunks ./build.sh writes into www/data. FUZZ_CASES sets the cases per target
// (default 2,000); FUZZ_SEED replays a run; the seed in use is printed.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ChunkCache, DataError, chunksFor, fetchIndex } from '../../www/js/data.js';
import { seedFrom, splitmix } from '../support/random.mjs';

const DATA = join(dirname(fileURLToPath(import.meta.url)), '../../www/data');
const CASES = Number(process.env.FUZZ_CASES ?? 2000);
const SEED = seedFrom('FUZZ_SEED');
const CASE_MS = 5000;

console.log(`# data.js fuzz: ${CASES} cases per target, seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);

const random = splitmix(SEED);
const int = (n) => Math.floor(random() * n);
const pick = (list) => list[int(list.length)];

/** What the fake server answers: a body (bytes) per file name, and headers. */
let served = new Map();
globalThis.fetch = async (url, { signal } = {}) => {
  if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
  const name = String(url).split('/').pop();
  const entry = served.get(name);
  if (!entry) return new Response('not found', { status: 404 });
  return new Response(entry.body, { status: entry.status ?? 200, headers: entry.headers ?? {} });
};

/** Ends in a value or a DataError within CASE_MS; anything else fails with the case's story. */
async function settle(story, run) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung for ${CASE_MS} ms`)), CASE_MS);
  });
  try {
    await Promise.race([run(), timeout]);
    return 'ok';
  } catch (err) {
    if (err instanceof DataError) return 'refused';
    assert.fail(`seed ${SEED}, ${story}: ${err?.name}: ${err?.message}`);
  } finally {
    clearTimeout(timer);
  }
}

function mutateBytes(bytes) {
  const out = Uint8Array.from(bytes);
  switch (int(5)) {
    case 0:
      return out.subarray(0, int(out.length));
    case 1:
      for (let i = int(8) + 1; i > 0; i--) out[int(out.length)] ^= 1 << int(8);
      return out;
    case 2:
      return Uint8Array.from([...out, ...Array.from({ length: 1 + int(512) }, () => int(256))]);
    case 3:
      return Uint8Array.from({ length: int(4096) }, () => int(256));
    default:
      return new Uint8Array(0);
  }
}

/** A field of a valid index entry changed to something a bad index could hold. */
function mutateIndex(index) {
  const copy = structuredClone(index);
  const weird = [-1, 0, 1.5, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER, 1e308, null, '', 'x', [], {}, true, '../../etc/passwd', 'a/b', '%2e%2e'];
  const split = pick(['train', 'test']);
  switch (int(6)) {
    case 0:
      copy[split][int(copy[split].length)][pick(['file', 'images', 'bytes', 'sha256'])] = pick(weird);
      break;
    case 1:
      copy[pick(['image_side', 'chunk_size', 'train', 'test'])] = pick(weird);
      break;
    case 2:
      delete copy[split][int(copy[split].length)][pick(['file', 'images', 'bytes', 'sha256'])];
      break;
    case 3:
      copy[split] = Array.from({ length: int(4) }, () => pick(weird));
      break;
    case 4:
      copy[split][0].bytes = copy[split][0].bytes + int(2 ** 20) - 2 ** 19;
      break;
    default:
      return pick([null, [], 'index', 42]);
  }
  return copy;
}

const available = existsSync(join(DATA, 'index.json'));

test('fetchIndex: mangled and arbitrary index.json ends in a checked index or a DataError', { skip: !available && 'www/data is not built' }, async () => {
  const text = readFileSync(join(DATA, 'index.json'), 'utf8');
  const index = JSON.parse(text);
  const outcomes = { ok: 0, refused: 0 };
  for (let i = 0; i < CASES; i++) {
    const textual = random() < 0.3;
    const body = textual ? mutateBytes(new TextEncoder().encode(text)) : JSON.stringify(mutateIndex(index));
    served = new Map([['index.json', { body, status: pick([200, 200, 200, 404, 500]) }]]);
    outcomes[await settle(`index case ${i}`, async () => {
      const checked = await fetchIndex();
      // What passes the check is safe to use: names stay in data/, sizes are sane.
      for (const e of [...checked.train, ...checked.test]) {
        assert.match(e.file, /^[\w.-]+$/);
        assert.ok(!e.file.includes('..'), `case ${i}: ${e.file} leaves data/`);
        assert.ok(Number.isInteger(e.bytes) && e.bytes > 0 && e.bytes <= 16 * 1024 * 1024, `case ${i}: ${e.bytes} bytes passed`);
        assert.ok(Number.isInteger(e.images) && e.images > 0 && e.images <= checked.chunk_size, `case ${i}: ${e.images} images passed`);
      }
    })]++;
  }
  console.log(`# index.json: ${CASES} cases, ${outcomes.ok} accepted, ${outcomes.refused} refused with a DataError, 0 other errors`);
  assert.ok(outcomes.refused > CASES / 2, 'most mangled indexes are refused');
});

test('ChunkCache.fetchAll: mangled chunk bytes end in checked chunks or a DataError', { skip: !available && 'www/data is not built' }, async () => {
  const index = JSON.parse(readFileSync(join(DATA, 'index.json'), 'utf8'));
  const entries = chunksFor(index.test, 3000);
  const bodies = new Map(entries.map((e) => [e.file, readFileSync(join(DATA, e.file))]));
  const outcomes = { ok: 0, refused: 0 };
  for (let i = 0; i < CASES; i++) {
    served = new Map(entries.map((e) => [e.file, { body: bodies.get(e.file) }]));
    const victim = pick(entries).file;
    const mode = int(4);
    if (mode === 0) served.get(victim).body = mutateBytes(bodies.get(victim));
    if (mode === 1) served.get(victim).status = pick([403, 404, 500, 503]);
    if (mode === 2) served.get(victim).headers = { 'content-encoding': 'gzip' };
    if (mode === 3) served.delete(victim);
    const cache = new ChunkCache();
    outcomes[await settle(`chunk case ${i} (${victim}, mode ${mode})`, async () => {
      await cache.fetchAll(entries);
      // Accepted only if every chunk is exactly what the index promised.
      for (const e of entries) assert.deepEqual(Buffer.from(cache.get(e.file)), bodies.get(e.file), `case ${i}: ${e.file} accepted altered`);
    })]++;
  }
  console.log(`# chunks: ${CASES} cases, ${outcomes.ok} accepted intact, ${outcomes.refused} refused with a DataError, 0 other errors`);
  assert.ok(outcomes.refused > CASES / 2, 'most mangled chunks are refused');
});
