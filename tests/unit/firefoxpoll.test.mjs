// The training worker's way round Firefox's 100 ms WebGPU poll (www/js/worker/firefoxpoll.js), in
// Node: a fake device that, as Firefox does, answers a read-back only when its queue takes a
// submit. Firefox itself is measured by `./build.sh bench-web --engine firefox`; here, that a
// pending read-back is nudged until it resolves and then no more, that the nudges bypass the
// step's submit counter (gpucount.js wraps the prototype after), and that other browsers are
// left alone.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

const setGlobal = (name, value) => Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0';
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Safari/537.36';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A device whose read-backs resolve (or fail, `lost`) only at the next submit to its queue. */
function fakeDevice() {
  const device = { submits: [], waiting: [], lost: false };
  class GPUQueue {
    submit(buffers) {
      device.submits.push(...buffers);
      for (const { resolve, reject } of device.waiting.splice(0)) (device.lost ? reject : resolve)(new Error('device lost'));
    }
  }
  class GPUBuffer {
    mapAsync() {
      return new Promise((resolve, reject) => device.waiting.push({ resolve, reject }));
    }
  }
  device.queue = new GPUQueue();
  device.createCommandEncoder = () => ({ finish: () => 'an empty command buffer' });
  setGlobal('GPUQueue', GPUQueue);
  setGlobal('GPUBuffer', GPUBuffer);
  return device;
}

let fresh = 0;
/** A fresh copy of the module (it wraps the prototypes of the globals it finds). */
const firefoxpoll = () => import(`../../www/js/worker/firefoxpoll.js?copy=${fresh++}`);

afterEach(() => {
  for (const name of ['GPUQueue', 'GPUBuffer', 'navigator']) delete globalThis[name];
});

test('in Firefox a pending read-back nudges the device until it resolves, then stops', async () => {
  setGlobal('navigator', { userAgent: FIREFOX });
  const device = fakeDevice();
  const { pollSooner } = await firefoxpoll();
  pollSooner([device]);
  // As gpucount.js does after: the step's own submits are counted, the nudges must not be.
  let counted = 0;
  const submit = GPUQueue.prototype.submit;
  GPUQueue.prototype.submit = function (...args) {
    counted += 1;
    return submit.apply(this, args);
  };

  await new GPUBuffer().mapAsync(1);
  assert.ok(device.submits.length >= 1, 'the device was nudged');
  assert.ok(device.submits.every((b) => b === 'an empty command buffer'));
  assert.equal(counted, 0, 'the nudges went past the submit counter');

  const after = device.submits.length;
  await sleep(30);
  assert.equal(device.submits.length, after, 'no nudge once nothing is pending');

  // A second wait starts the nudging again, and so does a failed read-back end it.
  await new GPUBuffer().mapAsync(1);
  assert.ok(device.submits.length > after);
  device.lost = true;
  await assert.rejects(new GPUBuffer().mapAsync(1), /device lost/);
  const atLoss = device.submits.length;
  await sleep(30);
  assert.equal(device.submits.length, atLoss, 'no nudge after a failed read-back');
});

test('other browsers are left as they are', async () => {
  setGlobal('navigator', { userAgent: CHROME });
  const device = fakeDevice();
  const { mapAsync } = GPUBuffer.prototype;
  const { submit } = GPUQueue.prototype;
  const { pollSooner } = await firefoxpoll();
  pollSooner([device]);
  assert.equal(GPUBuffer.prototype.mapAsync, mapAsync);
  assert.equal(GPUQueue.prototype.submit, submit);
});
