// A run in a link (www/js/app/link.js), in Node: what a link gives the form, value by value with
// the form's own checks; what a refused value says; and that the address the page writes reads
// back as the same form. The page applying it (the form filled, the address following) is
// tests/page/link.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeGiven, linkSearch, readLink } from '../../www/js/app/link.js';

// The form as the page opens it (index.html), its backend as the page put it.
const DEFAULTS = {
  backend: 'cpu',
  model: 'conv',
  codeActivation: 'linear',
  subset: '10000',
  epochs: '2',
  batchSize: '32',
  learningRate: '0.001',
  seed: '0',
};

test('a link with every setting gives exactly those, and compare its code sizes', () => {
  const link = readLink('?backend=webgpu&model=dense&code=relu&images=5000&epochs=7&batch=64&lr=0.003&seed=42&compare=relu', DEFAULTS);
  assert.deepEqual(link.fields, {
    backend: 'webgpu',
    model: 'dense',
    codeActivation: 'relu',
    subset: '5000',
    epochs: '7',
    batchSize: '64',
    learningRate: '0.003',
    seed: '42',
  });
  assert.deepEqual(link.errors, {});
  assert.equal(link.compare, 'relu');
  assert.equal(link.compareError, null);
  assert.equal(link.given.length, 8);
});

test('an address without settings gives nothing, and parameters that are not settings are left alone', () => {
  for (const search of ['', '?', '?workers=2', '?utm=x&workers=1']) {
    const link = readLink(search, DEFAULTS);
    assert.deepEqual(link, { given: [], fields: {}, errors: {}, compare: null, compareError: null }, search);
  }
});

test("each bad value gets the form's own message, and the others still count", () => {
  const link = readLink('?model=mlp&code=tanh&images=7&epochs=abc&batch=0&lr=-1&seed=1.5&backend=tpu&compare=128', DEFAULTS);
  assert.deepEqual(link.fields, {});
  assert.deepEqual(Object.keys(link.errors).sort(), ['backend', 'batchSize', 'codeActivation', 'epochs', 'learningRate', 'model', 'seed', 'subset']);
  assert.match(link.errors.model, /^choose dense or conv: the link's "mlp" is not used, the default stands$/);
  assert.match(link.errors.codeActivation, /^choose a linear or a ReLU code: /);
  assert.match(link.errors.subset, /^choose a subset: /);
  assert.match(link.errors.epochs, /^epochs must be a whole number: the link's "abc"/);
  assert.match(link.errors.batchSize, /^batch size must be at least 1: /);
  assert.match(link.errors.learningRate, /^learning rate must be above 0: /);
  assert.match(link.errors.seed, /^seed must be a whole number: /);
  assert.match(link.errors.backend, /^choose WebGPU or CPU: /);
  assert.equal(link.compare, null);
  assert.match(link.compareError, /^choose one of the code sizes offered \(seed, relu, 3, 16, 64\): the link's "128"/);

  const mixed = readLink('?model=dense&epochs=1e9&seed=3', DEFAULTS);
  assert.deepEqual(mixed.fields, { model: 'dense', seed: '3' }, 'the good values stand beside a bad one');
  assert.match(mixed.errors.epochs, /^epochs must be a whole number/);
});

test("a value is checked against the link's other values: a batch larger than the link's images is refused", () => {
  const link = readLink('?images=1000&batch=2000', DEFAULTS);
  assert.deepEqual(link.fields, { subset: '1000' });
  assert.match(link.errors.batchSize, /^batch size must be at most the subset \(1,000\)/);
  // Against the default subset (10,000) the same batch fits.
  assert.deepEqual(readLink('?batch=2000', DEFAULTS).fields, { batchSize: '2000' });
});

test("a conv link cannot leave a code the menu lacks; the menus' values are the menus' spellings", () => {
  assert.match(readLink('?model=conv&code=tanh', DEFAULTS).errors.codeActivation, /linear or a ReLU/);
  assert.deepEqual(readLink('?images=1e4&epochs=%203%20', DEFAULTS).fields, { subset: '10000', epochs: '3' });
});

test('a long bad value is quoted cut short, as text', () => {
  const { errors } = readLink(`?seed=${'<b>'.repeat(40)}`, DEFAULTS);
  assert.match(errors.seed, /the link's "<b><b><b><b><b><b><b><b>…" is not used/);
});

test('the address the page writes names every setting, the backend only by hand, and reads back as the same form', () => {
  const fields = { ...DEFAULTS, model: 'dense', codeActivation: 'relu', seed: '9' };
  const search = linkSearch(fields, { compare: '0', backendByHand: false }, '?workers=2&seed=1');
  assert.equal(search, '?model=dense&code=relu&images=10000&epochs=2&batch=32&lr=0.001&seed=9&compare=seed&workers=2');
  const back = readLink(search, { ...DEFAULTS, model: 'conv', seed: '0' });
  const { backend, ...rest } = fields;
  assert.deepEqual(back.fields, rest);
  assert.equal(back.compare, '0');

  const byHand = linkSearch({ ...DEFAULTS, backend: 'webgpu' }, { compare: '16', backendByHand: true });
  assert.equal(byHand, '?backend=webgpu&model=conv&images=10000&epochs=2&batch=32&lr=0.001&seed=0&compare=16');
  assert.equal(readLink(byHand, DEFAULTS).fields.backend, 'webgpu');
  assert.doesNotMatch(byHand, /code=/, "the conv model's code is no choice, and not in its link");
});

test('the note names the settings the link gave, in the form’s words', () => {
  assert.equal(
    describeGiven({ model: 'dense', codeActivation: 'relu', subset: '10000', epochs: '1', seed: '0', backend: 'cpu' }),
    'the CPU backend, the dense model, a ReLU code, 10,000 images, 1 epoch, seed 0',
  );
});
