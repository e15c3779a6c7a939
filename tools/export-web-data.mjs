#!/usr/bin/env node
// Writes the page's MNIST data: chunks of 1,000 images (an images IDX record followed by a labels
// IDX record, gzipped; the format `MnistSet::from_chunk` in src/data.rs reads) and index.json
// (each chunk's file, image count, byte length and SHA-256, which www/js/data.js checks).
//
//   node tools/export-web-data.mjs [--data-dir data/mnist] [--out www/data]
//
// Plain Node with no packages, so the first `./build.sh serve` does not have to compile burn
// natively just to cut MNIST into pieces.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const CHUNK_IMAGES = 1000;
const IMAGE_SIDE = 28;
const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;
const SPLITS = { train: 'train', test: 't10k' };

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

function args() {
  const options = { dataDir: 'data/mnist', out: 'www/data' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) fail(`${flag} needs a value`);
    if (flag === '--data-dir') options.dataDir = value;
    else if (flag === '--out') options.out = value;
    else fail(`unknown option ${flag} (use --data-dir DIR and --out DIR)`);
  }
  return options;
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** The published files, checked against SHA256SUMS so a corrupted copy is named, not chunked. */
function readChecked(dataDir, file, sums) {
  let bytes;
  try {
    bytes = readFileSync(join(dataDir, file));
  } catch (err) {
    fail(`${join(dataDir, file)}: cannot read (${err.code ?? err.message}); the MNIST files should be in ${dataDir}`);
  }
  if (sums.get(file) !== sha256(bytes)) {
    fail(`${join(dataDir, file)} does not match its SHA-256 in SHA256SUMS; restore it from the repository`);
  }
  return gunzipSync(bytes);
}

/** The body of an IDX record after its header, checked against what MNIST's header must say. */
function idxBody(bytes, magic, dims, file) {
  const header = 4 * (1 + dims.length);
  if (bytes.length < header) fail(`${file}: truncated IDX header`);
  const words = Array.from({ length: 1 + dims.length }, (_, i) => bytes.readUInt32BE(4 * i));
  if (words[0] !== magic) fail(`${file}: IDX magic 0x${words[0].toString(16)}, expected 0x${magic.toString(16)}`);
  dims.forEach((want, i) => {
    if (want !== null && words[1 + i] !== want) fail(`${file}: dimension ${i + 1} is ${words[1 + i]}, expected ${want}`);
  });
  const count = words[1];
  const itemBytes = dims.slice(1).reduce((a, b) => a * b, 1);
  if (bytes.length !== header + count * itemBytes) fail(`${file}: ${bytes.length} bytes, its header says ${header + count * itemBytes}`);
  return { count, body: bytes.subarray(header) };
}

function be32(...words) {
  const out = Buffer.alloc(4 * words.length);
  words.forEach((w, i) => out.writeUInt32BE(w, 4 * i));
  return out;
}

/**
 * Images `start` to `start + n` as one chunk: `images` and `labels` are the bodies of MNIST's IDX
 * records (after their headers). The page tests make their small chunks with it too.
 */
export function chunk(images, labels, start, n) {
  const raw = Buffer.concat([
    be32(IMAGES_MAGIC, n, IMAGE_SIDE, IMAGE_SIDE),
    images.subarray(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS),
    be32(LABELS_MAGIC, n),
    labels.subarray(start, start + n),
  ]);
  return gzipSync(raw, { level: 9 });
}

function main() {
  const { dataDir, out } = args();
  let sumsText;
  try {
    sumsText = readFileSync(join(dataDir, 'SHA256SUMS'), 'utf8');
  } catch (err) {
    fail(`${join(dataDir, 'SHA256SUMS')}: cannot read (${err.code ?? err.message})`);
  }
  const sums = new Map(sumsText.trim().split('\n').map((line) => line.trim().split(/\s+\*?/).reverse()));
  mkdirSync(out, { recursive: true });
  const index = { chunk_size: CHUNK_IMAGES, image_side: IMAGE_SIDE };
  for (const [split, prefix] of Object.entries(SPLITS)) {
    const imagesFile = `${prefix}-images-idx3-ubyte.gz`;
    const labelsFile = `${prefix}-labels-idx1-ubyte.gz`;
    const images = idxBody(readChecked(dataDir, imagesFile, sums), IMAGES_MAGIC, [null, IMAGE_SIDE, IMAGE_SIDE], imagesFile);
    const labels = idxBody(readChecked(dataDir, labelsFile, sums), LABELS_MAGIC, [null], labelsFile);
    if (images.count !== labels.count) fail(`${imagesFile} has ${images.count} images but ${labelsFile} has ${labels.count} labels`);
    index[split] = [];
    for (let start = 0, i = 0; start < images.count; start += CHUNK_IMAGES, i += 1) {
      const n = Math.min(CHUNK_IMAGES, images.count - start);
      const bytes = chunk(images.body, labels.body, start, n);
      const file = `${split}-${String(i).padStart(2, '0')}.idx.gz`;
      writeFileSync(join(out, file), bytes);
      index[split].push({ file, images: n, bytes: bytes.length, sha256: sha256(bytes) });
    }
  }
  writeFileSync(join(out, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  const count = (split) => index[split].reduce((sum, e) => sum + e.images, 0);
  console.error(`wrote ${count('train')} training and ${count('test')} test images to ${out}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
