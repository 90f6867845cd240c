// The web chat page in headless Chromium (Debian's `chromium`, driven by playwright-core): type a question, see a
// streamed answer appear, take a screenshot.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { loadModelFolder } from '../lib/io/model-folder';
import { MiniMind } from '../lib/nn/model';
import { createServer } from '../lib/serve/server';
import { Tokenizer } from '../lib/tokenizer';
import { makeModelFolder } from './serve-fixture';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

let dir: string;
let model: MiniMind;
let server: http.Server;

beforeAll(async () => {
  dir = await makeModelFolder();
  model = loadModelFolder(dir);
  server = createServer({ model, tokenizer: Tokenizer.load(dir), modelName: 'tiny' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  model.dispose();
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

test('the chat page streams an answer to a typed question', async () => {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install chromium; .ci/run installs it)');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.fill('#max-tokens', '12');
    await page.fill('#input', 'What is the capital of Arvenia?');
    await page.click('#send');
    await page.locator('.msg.user').waitFor();
    // The stop button is enabled while tokens stream, and the answer bubble is marked done at the end.
    await page.locator('.msg.assistant[data-done="true"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('.msg.user').innerText()).toBe('What is the capital of Arvenia?');
    expect((await page.locator('.msg.assistant').innerText()).length).toBeGreaterThan(0);
    expect(await page.locator('.msg.error').count()).toBe(0);
    const shot = path.join(os.tmpdir(), 'minimind-chat.png');
    await page.screenshot({ path: shot });
    expect(fs.statSync(shot).size).toBeGreaterThan(1000);
    // New chat clears the conversation.
    await page.click('#new-chat');
    expect(await page.locator('.msg').count()).toBe(0);
  } finally {
    await browser.close();
  }
});
