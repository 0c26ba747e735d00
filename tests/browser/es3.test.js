// Our pages must run in IE8: every inline script of web/*.html (and our own assets/*.js)
// has to parse as ECMAScript 3.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const acorn = require('acorn');
const { repo } = require('./harness');

// Inline <script> blocks with the line each starts on.
function scripts(html) {
  const out = [];
  const re = /<script\b([^>]*)>([\s\S]*?)<\/script>/gi;
  let match;
  while ((match = re.exec(html))) {
    if (/\bsrc=/.test(match[1]) || !match[2].trim()) continue;
    const before = html.slice(0, match.index + match[0].indexOf('>') + 1);
    out.push({ line: before.split('\n').length, code: match[2] });
  }
  return out;
}

// acorn checks ES3 syntax; trailing commas in literals (which old IE reads differently or
// rejects) need a token-level check of our own.
function checkEs3(code) {
  acorn.parse(code, { ecmaVersion: 3, sourceType: 'script', allowReserved: false });
  const tokens = [...acorn.tokenizer(code, { ecmaVersion: 3, locations: true })];
  for (let i = 1; i < tokens.length; i++) {
    const closing = tokens[i].type === acorn.tokTypes.braceR || tokens[i].type === acorn.tokTypes.bracketR;
    if (closing && tokens[i - 1].type === acorn.tokTypes.comma) {
      const err = new SyntaxError(`trailing comma before '${tokens[i].type.label}' (${tokens[i].loc.start.line}:${tokens[i].loc.start.column})`);
      err.loc = tokens[i].loc.start;
      throw err;
    }
  }
}

function ownFiles() {
  const pages = fs.readdirSync(path.join(repo, 'web')).filter((f) => /\.(html|js)$/.test(f)).map((f) => path.join('web', f));
  const assets = fs.readdirSync(path.join(repo, 'assets')).filter((f) => f.endsWith('.js')).map((f) => path.join('assets', f));
  return pages.concat(assets);
}

test('the checker rejects what IE8 cannot parse', () => {
  for (const bad of ['let a = 1;', 'const a = 1;', 'var f = () => 1;', 'class A {}', 'var s = `x`;',
    'var o = {a: 1,};', 'var a = [1, 2,];', 'var o = {get x() { return 1; }};']) {
    assert.throws(() => checkEs3(bad), SyntaxError, bad);
  }
  checkEs3('var o = {a: 1, b: [1, 2]}; function f(x) { return x ? o : null; }');
});

for (const file of ownFiles()) {
  test(`${file} parses as ES3`, () => {
    const text = fs.readFileSync(path.join(repo, file), 'utf8');
    const blocks = file.endsWith('.html') ? scripts(text) : [{ line: 1, code: text }];
    assert.ok(!file.endsWith('.html') || blocks.length > 0 || !/<script>/.test(text), `${file}: no scripts found`);
    for (const { line, code } of blocks) {
      try {
        checkEs3(code);
      } catch (err) {
        const at = err.loc ? `${file}:${line + err.loc.line - 1}` : file;
        assert.fail(`${at}: ${err.message}`);
      }
    }
  });
}
