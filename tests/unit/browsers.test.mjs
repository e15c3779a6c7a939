// What the page says and does about the browser it is in, without a browser: a language that is
// not a valid BCP 47 tag replaced by one Intl accepts (www/js/language.js), and where to find
// WebGPU, per browser (www/js/browsers.js). The journey (tests/journey) shows both in the page, in
// each engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { webgpuAdvice } from '../../www/js/app/browsers.js';
import { safeLanguages, validLanguage } from '../../www/js/shared/language.js';

test('a language Intl refuses is replaced, valid ones are kept as they are', () => {
  assert.throws(() => new Intl.NumberFormat('C'), RangeError, 'the case this is about: "C" is not a tag');
  assert.equal(validLanguage('C'), null);
  assert.equal(validLanguage('en-us'), 'en-US');
  assert.equal(safeLanguages(['en-US', 'de']), null, 'nothing to replace');
  assert.deepEqual(safeLanguages(['C']), ['en-US']);
  assert.deepEqual(safeLanguages(['C', 'fr-FR', 'fr-fr']), ['fr-FR'], 'the valid ones, once each');
  assert.deepEqual(safeLanguages([]), ['en-US']);
  assert.deepEqual(safeLanguages(['']), ['en-US']);
  for (const tag of safeLanguages(['C', 'POSIX', 'en_US.UTF-8'])) assert.doesNotThrow(() => new Intl.NumberFormat(tag));
});

test('the no-WebGPU notice says what is true of the browser it is shown in', () => {
  const firefoxLinux = 'Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0';
  const webkitGtk = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/60.5 Safari/605.1.15';
  const safariMac = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15';
  const safariPhone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1';
  const chromeLinux = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
  const chromeAndroid = 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36';
  const edgeWindows = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0';
  assert.match(webgpuAdvice(firefoxLinux), /^Firefox has WebGPU on Windows and on Macs with Apple silicon; elsewhere turn on dom\.webgpu\.enabled/);
  assert.match(webgpuAdvice(webkitGtk), /WebKitGTK\) has no WebGPU/);
  assert.match(webgpuAdvice(safariMac), /^Safari has WebGPU from Safari 26/);
  assert.match(webgpuAdvice(safariPhone), /^Safari has WebGPU from Safari 26/);
  assert.match(webgpuAdvice(chromeLinux), /on Linux have WebGPU behind a flag/);
  assert.match(webgpuAdvice(chromeAndroid), /on Windows, macOS, ChromeOS and Android/);
  assert.match(webgpuAdvice(edgeWindows), /on Windows, macOS, ChromeOS and Android/);
  assert.match(webgpuAdvice(undefined), /Safari 26 and Firefox/);
  // No browser is told to use a browser that, on its system, has no WebGPU either.
  assert.doesNotMatch(webgpuAdvice(webkitGtk), /Safari 26/);
});
