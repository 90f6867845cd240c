// An OpenAI-compatible HTTP server for a model folder, plus a web chat page at GET /.
//   POST /v1/chat/completions  (stream and non-stream), POST /v1/completions, GET /v1/models, GET /health
// Requests are validated (4xx with OpenAI's error object), queued FIFO (each generation has its own KV cache,
// so concurrent requests never share state), limited (body size, max_tokens, queue length), cancelled when the
// client disconnects, and authenticated with a bearer token when an API key is set. Generation yields to the
// event loop between tokens so streams flow and other requests are accepted meanwhile.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Decoder, FinishReason } from '../infer/generate';
import { StopStringFilter } from '../infer/stop';
import { root } from '../native';
import { contextError, contextLength } from '../nn/config';
import { MiniMind } from '../nn/model';
import type { ChatMessage, TextTokenizer } from '../tokenizer/types';

export interface ServerOptions {
  model: MiniMind;
  tokenizer: TextTokenizer;
  modelName: string;
  apiKey?: string;
  maxBodyBytes?: number;
  maxTokensLimit?: number;
  maxQueue?: number;
  defaultMaxTokens?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error',
    readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

interface GenerationRequest {
  prompt: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  stop: string[];
  seed: number;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createServer(opts: ServerOptions): http.Server {
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const maxTokensLimit = opts.maxTokensLimit ?? contextLength(opts.model.cfg);
  const maxQueue = opts.maxQueue ?? 64;
  const { model, tokenizer, modelName } = opts;
  const eosIds = tokenizer.eosId >= 0 ? [tokenizer.eosId] : [];
  const created = Math.floor(Date.now() / 1000);

  // FIFO: one generation runs at a time; the rest wait their turn.
  let queueLength = 0;
  const stats = { completed: 0, cancelled: 0 };
  let chain: Promise<void> = Promise.resolve();
  const enqueue = <T>(job: () => Promise<T>): Promise<T> => {
    if (queueLength >= maxQueue) throw new HttpError(429, `the server is busy (${maxQueue} requests queued); retry later`, 'rate_limit_error');
    queueLength++;
    const run = chain.then(job);
    chain = run.then(() => undefined, () => undefined).finally(() => {
      queueLength--;
    });
    return run;
  };

  /** Runs one generation, calling onText with each safe piece of text; resolves with the totals. */
  const runGeneration = async (g: GenerationRequest, onText: (t: string) => void, cancelled: () => boolean):
    Promise<{ text: string; completionTokens: number; finishReason: FinishReason }> => {
    const decoder = new Decoder(model, g.prompt, {
      maxNewTokens: g.maxTokens, temperature: g.temperature, topP: g.topP, seed: g.seed, eosIds,
    });
    const stream = tokenizer.createStreamDecoder();
    const filter = new StopStringFilter(g.stop);
    try {
      for (;;) {
        if (cancelled()) {
          decoder.finish('stop');
          stats.cancelled++;
          return { text: filter.full, completionTokens: decoder.ids.length, finishReason: 'stop' };
        }
        const id = decoder.next();
        if (id === null) break;
        const piece = filter.push(stream.push(id));
        if (piece) onText(piece);
        if (filter.stopped) {
          decoder.finish('stop');
          break;
        }
        await tick();
      }
      const rest = filter.push(stream.flush()) + filter.flush();
      if (rest) onText(rest);
      stats.completed++;
    } finally {
      decoder.finish('length');
    }
    return { text: filter.full, completionTokens: decoder.ids.length, finishReason: decoder.finishReason ?? 'stop' };
  };

  const parseCommon = (body: Record<string, unknown>, prompt: number[]): GenerationRequest => {
    if (body.model !== undefined && typeof body.model !== 'string') throw new HttpError(400, '"model" must be a string', undefined, 'model');
    if (typeof body.model === 'string' && body.model !== modelName && body.model !== '') {
      throw new HttpError(404, `The model '${body.model}' does not exist (this server serves '${modelName}')`, 'invalid_request_error', 'model', 'model_not_found');
    }
    const num = (key: string, def: number, lo: number, hi: number): number => {
      const v = body[key];
      if (v === undefined || v === null) return def;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `"${key}" must be a number`, undefined, key);
      if (v < lo || v > hi) throw new HttpError(400, `"${key}" must be between ${lo} and ${hi}, got ${v}`, undefined, key);
      return v;
    };
    const room = contextLength(model.cfg) - prompt.length;
    if (room <= 0) {
      throw new HttpError(400, contextError(model.cfg, `the prompt has ${prompt.length} tokens`).message,
        undefined, 'messages', 'context_length_exceeded');
    }
    const maxTokens = Math.min(num('max_tokens', num('max_completion_tokens', opts.defaultMaxTokens ?? 256, 1, maxTokensLimit), 1, maxTokensLimit), room);
    const n = num('n', 1, 1, 1);
    void n;
    let stop: string[] = [];
    if (typeof body.stop === 'string') stop = [body.stop];
    else if (Array.isArray(body.stop)) {
      if (!body.stop.every((s) => typeof s === 'string') || body.stop.length > 4) {
        throw new HttpError(400, '"stop" must be a string or an array of up to 4 strings', undefined, 'stop');
      }
      stop = body.stop as string[];
    } else if (body.stop !== undefined && body.stop !== null) throw new HttpError(400, '"stop" must be a string or an array of strings', undefined, 'stop');
    stop = stop.filter((s) => s.length > 0);
    return {
      prompt,
      maxTokens: Math.floor(maxTokens),
      temperature: num('temperature', 0.7, 0, 2),
      topP: num('top_p', 1, 0, 1) || 1,
      stop,
      seed: Math.floor(num('seed', Math.floor(Math.random() * 2 ** 31), -(2 ** 53), 2 ** 53)),
    };
  };

  const parseMessages = (body: Record<string, unknown>): ChatMessage[] => {
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw new HttpError(400, '"messages" must be a non-empty array', undefined, 'messages');
    }
    return body.messages.map((m, i) => {
      if (typeof m !== 'object' || m === null) throw new HttpError(400, `messages[${i}] must be an object`, undefined, `messages[${i}]`);
      const { role, content } = m as Record<string, unknown>;
      if (!['system', 'user', 'assistant'].includes(role as string)) {
        throw new HttpError(400, `messages[${i}].role must be system, user or assistant`, undefined, `messages[${i}].role`);
      }
      let text: string;
      if (typeof content === 'string') text = content;
      else if (Array.isArray(content) && content.every((c) => c && typeof c === 'object' && (c as { type: string }).type === 'text')) {
        text = content.map((c) => String((c as { text: unknown }).text ?? '')).join('');
      } else throw new HttpError(400, `messages[${i}].content must be a string`, undefined, `messages[${i}].content`);
      return { role: role as string, content: text };
    });
  };

  const sendJson = (res: http.ServerResponse, status: number, obj: unknown) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const sendError = (res: http.ServerResponse, e: unknown) => {
    const err = e instanceof HttpError ? e : new HttpError(500, `internal error: ${(e as Error).message}`, 'server_error');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (err.status === 413) res.setHeader('connection', 'close');
    sendJson(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.code } });
  };

  const readBody = (req: http.IncomingMessage): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBody) {
          // Answer 413 and discard the rest of the body (the connection closes after the reply); a client that
          // keeps sending far past the limit is cut off.
          if (chunks.length) {
            chunks.length = 0;
            reject(new HttpError(413, `the request body exceeds ${maxBody} bytes`));
          }
          if (size > 16 * maxBody) req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (size > maxBody) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (e) {
          reject(new HttpError(400, `the body is not valid JSON: ${(e as Error).message}`));
          return;
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          reject(new HttpError(400, 'the body must be a JSON object'));
          return;
        }
        resolve(parsed as Record<string, unknown>);
      });
      req.on('error', reject);
    });

  const completion = async (req: http.IncomingMessage, res: http.ServerResponse, chat: boolean) => {
    const body = await readBody(req);
    let promptText: string;
    if (chat) promptText = tokenizer.applyChatTemplate(parseMessages(body), true);
    else {
      if (typeof body.prompt !== 'string') throw new HttpError(400, '"prompt" must be a string', undefined, 'prompt');
      promptText = body.prompt;
    }
    const prompt = tokenizer.encode(promptText);
    if (prompt.length === 0) throw new HttpError(400, 'the prompt is empty', undefined, chat ? 'messages' : 'prompt');
    const g = parseCommon(body, prompt);
    const id = `${chat ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const streamMode = body.stream === true;
    const includeUsage = streamMode && (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    let closed = false;
    res.on('close', () => {
      closed = !res.writableFinished;
    });
    const usage = (completionTokens: number) =>
      ({ prompt_tokens: prompt.length, completion_tokens: completionTokens, total_tokens: prompt.length + completionTokens });
    const object = chat ? 'chat.completion' : 'text_completion';

    if (!streamMode) {
      const r = await enqueue(() => runGeneration(g, () => {}, () => closed));
      if (closed) return;
      const choice = chat
        ? { index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason }
        : { index: 0, text: r.text, logprobs: null, finish_reason: r.finishReason };
      sendJson(res, 200, { id, object, created: createdAt, model: modelName, choices: [choice], usage: usage(r.completionTokens) });
      return;
    }

    const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
    const send = (obj: unknown) => {
      if (!closed) res.write(`data: ${JSON.stringify(obj)}\n\n`);
    };
    const chunk = (delta: Record<string, string> | string, finish: FinishReason | null) => ({
      id, object: chunkObject, created: createdAt, model: modelName,
      choices: [chat ? { index: 0, delta, logprobs: null, finish_reason: finish } : { index: 0, text: delta, logprobs: null, finish_reason: finish }],
    });
    await enqueue(async () => {
      if (closed) return;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      if (chat) send(chunk({ role: 'assistant', content: '' }, null));
      const r = await runGeneration(g, (t) => send(chunk(chat ? { content: t } : t, null)), () => closed);
      send(chunk(chat ? {} : '', r.finishReason));
      if (includeUsage) send({ id, object: chunkObject, created: createdAt, model: modelName, choices: [], usage: usage(r.completionTokens) });
      if (!closed) res.end('data: [DONE]\n\n');
    });
  };

  const page = () => fs.readFileSync(path.join(root, 'web', 'index.html'));

  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      if (route === 'GET /' || route === 'GET /index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page());
        return;
      }
      if (route === 'GET /health') return sendJson(res, 200, { status: 'ok', model: modelName, queued: queueLength, ...stats });
      if (opts.apiKey && url.pathname.startsWith('/v1/') && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        throw new HttpError(401, 'Incorrect or missing API key: send "Authorization: Bearer <key>"', 'invalid_request_error', null, 'invalid_api_key');
      }
      if (route === 'GET /v1/models') {
        return sendJson(res, 200, { object: 'list', data: [{ id: modelName, object: 'model', created, owned_by: 'minimind-native' }] });
      }
      if (route === 'POST /v1/chat/completions') return completion(req, res, true);
      if (route === 'POST /v1/completions') return completion(req, res, false);
      if (['/v1/chat/completions', '/v1/completions', '/v1/models', '/health', '/'].includes(url.pathname)) {
        throw new HttpError(405, `method ${req.method} is not allowed on ${url.pathname}`);
      }
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`, 'invalid_request_error', null, 'not_found');
    };
    handle().catch((e) => sendError(res, e));
  });
}
