#!/usr/bin/env node
// Draws the page's icons (for the web app manifest, www/manifest.webmanifest): a handwritten 2 as
// an MNIST digit is, 28x28 grey pixels on black, on the page's blue, written as PNGs.
//
//   node tools/icons.mjs [www/icons]
//
// Plain Node with no packages: the stroke is a polyline inked by distance, as a pen of even width
// would, and the PNG is written by hand (zlib from Node). ./build.sh build runs it when this file
// changes. The digit sits inside the middle 60% of the square, so a launcher that crops the icon
// to a circle (a maskable icon) keeps all of it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const out = process.argv[2] ?? 'www/icons';
const SIZES = [192, 512];
const SIDE = 28;
const BLUE = [0x25, 0x63, 0xeb];

// The 2's stroke in the 28x28 grid: the arc, the diagonal, the base.
const STROKE = [
  [8.5, 10], [9.5, 7.5], [12, 5.8], [15.5, 5.6], [18.5, 7.2], [19.6, 10], [18.6, 13.2],
  [15.5, 16.5], [11.5, 19.8], [8.2, 22.4], [12, 22.3], [16, 22.1], [20.2, 22.2],
];
const PEN = 1.7; // half the stroke's width, in pixels of the grid

function distanceToSegment([px, py], [ax, ay], [bx, by]) {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

/** The digit: 28x28 grey levels in [0, 1], soft at the stroke's edge as MNIST's scans are. */
function digit() {
  const grey = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const centre = [x + 0.5, y + 0.5];
      let d = Infinity;
      for (let i = 1; i < STROKE.length; i++) d = Math.min(d, distanceToSegment(centre, STROKE[i - 1], STROKE[i]));
      grey[y * SIDE + x] = Math.max(0, Math.min(1, (PEN + 0.8 - d) / 1.6));
    }
  }
  return grey;
}

/** RGBA pixels of the icon at `size`: the blue square, the black tile, the digit's pixels. */
function icon(size, grey) {
  const rgba = new Uint8Array(size * size * 4);
  const tile = Math.round(size * 0.6);
  const from = Math.round((size - tile) / 2);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let color = BLUE;
      const tx = x - from;
      const ty = y - from;
      if (tx >= 0 && ty >= 0 && tx < tile && ty < tile) {
        const v = Math.round(255 * grey[Math.floor((ty * SIDE) / tile) * SIDE + Math.floor((tx * SIDE) / tile)]);
        color = [v, v, v];
      }
      rgba.set([...color, 255], (y * size + x) * 4);
    }
  }
  return rgba;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG of `size` x `size` RGBA pixels: 8 bits a channel, no filter, no interlace. */
function png(size, rgba) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) rows.set(rgba.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

mkdirSync(out, { recursive: true });
const grey = digit();
for (const size of SIZES) writeFileSync(join(out, `icon-${size}.png`), png(size, icon(size, grey)));
console.log(`${out}: icon-${SIZES.join('.png, icon-')}.png`);
