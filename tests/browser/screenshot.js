// Takes the screenshots of docs/:
//   demo.png    the demo page at 1000x640 after a short chat between two browsers;
//   ruffle.png  ruffle.html (web-socket-js on Flash under Ruffle) chatting with a native page.
// Usage: node screenshot.js [demo.png] [ruffle.png]   (default: both)
'use strict';
const path = require('node:path');
const { repo, startGateway, launchBrowser, waitForLog, openDemo } = require('./harness');

const VIEWPORT = { width: 1000, height: 640 };
const TIMEOUT = 20000;

// Says `lines` ([page, text] pairs) in order, each seen by every page of `pages` before the
// next: a name typed in a page's #nick goes in front of its messages.
async function converse(pages, lines) {
  for (const [page, text] of lines) {
    const nick = (await page.$('#nick')) ? (await page.inputValue('#nick')).trim() : '';
    await page.fill('#message', text);
    await page.click('#send');
    for (const other of pages) await waitForLog(other, 'in', nick ? `${nick}: ${text}` : text, TIMEOUT);
  }
}

async function shot(page, name) {
  const out = path.join(repo, 'docs', name);
  await page.screenshot({ path: out });
  console.log(`wrote ${path.relative(repo, out)}`);
}

async function demo(browser, gateway, open) {
  const [ana, ben] = [await open(`${gateway.url}/`), await open(`${gateway.url}/`)];
  await ana.fill('#nick', 'ana');
  await ben.fill('#nick', 'ben');
  await converse([ana, ben], [
    [ana, 'hi Ben, the kiosk in the lobby is back online'],
    [ben, 'great! is it on Flash Player, through port 843?'],
    [ana, 'yes: policy from flashgate, and the same room as us'],
  ]);
  await ben.fill('#message', 'Flash');
  await ben.click('#send-binary');
  await waitForLog(ana, 'in', 'binary 5 bytes: 46 6c 61 73 68', TIMEOUT);
  await converse([ana, ben], [
    [ben, 'and binary from us reaches it as base64 text'],
    [ana, 'nice, and the kiosk page decodes it back to bytes'],
  ]);
  await ana.fill('#message', 'see you');
  await shot(ana, 'demo.png');
}

async function ruffle(browser, gateway, open) {
  const native = await open(`${gateway.url}/`);
  const flash = await open(`${gateway.url}/ruffle.html`);
  await converse([native, flash], [
    [flash, 'hello from WebSocketMain.swf, running in Ruffle'],
    [native, 'welcome! you came through the socket proxy'],
    [flash, 'and I only ever get text frames'],
  ]);
  await native.fill('#message', 'Flash');
  await native.click('#send-binary');
  await waitForLog(flash, 'in', 'binary 5 bytes: 46 6c 61 73 68', TIMEOUT);
  await shot(flash, 'ruffle.png');
}

const SHOTS = { 'demo.png': demo, 'ruffle.png': ruffle };

async function main() {
  const wanted = process.argv.slice(2).map((name) => (name.endsWith('.png') ? name : `${name}.png`));
  for (const name of wanted) {
    if (!SHOTS[name]) throw new Error(`unknown screenshot ${name}: one of ${Object.keys(SHOTS).join(', ')}`);
  }
  const gateway = await startGateway();
  let browser;
  try {
    browser = await launchBrowser();
    // A context per page: each is its own browser window of the right size.
    const open = async (url) => openDemo(await browser.newContext({ viewport: VIEWPORT }), url);
    for (const name of wanted.length ? wanted : Object.keys(SHOTS)) {
      await SHOTS[name](browser, gateway, open);
    }
  } finally {
    if (browser) await browser.close();
    await gateway.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
