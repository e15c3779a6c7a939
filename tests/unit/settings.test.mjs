// The training form's checks (www/js/app/settings.js) for the code's activation: a choice for the
// dense model only, since the conv model's code always has a ReLU (the wasm refuses a linear one);
// and a changed activation is a different model, so Resume must not carry on the old one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSettings, sameModelSettings } from '../../www/js/app/settings.js';

const FORM = {
  backend: 'cpu',
  model: 'dense',
  codeActivation: 'linear',
  subset: '10000',
  epochs: '2',
  batchSize: '32',
  learningRate: '0.001',
  seed: '0',
};

test("the dense model takes the form's code activation", () => {
  for (const codeActivation of ['linear', 'relu']) {
    const { settings, errors } = parseSettings({ ...FORM, codeActivation });
    assert.deepEqual(errors, {});
    assert.equal(settings.codeActivation, codeActivation);
  }
});

test("the conv model's code has a ReLU whatever the form says", () => {
  for (const codeActivation of ['linear', 'relu', '']) {
    const { settings } = parseSettings({ ...FORM, model: 'conv', codeActivation });
    assert.equal(settings.codeActivation, 'relu');
  }
});

test('an activation the page does not offer is refused next to its field', () => {
  const { settings, errors } = parseSettings({ ...FORM, codeActivation: 'tanh' });
  assert.equal(settings, null);
  assert.match(errors.codeActivation, /linear or a ReLU/);
});

test('another code activation needs a fresh model', () => {
  const linear = parseSettings(FORM).settings;
  const relu = parseSettings({ ...FORM, codeActivation: 'relu' }).settings;
  assert.ok(sameModelSettings(linear, parseSettings(FORM).settings));
  assert.ok(!sameModelSettings(linear, relu));
});

// Every other rule of the form, each with the message shown next to its field.

/** The one error `change` to the form makes, with no settings. */
function refused(change, options) {
  const { settings, errors } = parseSettings({ ...FORM, ...change }, options);
  assert.equal(settings, null, JSON.stringify(change));
  const fields = Object.keys(errors);
  assert.equal(fields.length, 1, `one field refused for ${JSON.stringify(change)}: ${fields}`);
  return [fields[0], errors[fields[0]]];
}

test('the form as the page starts: every field checked and typed', () => {
  const { settings, errors } = parseSettings(FORM);
  assert.deepEqual(errors, {});
  assert.deepEqual(settings, {
    backend: 'cpu',
    model: 'dense',
    codeActivation: 'linear',
    subset: 10000,
    epochs: 2,
    batchSize: 32,
    learningRate: 0.001,
    seed: 0,
  });
});

test('backend and model: only the ones the page offers', () => {
  for (const backend of ['webgpu', 'cpu']) assert.equal(parseSettings({ ...FORM, backend }).settings.backend, backend);
  for (const backend of ['', 'gpu', 'WebGPU']) assert.deepEqual(refused({ backend }), ['backend', 'choose WebGPU or CPU']);
  assert.equal(parseSettings({ ...FORM, model: 'conv' }).settings.model, 'conv');
  for (const model of ['', 'convolutional', 'Dense']) assert.deepEqual(refused({ model }), ['model', 'choose dense or conv']);
});

test('subset: one of the sizes the page offers', () => {
  for (const subset of ['1000', '5000', '10000', '60000']) {
    assert.equal(parseSettings({ ...FORM, subset }).settings.subset, Number(subset));
  }
  for (const subset of ['', '2000', '60001', 'all']) assert.deepEqual(refused({ subset }), ['subset', 'choose a subset']);
});

test('subset: no more than the server has', () => {
  const [field, text] = refused({ subset: '60000' }, { trainImages: 10000 });
  assert.equal(field, 'subset');
  assert.equal(text, 'this server has only 10,000 training images: choose a smaller subset');
  assert.deepEqual(parseSettings(FORM, { trainImages: 10000 }).errors, {}, 'exactly what it has');
});

test('whole numbers: epochs, batch size and seed, each within its bounds', () => {
  const cases = [
    ['epochs', '', 'enter epochs'],
    ['epochs', '   ', 'enter epochs'],
    ['epochs', '1.5', 'epochs must be a whole number'],
    ['epochs', '1e2', 'epochs must be a whole number'],
    ['epochs', 'two', 'epochs must be a whole number'],
    ['epochs', '0', 'epochs must be at least 1'],
    ['epochs', '1001', 'epochs must be at most 1,000'],
    ['batchSize', '', 'enter batch size'],
    ['batchSize', '0', 'batch size must be at least 1'],
    ['batchSize', '-8', 'batch size must be at least 1'],
    ['batchSize', '4097', 'batch size must be at most 4,096'],
    ['seed', '', 'enter seed'],
    ['seed', '-1', 'seed must be at least 0'],
    ['seed', '0x10', 'seed must be a whole number'],
    ['seed', '4294967296', 'seed must be at most 4,294,967,295'],
  ];
  for (const [field, text, message] of cases) assert.deepEqual(refused({ [field]: text }), [field, message], `${field} "${text}"`);
  const edges = parseSettings({ ...FORM, subset: '60000', epochs: ' +1000 ', batchSize: '4096', seed: '4294967295' });
  assert.deepEqual(edges.errors, {}, 'the bounds themselves, signs and spaces allowed');
  assert.deepEqual([edges.settings.epochs, edges.settings.batchSize, edges.settings.seed], [1000, 4096, 4294967295]);
});

test('learning rate: a number above 0, at most 1', () => {
  const cases = [
    ['', 'enter learning rate'],
    ['fast', 'learning rate must be a number, e.g. 0.001'],
    ['Infinity', 'learning rate must be a number, e.g. 0.001'],
    ['0', 'learning rate must be above 0'],
    ['-0.001', 'learning rate must be above 0'],
    ['1.5', 'learning rate must be at most 1'],
  ];
  for (const [text, message] of cases) assert.deepEqual(refused({ learningRate: text }), ['learningRate', message], `"${text}"`);
  for (const [text, value] of [['1e-3', 0.001], [' 0.5 ', 0.5], ['1', 1]]) {
    assert.equal(parseSettings({ ...FORM, learningRate: text }).settings.learningRate, value, `"${text}"`);
  }
});

test('batch size: at most the subset', () => {
  assert.deepEqual(refused({ subset: '1000', batchSize: '1001' }), ['batchSize', 'batch size must be at most the subset (1,000)']);
  assert.deepEqual(parseSettings({ ...FORM, subset: '1000', batchSize: '1000' }).errors, {});
});

test('every bad field is named at once', () => {
  const { settings, errors } = parseSettings({ ...FORM, model: 'x', epochs: '0', learningRate: '', seed: '-1' });
  assert.equal(settings, null);
  assert.deepEqual(Object.keys(errors).sort(), ['epochs', 'learningRate', 'model', 'seed']);
});

test('only epochs can change without a fresh model', () => {
  const base = parseSettings(FORM).settings;
  assert.ok(sameModelSettings(base, { ...base, epochs: 7 }));
  for (const [field, value] of Object.entries({
    backend: 'webgpu',
    model: 'conv',
    subset: 5000,
    batchSize: 64,
    learningRate: 0.01,
    seed: 1,
  })) {
    assert.ok(!sameModelSettings(base, { ...base, [field]: value }), field);
  }
  assert.ok(!sameModelSettings(base, null), 'no model yet');
});
