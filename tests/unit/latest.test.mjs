// "Latest request wins" (www/js/shared/latest.js), which keeps the drawing's reconstruction and
// the map's decoding to one call into the worker at a time: a request while work runs replaces
// any waiting one, and the work can ask whether a newer request came meanwhile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latestWins } from '../../www/js/shared/latest.js';

/** Work that waits until the test lets it finish, recording what it ran with. */
function gatedWork() {
  const runs = [];
  const gates = [];
  const work = (...args) => {
    runs.push(args);
    return new Promise((resolve) => gates.push(resolve));
  };
  const finish = async () => {
    gates.shift()();
    // Let the queue start its next run.
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { runs, work, finish };
}

test('a request while idle runs at once, with its arguments', async () => {
  const { runs, work, finish } = gatedWork();
  const request = latestWins(work);
  request(1, 'a');
  assert.deepEqual(runs, [[1, 'a']]);
  await finish();
  request(2, 'b');
  assert.deepEqual(runs, [[1, 'a'], [2, 'b']]);
});

test('requests while work runs: only the newest runs next, once', async () => {
  const { runs, work, finish } = gatedWork();
  const request = latestWins(work);
  request(1);
  request(2);
  request(3);
  request(4);
  assert.deepEqual(runs, [[1]], 'one run at a time');
  await finish();
  assert.deepEqual(runs, [[1], [4]], 'the requests in between are dropped');
  await finish();
  assert.deepEqual(runs, [[1], [4]], 'nothing left to run');
});

test('superseded() tells the work a newer request is waiting', async () => {
  const seen = [];
  let release;
  const request = latestWins(async (n) => {
    await new Promise((resolve) => {
      release = resolve;
    });
    seen.push([n, request.superseded()]);
  });
  request(1);
  request(2);
  release();
  await new Promise((resolve) => setImmediate(resolve));
  release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(seen, [
    [1, true],
    [2, false],
  ]);
});
