// Fetches the MNIST chunks that ./build.sh puts in www/data/, checks each one against the index
// (length and SHA-256) and keeps them in memory, so a larger subset only fetches what is new.
import { IMAGE_SIDE } from '../shared/constants.js';

const DATA_DIR = new URL('../../data/', import.meta.url);

// A chunk holds 1,000 images (about 160 KB gzipped, 785 KB raw); an index promising far more
// is broken, and its sizes must not decide how much memory the page takes.
const MAX_CHUNK_IMAGES = 10_000;
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

// A few requests in flight hide the per-request latency of a remote server without flooding it.
const PARALLEL_FETCHES = 4;

/** An error about the data files, worded for the status line. */
export class DataError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DataError';
  }
}

/** Fetches and checks data/index.json. */
export async function fetchIndex() {
  const url = new URL('index.json', DATA_DIR);
  let response;
  try {
    response = await fetch(url, { cache: 'no-cache' });
  } catch (err) {
    throw new DataError(`could not fetch data/index.json (${err.message}); is the server still running?`);
  }
  if (!response.ok) {
    throw new DataError(
      `data/index.json: HTTP ${response.status}; make the data with ./build.sh build`);
  }
  let index;
  try {
    index = await response.json();
  } catch {
    throw new DataError('data/index.json is not valid JSON; rebuild it with ./build.sh build');
  }
  checkIndex(index);
  return index;
}

function checkIndex(index) {
  const fail = (what) => {
    throw new DataError(`data/index.json: ${what}; rebuild it with ./build.sh build`);
  };
  if (index?.image_side !== IMAGE_SIDE) fail(`image_side is ${index?.image_side}, expected ${IMAGE_SIDE}`);
  const chunkSize = index.chunk_size;
  if (!Number.isInteger(chunkSize) || chunkSize <= 0 || chunkSize > MAX_CHUNK_IMAGES) fail(`chunk_size is ${chunkSize}`);
  for (const split of ['train', 'test']) {
    const entries = index[split];
    if (!Array.isArray(entries) || entries.length === 0) fail(`no "${split}" chunks listed`);
    for (const e of entries) {
      const ok =
        typeof e?.file === 'string' &&
        /^[\w.-]+$/.test(e.file) && // a plain file name: the index cannot point outside data/
        Number.isInteger(e.images) && e.images > 0 && e.images <= chunkSize &&
        // The reader allocates what `bytes` says before the first byte arrives.
        Number.isInteger(e.bytes) && e.bytes > 0 && e.bytes <= MAX_CHUNK_BYTES &&
        typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256);
      if (!ok) fail(`bad ${split} entry ${JSON.stringify(e)}`);
    }
  }
}

/** The first entries of `entries` that together hold at least `images` images. */
export function chunksFor(entries, images) {
  const chosen = [];
  let total = 0;
  for (const entry of entries) {
    if (total >= images) break;
    chosen.push(entry);
    total += entry.images;
  }
  if (total < images) {
    throw new DataError(`the index lists only ${total} images, ${images} were asked for`);
  }
  return chosen;
}

/** Total bytes of a list of index entries (for the subset menu and the progress line). */
export const totalBytes = (entries) => entries.reduce((sum, e) => sum + e.bytes, 0);

/** Checked chunk bytes by file name, kept for the life of the page. */
export class ChunkCache {
  #bytes = new Map();

  has(file) {
    return this.#bytes.has(file);
  }

  /** The names of the chunk files held. */
  files() {
    return [...this.#bytes.keys()];
  }

  get(file) {
    const bytes = this.#bytes.get(file);
    if (!bytes) throw new Error(`chunk ${file} was not fetched`);
    return bytes;
  }

  /**
   * Fetches the entries not cached yet, checks them, caches them.
   * onProgress({ loadedBytes, totalBytes, doneChunks, totalChunks }) is called as bytes arrive.
   */
  async fetchAll(entries, onProgress = () => {}) {
    const missing = entries.filter((e) => !this.#bytes.has(e.file));
    const progress = { loadedBytes: 0, totalBytes: totalBytes(missing), doneChunks: 0, totalChunks: missing.length };
    onProgress({ ...progress });
    const queue = [...missing];
    // The first failure stops the other fetches, so no later progress report hides the error.
    const abort = new AbortController();
    const worker = async () => {
      for (let entry = queue.shift(); entry && !abort.signal.aborted; entry = queue.shift()) {
        const bytes = await fetchChunk(entry, abort.signal, (n) => {
          progress.loadedBytes += n;
          if (!abort.signal.aborted) onProgress({ ...progress });
        });
        await checkDigest(entry, bytes);
        this.#bytes.set(entry.file, bytes);
        progress.doneChunks += 1;
        if (!abort.signal.aborted) onProgress({ ...progress });
      }
    };
    const workers = Array.from({ length: Math.min(PARALLEL_FETCHES, missing.length) }, () =>
      worker().catch((err) => {
        abort.abort();
        throw err;
      }),
    );
    // Settle all before reporting, so no worker is still running when the caller retries.
    const results = await Promise.allSettled(workers);
    const failure = results.find((r) => r.status === 'rejected' && !(r.reason?.name === 'AbortError'));
    if (failure) throw failure.reason;
  }
}

async function fetchChunk(entry, signal, onBytes) {
  const url = new URL(entry.file, DATA_DIR);
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    // Without a network the page runs from the copy this browser keeps, which holds the chunks
    // loaded on earlier visits only (app/offline.js says how many images).
    throw new DataError(`could not fetch ${entry.file} (${err.message}); without a network, only the images loaded on an earlier visit are at hand`);
  }
  if (!response.ok) {
    const hint = response.status === 404 ? ': the file is missing; rebuild the data with ./build.sh build' : '';
    throw new DataError(`${entry.file}: HTTP ${response.status}${hint}`);
  }
  // Read the body in pieces so the progress bar moves within a chunk, into a buffer of the
  // size the index promises: a longer body is refused without growing memory.
  const bytes = new Uint8Array(entry.bytes);
  let length = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (length + value.length > bytes.length) {
      await reader.cancel();
      throw new DataError(
        `${entry.file} is longer than the ${entry.bytes} bytes the index lists; rebuild the data with ./build.sh build`);
    }
    bytes.set(value, length);
    length += value.length;
    onBytes(value.length);
  }
  if (length !== entry.bytes) {
    // A server that adds Content-Encoding: gzip to .gz files makes the browser unpack them.
    const encoding = response.headers.get('content-encoding');
    const hint = encoding ? ` (the server sent it with Content-Encoding: ${encoding})` : ' (truncated?)';
    throw new DataError(`${entry.file}: got ${length} bytes, the index lists ${entry.bytes}${hint}`);
  }
  return bytes;
}

async function checkDigest(entry, bytes) {
  if (!globalThis.crypto?.subtle) {
    // WebCrypto (and WebGPU) exist only in secure contexts.
    throw new DataError('this page needs https or localhost (a secure context) to check the data');
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  if (hex !== entry.sha256) {
    throw new DataError(
      `${entry.file} is corrupt: its SHA-256 does not match the index; rebuild the data with ./build.sh build`);
  }
}
