// Takes docs/demo.png (the demo page after a short chat between two browsers) and
// docs/ruffle.png (ruffle.html, web-socket-js on Flash under Ruffle, chatting with a native page).
'use strict';
const path = require('node:path');
const { repo, startGateway, launchBrowser, waitForLog, openDemo } = require('./harness');

// Has `lines` ([page, text] pairs) said in order, each seen by every page in `pages`.
async function converse(pages, lines) {
  for (const [page, text] of lines) {
    await page.fill('#message', text);
    await page.click('#send');
    for (const other of pages) await waitForLog(other, 'in', text, 20000);
  }
}

async function shot(page, name) {
  const out = path.join(repo, 'docs', name);
  await page.screenshot({ path: out });
  console.log(`wrote ${path.relative(repo, out)}`);
}

async function main() {
  const gateway = await startGateway();
  const browser = await launchBrowser();
  try {
    const viewport = { width: 1000, height: 640 };
    const open = async (url) => {
      const page = await openDemo(await browser.newContext({ viewport }), url);
      return page;
    };
    const [ana, ben] = [await open(`${gateway.url}/`), await open(`${gateway.url}/`)];
    await converse([ana, ben], [
      [ana, 'hi Ben, the kiosk in the lobby is back online'],
      [ben, 'great: it is on Flash Player 11, through port 843?'],
      [ana, 'yes, policy from flashgate, same room as us'],
      [ben, 'and binary from us reaches it as base64 text'],
    ]);
    await ana.fill('#message', 'see you');
    await shot(ana, 'demo.png');

    const flash = await open(`${gateway.url}/ruffle.html`);
    await converse([ana, flash], [
      [flash, 'hello from WebSocketMain.swf, running in Ruffle'],
      [ana, 'welcome! you came through the socket proxy'],
      [flash, 'and I only ever get text frames'],
    ]);
    await ana.fill('#message', 'Flash');
    await ana.click('#send-binary');
    await waitForLog(flash, 'in', 'binary 5 bytes: 46 6c 61 73 68', 20000);
    await shot(flash, 'ruffle.png');
  } finally {
    await browser.close();
    await gateway.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
