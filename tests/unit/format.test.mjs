// How the page writes numbers, durations, errors and model names (www/js/shared/format.js): one
// spelling each for the status line, the facts and compare mode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, formatLoss, formatNumber, message, modelName } from '../../www/js/shared/format.js';

test('numbers with thousands separators', () => {
  assert.equal(formatNumber(0), '0');
  assert.equal(formatNumber(60000), '60,000');
  assert.equal(formatNumber(1234567), '1,234,567');
});

test('losses: four decimals, or three significant digits below 0.01', () => {
  assert.equal(formatLoss(0.06712), '0.0671');
  assert.equal(formatLoss(0.01), '0.0100');
  assert.equal(formatLoss(0.0099876), '0.00999');
  assert.equal(formatLoss(0.000123456), '0.000123');
});

test('time left in seconds, minutes or hours', () => {
  assert.equal(formatDuration(12.4), '12 s');
  assert.equal(formatDuration(-3), '0 s');
  assert.equal(formatDuration(65), '1 min 5 s');
  assert.equal(formatDuration(3 * 3600 + 7 * 60 + 9), '3 h 7 min');
  assert.equal(formatDuration(Infinity), '…');
  assert.equal(formatDuration(NaN), '…');
});

test('errors in words, whatever was thrown', () => {
  assert.equal(message(new Error('the file is empty')), 'the file is empty');
  assert.equal(message('plain text'), 'plain text');
  assert.equal(message(42), '42');
});

test('the conv model is written out in full, once', () => {
  assert.equal(modelName('conv'), 'convolutional');
  assert.equal(modelName('dense'), 'dense');
});
