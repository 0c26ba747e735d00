// Takes docs/demo.png: the demo page after a short chat between two browsers.
'use strict';
const path = require('node:path');
const { repo, startGateway, launchBrowser, waitForLog } = require('./harness');

async function main() {
  const gateway = await startGateway();
  const browser = await launchBrowser();
  try {
    const open = async () => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
      await page.goto(`${gateway.url}/`);
      await page.waitForFunction(() => document.getElementById('state').textContent === 'open');
      return page;
    };
    const [ana, ben] = [await open(), await open()];
    const lines = [
      [ana, 'hi Ben, the kiosk in the lobby is back online'],
      [ben, 'great: it is on Flash Player 11, through port 843?'],
      [ana, 'yes, policy from flashgate, same room as us'],
      [ben, 'and binary from us reaches it as base64 text'],
    ];
    for (const [page, text] of lines) {
      await page.fill('#message', text);
      await page.click('#send');
      await waitForLog(ana, 'in', text);
      await waitForLog(ben, 'in', text);
    }
    await ana.fill('#message', 'see you');
    const out = path.join(repo, 'docs', 'demo.png');
    await ana.screenshot({ path: out });
    console.log(`wrote ${path.relative(repo, out)}`);
  } finally {
    await browser.close();
    await gateway.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
