// One way to drive the page in each of the three browser engines people open it in, so that a
// test is written once and runs in all three:
//
//   chromium  Debian's chromium through playwright-core, as the page tests drive it (browser.mjs)
//   firefox   Debian's firefox-esr through puppeteer-core, over WebDriver BiDi (no geckodriver)
//   webkit    WebKitGTK's MiniBrowser (Safari's engine) through selenium-webdriver and
//             WebKitWebDriver; it needs a display: run it under xvfb-run
//
// A Session offers what a test of the page needs: goto, click, fill, select, setFile, text,
// evaluate, waitFor, drawOn, resize, screenshot, problems and close. Each engine implements the
// few calls that differ (evaluate, click, fill, setFile, the mouse, screenshots); everything else
// is written once here, on top of evaluate.
//
// Problems (page errors, console errors, unhandled rejections) come from the engine where its
// driver reports them (playwright, puppeteer) and, in every engine, from a watcher put into the
// page (WATCHER): WebKitWebDriver reports neither, and has no way to run a script before the
// page's own, so in WebKit the watcher starts once the page has loaded. An error while the
// page's modules load is then seen as a page that never gets ready.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { launchBrowser } from './browser.mjs';

export const ENGINES = ['chromium', 'firefox', 'webkit'];

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

// Without a display WebKitWebDriver's session request hangs rather than fails.
const SESSION_TIMEOUT_MS = 60_000;

/**
 * Put into the page: collects uncaught errors, unhandled rejections, console errors and
 * Content-Security-Policy violations on window.__watch, for engines whose driver reports none.
 */
const WATCHER = `(() => {
  if (window.__watch) return;
  const watch = (window.__watch = { problems: [], violations: [] });
  addEventListener('error', (e) => watch.problems.push('page error: ' + e.message + (e.error?.stack ? ' at ' + e.error.stack : '')));
  addEventListener('unhandledrejection', (e) => watch.problems.push('unhandled rejection: ' + (e.reason?.stack ?? e.reason)));
  addEventListener('securitypolicyviolation', (e) => watch.violations.push(e.violatedDirective));
  const error = console.error;
  console.error = (...args) => {
    watch.problems.push('console error: ' + args.map(String).join(' '));
    error.apply(console, args);
  };
})();`;

/**
 * Put into the page before its own scripts where `language` is asked for: the browser reports
 * that language (navigator.language and navigator.languages), valid tag or not.
 */
const languageScript = (language) => `(() => {
  const language = ${JSON.stringify(language)};
  Object.defineProperty(Navigator.prototype, 'language', { get: () => language, configurable: true });
  Object.defineProperty(Navigator.prototype, 'languages', { get: () => [language], configurable: true });
})();`;

/** A test's source for a function and its argument, as one expression. */
const call = (fn, arg) => `(${fn})(${arg === undefined ? '' : JSON.stringify(arg)})`;

class Session {
  constructor(engine) {
    this.engine = engine;
    this.reported = [];
  }

  /** Runs `fn(arg)` in the page (it may be async) and resolves to its JSON-able result. */
  async evaluate(fn, arg) {
    return this.evaluateSource(call(fn, arg));
  }

  /** Polls `fn(arg)` in the page until it is truthy; on timeout says what `describe` reads then. */
  async waitFor(fn, arg, { timeout = 60_000, polling = 250, what = String(fn), describe } = {}) {
    const until = Date.now() + timeout;
    for (;;) {
      const value = await this.evaluate(fn, arg);
      if (value) return value;
      if (Date.now() > until) {
        const state = describe ? ` (${await describe()})` : '';
        throw new Error(`${this.engine}: waited ${timeout / 1000} s for ${what}${state}`);
      }
      await new Promise((resolve) => setTimeout(resolve, polling));
    }
  }

  /** The element's rendered text (innerText). */
  text(selector) {
    return this.evaluate((sel) => document.querySelector(sel)?.innerText ?? null, selector);
  }

  /** Picks `value` in a <select>, as a person choosing it from the list does (input and change). */
  select(selector, value) {
    return this.evaluate(
      ([sel, v]) => {
        const el = document.querySelector(sel);
        el.value = v;
        el.dispatchEvent(new Event('input', { bubbles: true }));
        el.dispatchEvent(new Event('change', { bubbles: true }));
      },
      [selector, value],
    );
  }

  /** Everything that went wrong in the page so far: the driver's reports and the watcher's. */
  async problems() {
    const watched = await this.evaluate(() => window.__watch?.problems ?? []).catch((err) => [`the page did not answer: ${err.message}`]);
    return [...this.reported, ...watched];
  }

  /** The Content-Security-Policy directives the page was refused under, since it loaded. */
  violations() {
    return this.evaluate(() => window.__watch?.violations ?? []);
  }

  /** The centre of `selector` after scrolling it into view, and its box, in viewport pixels. */
  box(selector) {
    return this.evaluate((sel) => {
      const el = document.querySelector(sel);
      el.scrollIntoView({ block: 'center' });
      const r = el.getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    }, selector);
  }

  /** Draws a polyline on `selector` with the mouse; points are fractions of its width and height. */
  async drawOn(selector, points) {
    const box = await this.box(selector);
    const at = ([fx, fy]) => [Math.round(box.x + fx * box.width), Math.round(box.y + fy * box.height)];
    // Mouse moves in between, as a hand makes them, so that the page sees a stroke, not a jump.
    const path = [at(points[0])];
    for (let i = 1; i < points.length; i++) {
      const [x0, y0] = at(points[i - 1]);
      const [x1, y1] = at(points[i]);
      for (let s = 1; s <= 14; s++) path.push([Math.round(x0 + ((x1 - x0) * s) / 14), Math.round(y0 + ((y1 - y0) * s) / 14)]);
    }
    await this.stroke(path);
  }
}

/** A session over a playwright or puppeteer page: the two speak alike where these calls go. */
class PageSession extends Session {
  attach(page) {
    this.page = page;
    page.on('console', (msg) => msg.type() === 'error' && this.reported.push(`console error: ${msg.text()}`));
    page.on('pageerror', (err) => this.reported.push(`page error: ${err.message}`));
  }
  goto(url) {
    return this.page.goto(url);
  }
  evaluateSource(source) {
    return this.page.evaluate(source);
  }
  click(selector) {
    return this.page.click(selector);
  }
  async stroke(path) {
    await this.page.mouse.move(...path[0]);
    await this.page.mouse.down();
    for (const p of path.slice(1)) await this.page.mouse.move(...p);
    await this.page.mouse.up();
  }
  screenshot(path) {
    return this.page.screenshot({ path, fullPage: true });
  }
}

class ChromiumSession extends PageSession {
  static async open({ viewport, language, webgpu = true }) {
    const browser = await launchBrowser({ viewport, webgpu });
    const session = new ChromiumSession('chromium');
    session.browser = browser;
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    session.attach(page);
    if (language) await page.addInitScript(languageScript(language));
    await page.addInitScript(WATCHER);
    return session;
  }
  fill(selector, text) {
    return this.page.fill(selector, text);
  }
  setFile(selector, path) {
    return this.page.setInputFiles(selector, path);
  }
  resize(width, height) {
    return this.page.setViewportSize({ width, height });
  }
  close() {
    return this.browser.close();
  }
}

class FirefoxSession extends PageSession {
  static async open({ viewport, language, webgpu = false }) {
    const { default: puppeteer } = await import('puppeteer-core');
    // Firefox turns WebGPU off on Linux and blocks software adapters such as Mesa's lavapipe;
    // these two prefs are what a person would set in about:config to use it here.
    const prefs = webgpu ? { 'dom.webgpu.enabled': true, 'gfx.webgpu.ignore-blocklist': true } : {};
    const browser = await puppeteer
      .launch({ browser: 'firefox', executablePath: FIREFOX_PATH, headless: true, defaultViewport: viewport, extraPrefsFirefox: prefs })
      .catch((err) => {
        throw new Error(`could not start ${FIREFOX_PATH} (apt-get install firefox-esr): ${err.message}`);
      });
    const session = new FirefoxSession('firefox');
    session.browser = browser;
    const page = (await browser.pages())[0] ?? (await browser.newPage());
    session.attach(page);
    // defaultViewport applies to pages opened later, not to the one Firefox starts with.
    if (viewport) await page.setViewport(viewport);
    if (language) await page.evaluateOnNewDocument(languageScript(language));
    await page.evaluateOnNewDocument(WATCHER);
    return session;
  }
  async fill(selector, text) {
    await this.page.click(selector, { count: 3 });
    await this.page.keyboard.press('Backspace');
    await this.page.type(selector, text);
  }
  async setFile(selector, path) {
    const input = await this.page.$(selector);
    await input.uploadFile(path);
  }
  resize(width, height) {
    return this.page.setViewport({ width, height });
  }
  close() {
    return this.browser.close().catch(() => {});
  }
}

/** A free TCP port on the loopback: for WebKitWebDriver to listen on, or a test's own server. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function untilListening(url, ms) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await fetch(`${url}/status`);
      return;
    } catch (err) {
      if (Date.now() > until) throw new Error(`${WEBKIT_DRIVER} did not listen on ${url}: ${err.message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

class WebKitSession extends Session {
  static async open({ viewport }) {
    if (!process.env.DISPLAY) throw new Error('WebKit needs a display: run this under xvfb-run -a (apt-get install xvfb xauth)');
    const { Builder, By, Origin } = await import('selenium-webdriver');
    const port = await freePort();
    const driverProcess = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: 'ignore' });
    const url = `http://127.0.0.1:${port}`;
    const session = new WebKitSession('webkit');
    session.driverProcess = driverProcess;
    session.By = By;
    session.Origin = Origin;
    try {
      await untilListening(url, 10_000);
      let timer;
      session.driver = await Promise.race([
        new Builder()
          .usingServer(url)
          .withCapabilities({
            browserName: 'MiniBrowser',
            'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
          })
          .build(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no WebKit session in ${SESSION_TIMEOUT_MS / 1000} s (is there a display?)`)), SESSION_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      if (viewport) await session.resize(viewport.width, viewport.height);
    } catch (err) {
      driverProcess.kill();
      throw new Error(`could not start WebKit (apt-get install webkit2gtk-driver xvfb xauth): ${err.message}`);
    }
    return session;
  }
  async goto(url) {
    await this.driver.get(url);
    // The page has loaded and run its modules by now: from here on the watcher sees its errors.
    await this.driver.executeScript(WATCHER);
  }
  evaluateSource(source) {
    // WebDriver's Execute Script waits for a returned promise.
    return this.driver.executeScript(`return ${source};`);
  }
  async click(selector) {
    const el = await this.driver.findElement(this.By.css(selector));
    await this.driver.executeScript('arguments[0].scrollIntoView({ block: "center" })', el);
    await el.click();
  }
  async fill(selector, text) {
    const el = await this.driver.findElement(this.By.css(selector));
    await el.clear();
    await el.sendKeys(text);
  }
  async setFile(selector, path) {
    // A file input takes the file's path as keys, even when it is visually hidden.
    await this.driver.findElement(this.By.css(selector)).sendKeys(path);
  }
  async stroke(path) {
    const actions = this.driver.actions({ async: true });
    actions.move({ x: path[0][0], y: path[0][1], origin: this.Origin.VIEWPORT }).press();
    for (const [x, y] of path.slice(1)) actions.move({ x, y, origin: this.Origin.VIEWPORT, duration: 10 });
    await actions.release().perform();
  }
  async resize(width, height) {
    // The window's outer size: the page gets what the window's toolbar leaves of it. MiniBrowser's
    // toolbar keeps its window at least 447 px wide, so a narrower width gets 447; no device
    // emulation, and full screen needs a window manager, which the virtual display has none of.
    await this.driver.manage().window().setRect({ width, height });
  }
  async screenshot(path) {
    await writeFile(path, Buffer.from(await this.driver.takeScreenshot(), 'base64'));
  }
  async close() {
    await this.driver?.quit().catch(() => {});
    this.driverProcess.kill();
  }
}

const SESSIONS = { chromium: ChromiumSession, firefox: FirefoxSession, webkit: WebKitSession };

/**
 * A fresh browser of `engine` with one page, not yet navigated. Options: `viewport` ({ width,
 * height }), `language` (what navigator.language reports, before the page's scripts run; not
 * in WebKit, which reports the language of its environment's LANG), `webgpu` (Chromium: on by
 * default, on SwiftShader; Firefox: off by default, as it ships on Linux; WebKitGTK has none).
 */
export async function openEngine(engine, options = {}) {
  const Kind = SESSIONS[engine];
  if (!Kind) throw new Error(`unknown engine ${engine}: one of ${ENGINES.join(', ')}`);
  if (options.language && engine === 'webkit') {
    throw new Error("WebKit's language comes from LANG in its environment; run it with LANG set instead");
  }
  return Kind.open(options);
}
