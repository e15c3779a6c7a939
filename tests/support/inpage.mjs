// Functions that run inside the page, shared by the page tests (playwright) and the journey in
// every engine (tests/support/engines.mjs): each driver serialises a function and runs it there,
// so these must use nothing from this module's scope.

/** Pixel statistics of each canvas matching `sel`. */
export function canvasStatsIn(sel) {
  return [...document.querySelectorAll(sel)].map((canvas) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let min = 255;
    let max = 0;
    let opaque = 0;
    for (let i = 0; i < data.length; i += 4) {
      min = Math.min(min, data[i]);
      max = Math.max(max, data[i]);
      if (data[i + 3] === 255) opaque++;
    }
    return { min, max, opaque, pixels: data.length / 4 };
  });
}

/**
 * Whether the k-NN guesses shown are the drawing's as it now is: the pad is read while a stroke
 * goes on (its first dot reads as a 0), and each reading keeps the pad's ink version it read.
 */
export function wholeDrawingReadIn() {
  const guesses = document.getElementById('guesses-knn').dataset;
  return guesses.top !== '' && guesses.ink === document.getElementById('pad').dataset.ink;
}

/** Drawn means opaque everywhere with some contrast; blank, fully transparent or one flat colour. */
export const isDrawn = (s) => s.opaque === s.pixels && s.max - s.min > 30;

/**
 * Injects an inline <script> and an element with an inline event handler, as an attacker's
 * markup would, and resolves after half a second to whether either ran and to the policy
 * directives the browser reported violated meanwhile.
 */
export function tryInjectionIn() {
  return new Promise((resolve) => {
    const violations = [];
    document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
    const script = document.createElement('script');
    script.textContent = 'window.injectedRan = true;';
    document.head.append(script);
    const handler = document.createElement('img');
    handler.setAttribute('onerror', 'window.handlerRan = true;');
    handler.src = 'data:,not an image';
    document.body.append(handler);
    setTimeout(() => {
      handler.remove();
      resolve({ injectedRan: window.injectedRan === true, handlerRan: window.handlerRan === true, violations });
    }, 500);
  });
}
