// Our pages must run in IE8: every script of web/*.html (inline blocks and on... handler
// attributes), web/*.js and our own assets/*.js (not assets/vendor/) must parse as
// ECMAScript 3 the way IE8's parser reads it. flashgate.js, the one client for every browser,
// must also run in IE 6-8: it calls none of the ES5 library functions they lack, and so must
// sockjs-client's minified build, which it loads there.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const acorn = require('acorn');
const { repo } = require('./harness');

// acorn with ecmaVersion 3 rejects let/const/arrows/classes/template strings/getters and a
// trailing comma in an object literal, but two things IE8 refuses get through it:
// - reserved words as property names (`a.class`, `{default: 1}`): refused only with
//   allowReserved "never" ("as in Internet Explorer's old parser", says acorn);
// - a trailing comma in an array literal (`[1, 2,]`): valid ES3, but IE8 counts one more
//   element (length 3), so it is refused here with a token-level check.
const OPTIONS = { ecmaVersion: 3, sourceType: 'script', allowReserved: 'never', locations: true };

function checkEs3(code, options = {}) {
  acorn.parse(code, { ...OPTIONS, ...options });
  let previous = null;
  for (const token of acorn.tokenizer(code, { ...OPTIONS, ...options })) {
    const closing = token.type === acorn.tokTypes.braceR || token.type === acorn.tokTypes.bracketR;
    if (closing && previous && previous.type === acorn.tokTypes.comma) {
      const err = new SyntaxError(`trailing comma before '${token.type.label}' (${token.loc.start.line}:${token.loc.start.column})`);
      err.loc = token.loc.start;
      throw err;
    }
    previous = token;
  }
}

// Line number (1-based) of offset `index` in `text`.
function lineAt(text, index) {
  return text.slice(0, index).split('\n').length;
}

function decodeEntities(text) {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// The scripts of an HTML page: inline <script> blocks, and on...="..." handler attributes
// (function bodies, so `return` is allowed there). Each with the line it starts on.
function scripts(html) {
  const out = [];
  const block = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;
  let match;
  while ((match = block.exec(html))) {
    const attrs = match[1];
    if (/\bsrc\s*=/i.test(attrs) || !match[2].trim()) continue;
    const type = /\btype\s*=\s*["']?([^"'\s>]+)/i.exec(attrs);
    if (type && !/javascript|ecmascript/i.test(type[1])) continue;
    out.push({ line: lineAt(html, match.index + match[0].indexOf('>') + 1), code: match[2] });
  }
  const handler = /\son[a-z]+\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;
  while ((match = handler.exec(html))) {
    const code = decodeEntities(match[1] !== undefined ? match[1] : match[2]);
    out.push({ line: lineAt(html, match.index), code, options: { allowReturnOutsideFunction: true } });
  }
  return out;
}

// Checks one file; returns "file:line: message" for each problem.
function problems(file, text) {
  const blocks = file.endsWith('.html') ? scripts(text) : [{ line: 1, code: text }];
  const found = [];
  for (const { line, code, options } of blocks) {
    try {
      checkEs3(code, options);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      const at = err.loc ? line + err.loc.line - 1 : line;
      found.push(`${file}:${at}: ${err.message}`);
    }
  }
  return found;
}

function ownFiles() {
  const list = (dir, pattern) => fs.readdirSync(path.join(repo, dir))
    .filter((f) => pattern.test(f) && fs.statSync(path.join(repo, dir, f)).isFile())
    .map((f) => path.join(dir, f));
  return list('web', /\.(html|js)$/).concat(list('assets', /\.js$/));
}

test('the checker rejects what IE8 cannot parse', () => {
  for (const bad of ['let a = 1;', 'const a = 1;', 'var f = () => 1;', 'class A {}', 'var s = `x`;',
    'var o = {a: 1,};', 'var a = [1, 2,];', 'var a = [[1], {b: 2},];', 'var o = {get x() { return 1; }};',
    'a.class = 1;', 'var o = {default: 1};', 'p.catch(f);', 'x.int = 2;', 'f(1,);', 'var r = /a/y;']) {
    assert.throws(() => checkEs3(bad), SyntaxError, bad);
  }
  for (const good of ['var o = {a: 1, b: [1, 2]}; function f(x) { return x ? o : null; }',
    'var o = {"default": 1}; o["class"] = 2;', 'var holes = [1, , 2];', 'var s = "a,]", t = /,]/;',
    'try { f(); } catch (e) { g(e.message); }']) {
    assert.doesNotThrow(() => checkEs3(good), good);
  }
});

test('acorn alone lets a trailing array comma and reserved property names through', () => {
  // Why the extra checks exist: if acorn ever starts refusing these, they are redundant.
  assert.doesNotThrow(() => acorn.parse('var a = [1, 2,];', { ecmaVersion: 3 }));
  assert.doesNotThrow(() => acorn.parse('a.class = 1;', { ecmaVersion: 3 }));
});

test('a problem is reported as file:line of the page', () => {
  const page = [
    '<!DOCTYPE html>',
    '<script src="/web_socket.js"></script>',
    '<script>',
    '  var ok = 1;',
    '  var list = [1, 2,];',
    '</script>',
    '<script type="application/json">{"a": [1,]}</script>',
    '<button onclick="send(); return false;">send</button>',
    '<button onclick="x.default()">bad</button>',
  ].join('\n');
  const found = problems('web/page.html', page);
  assert.strictEqual(found.length, 2, found.join('\n'));
  assert.match(found[0], /^web\/page\.html:5: trailing comma/);
  assert.match(found[1], /^web\/page\.html:9: /);
  assert.match(problems('web/x.js', '\n\nvar a = () => 1;')[0], /^web\/x\.js:3: /);
});

const files = ownFiles();

test('there are pages to check', () => {
  for (const page of ['web/index.html', 'web/legacy.html', 'web/flashgate.js']) assert.ok(files.includes(page), `${page} in ${files}`);
});

// Library calls that IE 6-8 do not have (ES5), by the name they are called by, and JSON,
// which IE 6-7 do not have: a script for them uses its own or checks first.
const ES5_CALLS = new Set(['forEach', 'map', 'filter', 'reduce', 'reduceRight', 'some', 'every', 'lastIndexOf',
  'keys', 'create', 'defineProperty', 'defineProperties', 'getPrototypeOf', 'freeze', 'bind', 'now', 'trim',
  'isArray', 'toISOString', 'addEventListener', 'removeEventListener', 'querySelector', 'querySelectorAll']);

// "line: name" for each such call in `code`, and each use of JSON other than `window.JSON`.
function es5Calls(code) {
  const found = [];
  const walk = (node) => {
    if (!node || typeof node.type !== 'string') return;
    if (node.type === 'MemberExpression' && !node.computed && ES5_CALLS.has(node.property.name)) {
      found.push(`${node.loc.start.line}: .${node.property.name}`);
    }
    if (node.type === 'MemberExpression' && node.object.type === 'Identifier' && node.object.name === 'JSON') {
      found.push(`${node.loc.start.line}: JSON.${node.property.name || '[]'}`);
    }
    for (const key of Object.keys(node)) {
      const value = node[key];
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value.type === 'string' && key !== 'loc') walk(value);
    }
  };
  walk(acorn.parse(code, OPTIONS));
  return found;
}

test('the ES5 check finds what IE 6-8 lack, and lets ES3 through', () => {
  assert.deepStrictEqual(es5Calls('[1].forEach(f);\nvar k = Object.keys(o);\nf.bind(o); x = JSON.parse(t);'),
    ['1: .forEach', '2: .keys', '3: .bind', '3: JSON.parse']);
  assert.deepStrictEqual(es5Calls('"a".indexOf("b"); o.hasOwnProperty("x"); if (!window.JSON) { window.JSON = {}; } new Date().getTime();'), []);
});

test('web/flashgate.js calls no ES5 library function and needs no JSON', () => {
  const found = es5Calls(fs.readFileSync(path.join(repo, 'web/flashgate.js'), 'utf8'));
  assert.deepStrictEqual(found, [], found.join('\n'));
});

test('sockjs-client, as the gateway serves it to IE, parses as ES3', () => {
  const file = path.join(repo, 'assets/vendor/sockjs/sockjs.min.js');
  assert.ok(fs.existsSync(file), `${file} is missing: run scripts/fetch-vendor`);
  const found = problems('assets/vendor/sockjs/sockjs.min.js', fs.readFileSync(file, 'utf8'));
  assert.deepStrictEqual(found, [], found.join('\n'));
});

for (const file of files) {
  test(`${file} parses as ES3`, () => {
    const text = fs.readFileSync(path.join(repo, file), 'utf8');
    if (file.endsWith('.html') && /<script\b(?![^>]*\bsrc\s*=)[^>]*>\s*\S/i.test(text)) {
      assert.ok(scripts(text).length > 0, `${file}: inline scripts not found`);
    }
    const found = problems(file, text);
    assert.deepStrictEqual(found, [], found.join('\n'));
  });
}
