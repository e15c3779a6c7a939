// The page kept in this browser, to open and train without a network after the first visit: this
// side registers the service worker (www/sw.js), asks it to keep what this visit uses beyond the
// page itself (the WebGPU module where there is an adapter, the MNIST chunks loaded), and says on
// the page whether it runs from that copy, what the copy holds, and when a new build waits. What
// is cached, under which version, and the check of every byte against the build's list are the
// service worker's.
import { formatNumber, message } from '../shared/format.js';
import { app, chunks, page, resting, whenResting } from './state.js';

// Whether this page came from the kept copy: a service worker controlled its loading. Read once,
// as the page loads; a new build taking over later does not change where this page came from.
const fromCache = !!globalThis.navigator?.serviceWorker?.controller;

let registration = null;
let keeping = Promise.resolve();
// This tab asked the waiting build to take over, and reloads once it has.
let updateAsked = false;
// The state shown last; an offered update stays until it is taken.
let shown = '';
// The new build could not be kept (sw.js says why): later answers do not cover that up.
let installFailed = false;

/**
 * Links the manifest, registers the service worker and keeps what this visit has used; called
 * once the page has started and its backends are timed, so that a first visit starts as fast as
 * without it, and it waits while the page trains: the download, the hashing and the writes are
 * the service worker's, but on a machine of few cores they would slow the training and stall the
 * page. Where the browser has no service workers (or the page is not in a secure context) the
 * page says so and works as before.
 */
export async function startOffline() {
  if (registration || shown) return;
  page.view.linkManifest(new URL('../../manifest.webmanifest', import.meta.url).href);
  const container = globalThis.navigator?.serviceWorker;
  if (!container) {
    show({
      state: 'failed',
      kind: 'info',
      text: globalThis.isSecureContext
        ? 'This browser does not keep pages for offline use: each visit fetches the page again.'
        : 'Served over plain http, this page cannot be kept for offline use (that needs https or localhost).',
    });
    return;
  }
  const saving = { state: 'saving', text: 'Saving this page in the browser for offline use…' };
  if (fromCache) show(cachedState(null));
  else if (!resting()) show({ state: 'saving', text: 'This page will be saved in the browser for offline use when training stops.' });
  await whenResting();
  if (!fromCache) show(saving);
  container.addEventListener('controllerchange', onControllerChange);
  container.addEventListener('message', ({ data }) => {
    if (data?.type !== 'install-failed') return;
    installFailed = true;
    show({ state: 'failed', kind: 'warn', text: `Not saved for offline use: ${data.why}.` });
  });
  try {
    registration = await container.register(new URL('../../sw.js', import.meta.url), { updateViaCache: 'none' });
  } catch (err) {
    show({ state: 'failed', kind: 'warn', text: `Not saved for offline use: the browser refused the service worker (${message(err)}).` });
    return;
  }
  watchUpdates(registration);
  // A page from the copy asks the server for a newer build; offline, there is no answer to wait for.
  if (fromCache) registration.update().catch(() => {});
  await keepOffline();
}

/**
 * Asks the service worker to keep what the page has loaded so far (chunks, the WebGPU module);
 * the page calls it after fetching chunks. Nothing before startOffline, and one request at a time.
 */
export function keepOffline() {
  if (!registration) return keeping;
  keeping = keeping.then(keepNow).catch((err) => {
    show({ state: 'failed', kind: 'warn', text: `Not everything was saved for offline use: ${message(err)}.` });
  });
  return keeping;
}

async function keepNow() {
  await whenResting();
  const { active } = await globalThis.navigator.serviceWorker.ready;
  const kept = await ask(active, { type: 'keep', webgpu: !!app.gpu?.available, chunks: chunks.files() });
  if (kept.failed.length) throw new Error(kept.failed.join('; '));
  if (shown === 'update' || installFailed) return;
  show(fromCache ? cachedState(kept) : savedState(kept));
}

/** A message to the service worker, and its answer (over a port of their own). */
function ask(worker, request) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = ({ data }) => resolve(data);
    worker.postMessage(request, [channel.port2]);
  });
}

/** "…on the data loaded so far (10,000 training images)". */
function dataText(kept) {
  if (!kept || !app.index) return '';
  const images = app.index.train.filter((e) => kept.chunks.includes(e.file)).reduce((n, e) => n + e.images, 0);
  return images ? `, with the data it has loaded (${formatNumber(images)} training images)` : '';
}

function savedState(kept) {
  return {
    state: 'saved',
    version: kept.version,
    text: `Saved in this browser (build ${kept.version}): the page opens and trains here without a network${dataText(kept)}.`,
  };
}

function cachedState(kept) {
  return {
    state: 'cached',
    version: kept?.version ?? '',
    text: `Running from the copy saved in this browser${kept ? ` (build ${kept.version})` : ''}: it works without a network${dataText(kept)}.`,
  };
}

function show(what, onUpdate = null) {
  shown = what.state;
  page.view.setOffline(what, onUpdate);
}

/** Says when a new build has installed beside the one this page runs, and offers it. */
function watchUpdates(reg) {
  const waiting = () => {
    if (reg.waiting && globalThis.navigator.serviceWorker.controller) offerUpdate();
  };
  waiting();
  reg.addEventListener('updatefound', () => {
    const worker = reg.installing;
    worker?.addEventListener('statechange', () => {
      if (worker.state === 'installed') waiting();
    });
  });
}

function offerUpdate() {
  show(
    {
      state: 'update',
      text:
        'A new build of the page is waiting: this tab still runs the one saved before. Reload with the new version to use it ' +
        '(the model here is lost unless you download it or it is kept in the browser).',
    },
    () => {
      updateAsked = true;
      // The new build takes over (sw.js); controllerchange then reloads the page on it.
      if (registration.waiting) registration.waiting.postMessage({ type: 'take-over' });
      else globalThis.location.reload();
    },
  );
}

/**
 * A new build took over: this tab reloads on it if it asked; another tab that asked leaves this
 * one on files that are no longer kept, so it offers the reload too.
 */
function onControllerChange() {
  if (updateAsked) {
    globalThis.location.reload();
    return;
  }
  show(
    { state: 'update', text: 'Another tab moved the page to a new build: reload this one to use it too.' },
    () => globalThis.location.reload(),
  );
}
