// What each browser offers the page, said where the page cannot use it: no DOM here, so that the
// text is tested in Node (tests/unit/browsers.test.mjs).

/**
 * Where WebGPU is to be had, for a browser without it, said for the browser `userAgent` names
 * where it can tell which: Chrome and Edge have WebGPU on Windows, macOS, ChromeOS and Android
 * and behind a flag on Linux; Safari from Safari 26 (macOS, iOS and iPadOS 26); Firefox on
 * Windows and on Apple-silicon Macs, elsewhere behind a pref; WebKitGTK (GNOME Web and other
 * Linux browsers built on WebKit) has none.
 */
export function webgpuAdvice(userAgent) {
  const ua = userAgent ?? '';
  const linux = /Linux|X11/.test(ua) && !/Android|CrOS/.test(ua);
  if (/Firefox\//.test(ua)) {
    return (
      'Firefox has WebGPU on Windows and on Macs with Apple silicon; elsewhere turn on dom.webgpu.enabled ' +
      'in about:config, or use Chrome, Edge or Safari 26'
    );
  }
  if (/Chrome\/|Chromium\/|Edg\//.test(ua)) {
    return linux
      ? 'Chrome and Edge on Linux have WebGPU behind a flag: turn on chrome://flags/#enable-unsafe-webgpu'
      : 'Chrome and Edge have WebGPU on Windows, macOS, ChromeOS and Android: update this browser, or turn WebGPU on in its settings';
  }
  if (/AppleWebKit\//.test(ua)) {
    return linux
      ? 'this WebKit browser (WebKitGTK) has no WebGPU; on Linux, Chrome or Edge has it behind a flag ' +
          '(chrome://flags/#enable-unsafe-webgpu)'
      : 'Safari has WebGPU from Safari 26 (macOS, iOS and iPadOS 26): update the system to get it';
  }
  return 'Chrome and Edge have WebGPU, as have Safari 26 and Firefox on Windows and Apple-silicon Macs';
}
