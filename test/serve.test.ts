// The OpenAI-compatible server on loopback: the official `openai` client (stream and non-stream, chat and
// completions, models), raw HTTP for bad requests, API keys, 20 concurrent streams, and cancellation.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import OpenAI from 'openai';
import { loadModelFolder } from '../lib/io/model-folder';
import { MiniMind } from '../lib/nn/model';
import { createServer } from '../lib/serve/server';
import { Tokenizer } from '../lib/tokenizer';
import { makeModelFolder } from './serve-fixture';

let dir: string;
let model: MiniMind;
let server: http.Server;
let base: string;
let client: OpenAI;

const listen = (s: http.Server) =>
  new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));

beforeAll(async () => {
  dir = await makeModelFolder();
  model = loadModelFolder(dir);
  server = createServer({ model, tokenizer: Tokenizer.load(dir), modelName: 'tiny', maxBodyBytes: 64 * 1024, maxQueue: 32 });
  base = await listen(server);
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  model.dispose();
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

const messages = [{ role: 'user' as const, content: 'What is the capital of Arvenia?' }];

test('chat completion (non-stream) returns a message, finish_reason and usage', async () => {
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, temperature: 0 });
  expect(r.object).toBe('chat.completion');
  expect(r.choices).toHaveLength(1);
  expect(typeof r.choices[0].message.content).toBe('string');
  expect(['stop', 'length']).toContain(r.choices[0].finish_reason);
  expect(r.usage!.prompt_tokens).toBeGreaterThan(5);
  expect(r.usage!.completion_tokens).toBeLessThanOrEqual(8);
  expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
});

test('streaming gives the same text as non-streaming, ending with a finish_reason chunk', async () => {
  const once = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
  const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage: unknown = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  expect(text).toBe(once.choices[0].message.content);
  expect(finish).toBe(once.choices[0].finish_reason);
  expect(usage).toEqual(once.usage);
});

test('max_tokens gives finish_reason length; seed makes sampling reproducible', async () => {
  const a = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 3, temperature: 1, seed: 7 });
  const b = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 3, temperature: 1, seed: 7 });
  expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
  if (a.usage!.completion_tokens === 3) expect(a.choices[0].finish_reason).toBe('length');
});

test('completions and models endpoints', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'The capital of', max_tokens: 5, temperature: 0 });
  expect(r.object).toBe('text_completion');
  expect(typeof r.choices[0].text).toBe('string');
  const models = await client.models.list();
  expect(models.data.map((m) => m.id)).toEqual(['tiny']);
});

/** A raw HTTP request; resolves with status and parsed body. */
function raw(method: string, route: string, body?: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; json: { error?: { message: string; type: string; param: string | null } } }>((resolve, reject) => {
    const req = http.request(`${base}${route}`, { method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: data ? JSON.parse(data) : {} }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

test.each<[string, string, number, RegExp]>([
  ['malformed JSON', '{"messages": [', 400, /JSON/],
  ['missing messages', '{"model": "tiny"}', 400, /messages/],
  ['wrong role', '{"messages": [{"role": "robot", "content": "hi"}]}', 400, /role/],
  ['wrong content type', '{"messages": [{"role": "user", "content": 5}]}', 400, /content/],
  ['wrong temperature type', '{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', 400, /temperature/],
  ['max_tokens out of range', '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}', 400, /max_tokens/],
  ['unknown model', '{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}', 404, /gpt-9/],
  ['oversize prompt', JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(3000) }] }), 400, /context/],
  ['oversize body', JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }), 413, /exceeds/],
])('%s: an OpenAI error object', async (_name, body, status, message) => {
  const r = await raw('POST', '/v1/chat/completions', body);
  expect(r.status).toBe(status);
  expect(r.json.error!.message).toMatch(message);
  expect(typeof r.json.error!.type).toBe('string');
});

test('unknown routes and methods, health', async () => {
  expect((await raw('GET', '/v1/nothing')).status).toBe(404);
  expect((await raw('GET', '/v1/chat/completions')).status).toBe(405);
  const h = await raw('GET', '/health');
  expect(h.status).toBe(200);
});

test('with --api-key, requests without the bearer token get 401', async () => {
  const s = createServer({ model, tokenizer: Tokenizer.load(dir), modelName: 'tiny', apiKey: 'sekret' });
  const url = await listen(s);
  try {
    const denied = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(denied.models.list()).rejects.toMatchObject({ status: 401 });
    const allowed = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sekret', maxRetries: 0 });
    expect((await allowed.models.list()).data).toHaveLength(1);
  } finally {
    await new Promise((r) => s.close(r));
  }
});

test('20 concurrent streams each get their own, uncorrupted answer', async () => {
  const prompts = Array.from({ length: 20 }, (_, i) => `Question number ${i}: what color is the sky?`);
  const solo = [];
  for (const p of prompts.slice(0, 4)) {
    solo.push((await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: p }], max_tokens: 10,
      temperature: 0 })).choices[0].message.content);
  }
  const results = await Promise.all(prompts.map(async (p) => {
    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: p }], max_tokens: 10,
      temperature: 0, stream: true });
    let text = '';
    let finished = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason) finished = true;
    }
    expect(finished).toBe(true);
    return text;
  }));
  expect(results.slice(0, 4)).toEqual(solo);
});

test('a client that disconnects mid-stream cancels its generation', async () => {
  const before = (await raw('GET', '/health')).json as unknown as { cancelled: number };
  const controller = new AbortController();
  const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 200, temperature: 1, seed: 1,
    stream: true }, { signal: controller.signal });
  let chunks = 0;
  try {
    for await (const _ of stream) {
      if (++chunks === 1) controller.abort(); // after the role chunk, before most tokens
    }
  } catch {
    // the client may end the iteration or throw an abort error: either way the connection is gone
  }
  expect(chunks).toBeGreaterThanOrEqual(1); // chunks already received may still be delivered
  // The server notices on its next token.
  for (let i = 0; i < 500; i++) { // up to 10 s: a loaded machine may take a while per token
    const h = (await raw('GET', '/health')).json as unknown as { cancelled: number; queued: number };
    if (h.cancelled > before.cancelled && h.queued === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the generation was not cancelled');
});
