// Drives the debug UI of a `mercurectl serve --dev` hub in headless
// Chromium through playwright-core, by accessible names only. Run by
// TestDebugUIInBrowser (browser_test.go), which passes:
//
//   PLAYWRIGHT_CORE  directory of the playwright-core package
//   CHROMIUM         the browser executable (Debian's /usr/bin/chromium)
//   HUB_URL          the hub URL (http://127.0.0.1:PORT/.well-known/mercure)
//   MERCURECTL       the mercurectl binary, for the publish from the command line
//   MERCURE_JWT      the development token serve --dev printed
//   SCREENSHOT       where to write the screenshot (PNG)
//
// It prints one line per step, and exits non-zero on the first failure.

import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const { chromium } = await import(pathToFileURL(path.join(env('PLAYWRIGHT_CORE'), 'index.mjs')).href);
const hubURL = env('HUB_URL');
const origin = new URL(hubURL).origin;
const topic = 'https://example.com/ui-test/books/1';
const step = (s) => console.log(`step: ${s}`);
const timeout = 15000;

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60000,
});
const failures = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  // The page must not reach any other origin: record and refuse such requests.
  const outside = [];
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (new URL(u).origin !== origin) { outside.push(u); return route.abort(); }
    return route.continue();
  });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') failures.push(`console error: ${m.text()}`); });

  step('open the UI');
  const res = await page.goto(`${hubURL}/ui/`);
  if (res.status() !== 200) throw new Error(`GET /ui/: ${res.status()}`);
  const csp = res.headers()['content-security-policy'] ?? '';
  if (!csp.includes("script-src 'self'") || !csp.includes("default-src 'none'")) throw new Error(`weak Content-Security-Policy: ${csp}`);
  await page.locator('body[data-ready="true"]').waitFor();

  const events = page.getByRole('region', { name: 'Events' });
  const status = page.locator('#sub-status');
  const waitEvent = (text) => events.getByText(text).first().waitFor();
  const subscribed = () => page.locator('#sub-status[data-state="open"]').waitFor();
  const publishFromPage = async (data, { priv = false } = {}) => {
    await page.getByRole('textbox', { name: 'Publish topic' }).fill(topic);
    await page.getByRole('textbox', { name: 'Data' }).fill(data);
    await page.getByRole('checkbox', { name: 'Private' }).setChecked(priv);
    await page.getByRole('button', { name: 'Publish', exact: true }).click();
    await page.locator('#pub-status.ok').getByText('Published').waitFor();
  };

  step('the development token is in the page, decoded');
  const tok = await page.getByRole('textbox', { name: 'Token', exact: true }).inputValue();
  if (tok !== env('MERCURE_JWT')) throw new Error('the page does not hold the development token');
  await page.locator('#token-decoded').getByText('draft-07 legacy token').waitFor();

  step('subscribe by label, with the development token');
  await page.getByLabel('Topic selector').fill(topic);
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await subscribed();

  step('the subscription is listed live in Active subscriptions');
  const subs = page.getByRole('region', { name: 'Active subscriptions' });
  await subs.getByText(topic).first().waitFor();

  step('publish from the page');
  await publishFromPage('{"title": "from the page"}');
  await waitEvent('"title": "from the page"');

  step('publish from mercurectl publish');
  const id = execFileSync(env('MERCURECTL'), ['publish', '--hub', hubURL, '--topic', topic, '--data', 'from the command line'],
    { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8' }).trim();
  await waitEvent('from the command line');
  await events.getByText(id).first().waitFor();

  step('an anonymous subscription does not get a private update');
  await page.getByRole('checkbox', { name: 'Send the token' }).setChecked(false);
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await subscribed();
  if (!(await status.textContent()).includes('anonymous')) throw new Error(`not anonymous: ${await status.textContent()}`);
  await page.getByRole('button', { name: 'Clear' }).click();
  await publishFromPage('a private update', { priv: true });
  await publishFromPage('a public update after it');
  // Updates arrive in order on one stream: once the public one is shown,
  // the private one would have been shown before it.
  await waitEvent('a public update after it');
  if (await events.getByText('a private update').count() !== 0) throw new Error('an anonymous subscriber received a private update');

  step('with the token, replaying from earliest, the private update appears');
  await page.getByRole('checkbox', { name: 'Send the token' }).setChecked(true);
  await page.getByRole('textbox', { name: 'Last-Event-ID' }).fill('earliest');
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await waitEvent('a private update');
  await page.getByText('replay done').waitFor();

  step('reconnect resumes after the last event');
  await page.getByRole('textbox', { name: 'Last-Event-ID' }).fill('');
  await page.getByRole('button', { name: 'Reconnect' }).click();
  await subscribed();
  await publishFromPage('{"title": "after the reconnection", "tags": ["live", "ui"]}');
  await waitEvent('"title": "after the reconnection"');
  if (await events.getByText('a private update').count() !== 1) throw new Error('the reconnection replayed events already shown');

  step('mint a draft-08 access token in the page and subscribe with it');
  await page.getByText('Mint a token with the development key').click();
  await page.getByLabel('Token format').selectOption('rfc9068');
  await page.getByRole('button', { name: 'Mint token' }).click();
  await page.locator('#token-decoded').getByText('draft-08 access token').waitFor();
  await page.getByRole('textbox', { name: 'Last-Event-ID' }).fill('');
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await subscribed();
  if (!(await status.textContent()).includes('draft-08, with the token')) throw new Error(`not draft-08: ${await status.textContent()}`);
  await publishFromPage('a private draft-08 update', { priv: true });
  await waitEvent('a private draft-08 update');

  step('screenshot');
  await page.screenshot({ path: env('SCREENSHOT'), fullPage: true });
  if (outside.length) failures.push(`requests to other origins: ${outside.join(', ')}`);
} finally {
  await browser.close();
}
if (failures.length) {
  for (const f of failures) console.log(`FAIL: ${f}`);
  process.exit(1);
}
console.log('ok');
