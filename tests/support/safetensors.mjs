// safetensors files read and written in the JS tests, as the format's spec lays them out: an
// 8-byte little-endian header length, a JSON header (each tensor's dtype, shape and byte range,
// and string metadata), then the tensors' bytes. F32 only: the lab's models hold nothing else.

/** A file's F32 tensors by name ({ shape, values }), their names in the header's order, its metadata. */
export function readSafetensors(bytes) {
  const buffer = Buffer.from(bytes);
  const length = Number(buffer.readBigUInt64LE(0));
  const header = JSON.parse(buffer.subarray(8, 8 + length).toString('utf8'));
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const tensors = {};
  for (const name of names) {
    const { dtype, shape, data_offsets: [start, end] } = header[name];
    if (dtype !== 'F32') throw new Error(`${name} is ${dtype}, not F32`);
    const data = Uint8Array.from(buffer.subarray(8 + length + start, 8 + length + end));
    tensors[name] = { shape, values: new Float32Array(data.buffer) };
  }
  return { tensors, names, metadata: header.__metadata__ ?? {} };
}

/** `tensors` ({ name: { shape, values } }, in that order) as a file, with `metadata`. */
export function writeSafetensors(tensors, metadata = {}) {
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const [name, { shape, values }] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + values.byteLength] };
    offset += values.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const data = Object.values(tensors).map(({ values }) => Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  return Buffer.concat([length, json, ...data]);
}

/** The largest absolute difference between two equally long arrays of numbers. */
export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`${a.length} numbers against ${b.length}`);
  return a.reduce((max, v, i) => Math.max(max, Math.abs(v - b[i])), 0);
}
