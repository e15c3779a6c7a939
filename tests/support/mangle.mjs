// Mangled copies of a conv model file, the kinds tests/fuzz.rs mangles natively by the thousand,
// for the wasm module to refuse: there usize is 32 bits wide, so a length that fits natively can
// overflow in wasm32.

/**
 * Mangled copies of a model file, each one that must be refused: cut short, a header length
 * past the header, the header's JSON broken or naming another model or code size, garbage after
 * the marker, bytes flipped in the weights or appended to them.
 */
export function mangle(whole, count, random) {
  const int = (n) => Math.floor(random() * n);
  const headerLength = whole.readUInt32LE(8);
  const headerEnd = 12 + headerLength;
  const header = whole.subarray(12, headerEnd).toString('utf8');
  const withHeader = (text) => {
    const json = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    return Buffer.concat([whole.subarray(0, 8), length, json, whole.subarray(headerEnd)]);
  };
  const kinds = [
    ['cut short', () => whole.subarray(0, int(whole.length - 1))],
    ['header length past the end', () => {
      const out = Buffer.from(whole);
      out.writeUInt32LE(whole.length + int(0xffffff00 - whole.length), 8);
      return out;
    }],
    ['header JSON broken', () => {
      const out = Buffer.from(whole);
      out[12 + int(Math.min(headerLength, 8))] = 0x7b ^ 0xff; // within the opening `{"model"`
      return out;
    }],
    ['header names the dense model', () => withHeader(header.replace('"model":"conv"', '"model":"dense"'))],
    ['header names another code size', () => {
      const latent = 1 + int(4095);
      return withHeader(header.replace(/"latent":\d+/, `"latent":${latent === 64 ? 65 : latent}`));
    }],
    ['garbage after the marker', () => Buffer.concat([whole.subarray(0, 8), Buffer.from(Array.from({ length: 64 + int(4096) }, () => int(256)))])],
    ['a weight byte flipped', () => {
      const out = Buffer.from(whole);
      const at = headerEnd + int(whole.length - headerEnd);
      out[at] ^= 1 << int(8);
      return out;
    }],
    ['bytes appended to the weights', () => Buffer.concat([whole, Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)))])],
  ];
  return Array.from({ length: count }, (_, i) => {
    const [what, make] = kinds[i % kinds.length];
    return { name: `mangled-${i}.bin`, what, buffer: make() };
  });
}
