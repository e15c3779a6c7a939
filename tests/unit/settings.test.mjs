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
