// PyTorch-trained models in the page's wasm modules: tests/fixtures/pytorch/ holds the study's two
// models trained in PyTorch (their state_dicts in safetensors) and PyTorch's own codes and
// reconstructions of the first 64 test digits (tools/pytorch_interop.py wrote them). Each module
// loads each state_dict through the Lab's `load`, as "Load model file" does, and gives PyTorch's
// numbers back; its export reads back as the same tensors in PyTorch's names and layout.
//
//   LAB_URL=http://127.0.0.1:8000/ node --test tests/module/pytorch.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { chunk } from '../../tools/export-web-data.mjs';
import { browserForFile, openBlankPage, testNoProblems } from '../support/pagekit.mjs';
import { maxAbsDiff, readSafetensors } from '../support/safetensors.mjs';

const DIGITS = 64;
const RUN_MS = 600_000;
// tests/rust/pytorch.rs's rule, for the same reason (said there): reconstructions within 1e-5,
// max absolute difference; codes within 1e-5 of their largest size where that is over 1.
const TOLERANCE = 1e-5;

const fixture = (name) => readFileSync(new URL(`../fixtures/pytorch/${name}`, import.meta.url));

/** The first 64 test digits as one page chunk, as tools/export-web-data.mjs cuts them. */
function digitsChunk() {
  const read = (file) => gunzipSync(readFileSync(new URL(`../../data/mnist/${file}`, import.meta.url)));
  return chunk(read('t10k-images-idx3-ubyte.gz').subarray(16), read('t10k-labels-idx1-ubyte.gz').subarray(8), 0, DIGITS);
}

// Runs in the page: each module loads `model` (base64) into a Lab on its backend holding the 64
// digits, and returns its codes and reconstructions of them, what `load` said, and its export.
async function importIn({ modelBase64, chunkBase64, pkg, backend }) {
  const bytes = (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  // In slices: one call with the whole file's bytes as arguments overflows the stack.
  const base64 = (data) => {
    let text = '';
    for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const m = await import(new URL(`${pkg}/autoencoder_lab.js`, location.href).href);
  await m.default();
  const lab = await m.Lab.create(backend);
  lab.addData('train', bytes(chunkBase64));
  lab.addData('test', bytes(chunkBase64));
  // Asked for a dense model with a linear code: a conv file is the file's model all the same.
  const summary = lab.load(bytes(modelBase64), 'dense', 32, 1e-3, 0, 'linear');
  const pixels = lab.testPixels(0, 64);
  const r = {
    summary,
    model: lab.model,
    codeActivation: lab.codeActivation,
    reconstructions: Array.from(await lab.reconstruct(pixels)),
    codes: Array.from(await lab.encode(pixels)),
    exported: base64(await lab.savePytorch()),
  };
  lab.free();
  return r;
}

let page;
const problems = browserForFile(async (opened) => {
  page = opened.page;
  await openBlankPage(page);
});

const chunkBase64 = digitsChunk().toString('base64');

for (const [pkg, backend] of [['pkg-cpu', 'cpu'], ['pkg', 'webgpu']]) {
  for (const kind of ['dense', 'conv']) {
    test(`${pkg} on ${backend}: PyTorch's ${kind} model gives PyTorch's codes and reconstructions, and exports its tensors`, { timeout: RUN_MS }, async () => {
      const model = fixture(`${kind}.safetensors`);
      const r = await page.evaluate(importIn, { modelBase64: model.toString('base64'), chunkBase64, pkg, backend });
      assert.equal(r.model, kind);
      const { imported } = JSON.parse(r.summary);
      assert.match(imported, new RegExp(`^a PyTorch ${kind} model with a ${kind === 'dense' ? 3 : 64}-number code`));
      if (kind === 'dense') {
        assert.equal(r.codeActivation, 'linear');
        assert.match(imported, /as the Training panel's code activation says \(the file cannot say it\)/);
      }

      const expected = readSafetensors(fixture(`${kind}.outputs.safetensors`)).tensors;
      const reconstructions = maxAbsDiff(r.reconstructions, expected.reconstructions.values);
      const largest = expected.codes.values.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      const codes = maxAbsDiff(r.codes, expected.codes.values) / largest;
      console.log(`# ${pkg} ${backend} ${kind}: reconstructions ${reconstructions.toExponential(2)}, codes ${codes.toExponential(2)} (scaled)`);
      assert.ok(reconstructions <= TOLERANCE, `reconstructions differ from PyTorch's by ${reconstructions}`);
      assert.ok(codes <= TOLERANCE, `codes differ from PyTorch's by ${codes} of their largest`);

      // The export holds PyTorch's own tensors, in its names and layout, to the bit.
      const theirs = readSafetensors(model);
      const ours = readSafetensors(Buffer.from(r.exported, 'base64'));
      assert.deepEqual(ours.names, theirs.names);
      for (const name of theirs.names) {
        assert.deepEqual(ours.tensors[name].shape, theirs.tensors[name].shape, name);
        assert.equal(maxAbsDiff(ours.tensors[name].values, theirs.tensors[name].values), 0, name);
      }
      assert.equal(ours.metadata.model, kind);
    });
  }
}

testNoProblems(problems);
