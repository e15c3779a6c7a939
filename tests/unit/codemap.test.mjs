// README.md's "## Code map" must match the files: every path its table names exists, and every
// entry at the top of the folders a newcomer reads (src/, www/, www/js/, tests/) is covered by a
// row that names it or a folder above it. A map kept by hand drifts; this keeps it true.
//
//   node --test tests/unit/codemap.test.mjs            checks this repository
//   LAB_ROOT=/some/tree node --test tests/unit/...     checks another tree (a README.md at its root)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

// The folders whose top-level entries must each be on the map. A folder on this list is not
// itself an entry of its parent (www/js is checked on its own, file by file or folder by folder).
const COVERED_FOLDERS = ['src', 'www', 'www/js', 'tests'];

const HEADING = '## Code map';

// The backticked paths in the first column of the table under "## Code map", up to the next
// heading of the same or a higher level.
export function mapPaths(readme) {
  const lines = readme.split('\n');
  const start = lines.findIndex((line) => line.trim() === HEADING);
  if (start < 0) throw new Error(`README.md has no "${HEADING}" section`);
  const paths = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2} /.test(line)) break;
    if (!line.startsWith('|')) continue;
    const first = line.split('|')[1] ?? '';
    if (/^\s*:?-+:?\s*$/.test(first)) continue; // the header's separator row
    for (const [, path] of first.matchAll(/`([^`]+)`/g)) paths.push(path);
  }
  if (paths.length === 0) throw new Error(`README.md's "${HEADING}" table names no \`path\` in its first column`);
  return paths;
}

// Which of `paths` (relative to root) git ignores. Outside a git work tree (a tarball, a fake
// tree), the root's .gitignore is read directly: the plain patterns this repository uses
// (`/anchored/path`, `name`, `*.ext`) are enough.
function ignoredPaths(root, paths) {
  if (paths.length === 0) return new Set();
  try {
    const out = execFileSync('git', ['check-ignore', '--', ...paths], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return new Set(out.split('\n').filter(Boolean).map((p) => p.replace(/\/$/, '')));
  } catch (error) {
    if (error.status === 1) return new Set(); // git's answer: none of them is ignored
  }
  const gitignore = join(root, '.gitignore');
  if (!existsSync(gitignore)) return new Set();
  const patterns = readFileSync(gitignore, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const matchers = patterns.map((pattern) => {
    const anchored = pattern.startsWith('/') || pattern.replace(/\/$/, '').includes('/');
    const body = pattern.replace(/^\//, '').replace(/\/$/, '');
    const regex = new RegExp('^' + body.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '$');
    return (path) => (anchored ? regex.test(path) : path.split('/').some((part) => regex.test(part)));
  });
  return new Set(paths.filter((path) => matchers.some((matches) => matches(path.replace(/\/$/, '')))));
}

// Everything wrong with root's code map, as sentences naming the path; empty when it is true.
export function codeMapProblems(root) {
  const readmePath = join(root, 'README.md');
  if (!existsSync(readmePath)) return [`no README.md in ${root}`];
  let paths;
  try {
    paths = mapPaths(readFileSync(readmePath, 'utf8'));
  } catch (error) {
    return [error.message];
  }
  const problems = [];
  for (const path of paths) {
    const full = join(root, path.replace(/\/$/, ''));
    if (!existsSync(full)) problems.push(`the code map names \`${path}\`, which does not exist`);
    else if (path.endsWith('/') && !statSync(full).isDirectory()) problems.push(`the code map names \`${path}\` as a folder, but it is a file`);
  }
  const mapped = paths.map((p) => p.replace(/\/$/, ''));
  const covers = (entry) => mapped.some((p) => entry === p || entry.startsWith(p + '/'));
  for (const folder of COVERED_FOLDERS) {
    const full = join(root, folder);
    if (!existsSync(full)) continue; // a missing folder is reported above if the map names it
    const entries = readdirSync(full, { withFileTypes: true })
      .map((entry) => `${folder}/${entry.name}`)
      .filter((entry) => !COVERED_FOLDERS.includes(entry));
    const ignored = ignoredPaths(root, entries);
    for (const entry of entries) {
      if (ignored.has(entry) || covers(entry)) continue;
      const isDir = statSync(join(root, entry)).isDirectory();
      problems.push(`\`${entry}${isDir ? '/' : ''}\` is on no row of README.md's code map (add a row for it or for a folder above it)`);
    }
  }
  return problems;
}

test("README.md's code map names only paths that exist, and covers src/, www/, www/js/ and tests/", () => {
  const root = process.env.LAB_ROOT ?? REPO;
  const problems = codeMapProblems(root);
  assert.deepEqual(problems, [], `README.md's code map does not match the files in ${root}:\n  ${problems.join('\n  ')}`);
});

// The checker itself, on a small tree made here: a true map passes, and each way of breaking it
// is reported by the path that broke it.
test('the code-map check reports a missing path and an unmapped entry by name', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'codemap-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const files = ['src/lib.rs', 'src/model/mod.rs', 'www/index.html', 'www/js/main.js', 'www/js/app/state.js', 'tests/unit/a.test.mjs', 'tests/artifacts/x.bin'];
  for (const file of files) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), '');
  }
  writeFileSync(join(root, '.gitignore'), '/tests/artifacts\n*.report.json\n');
  writeFileSync(join(root, 'tests/run.report.json'), '');
  const readme = (rows) => `# Lab\n\n${HEADING}\n\n| path | holds |\n|---|---|\n${rows.map((r) => `| \`${r}\` | x |`).join('\n')}\n\n## Tests\n\n| \`not/a/row\` | x |\n`;
  const rows = ['src/lib.rs', 'src/model/', 'www/index.html', 'www/js/main.js', 'www/js/app/', 'tests/unit/'];

  writeFileSync(join(root, 'README.md'), readme(rows));
  assert.deepEqual(codeMapProblems(root), []);

  rmSync(join(root, 'www/js/main.js'));
  assert.deepEqual(codeMapProblems(root), ['the code map names `www/js/main.js`, which does not exist']);
  writeFileSync(join(root, 'www/js/main.js'), '');

  writeFileSync(join(root, 'README.md'), readme(rows.filter((r) => r !== 'src/model/')));
  assert.deepEqual(codeMapProblems(root), ['`src/model/` is on no row of README.md\'s code map (add a row for it or for a folder above it)']);

  writeFileSync(join(root, 'README.md'), readme(['src/lib.rs/', ...rows.slice(1)]));
  assert.deepEqual(codeMapProblems(root), ['the code map names `src/lib.rs/` as a folder, but it is a file']);

  writeFileSync(join(root, 'README.md'), '# Lab\n');
  assert.deepEqual(codeMapProblems(root), ['README.md has no "## Code map" section']);
});
