// MQTT.js in a browser as a test client: Debian's Chromium (driven by playwright-core) loads MQTT.js's browser
// bundle into a blank page and runs one scenario of scenario.js there, over the browser's own WebSocket; the
// result is printed as one JSON object. pytest (tests/mqtt_ws) runs it:
//
//   node browser_client.mjs /usr/bin/chromium '{"scenario": "publish", "url": "ws://127.0.0.1:8083/mqtt", ...}'
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const [executablePath, json] = process.argv.slice(2);
const options = JSON.parse(json);
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
  timeout: options.timeoutMs ?? 20000,
});
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.addScriptTag({ path: path.join(here, 'node_modules', 'mqtt', 'dist', 'mqtt.min.js') });
  await page.addScriptTag({ path: path.join(here, 'scenario.js') });
  const result = await page.evaluate((opts) => globalThis.runMqttScenario(globalThis.mqtt, opts), options);
  result.userAgent = await page.evaluate(() => navigator.userAgent);
  result.pageErrors = pageErrors;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
