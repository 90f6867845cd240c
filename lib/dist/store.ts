// The rendezvous store: a small key-value server that rank 0 hosts over TCP, and the client every rank uses
// to exchange addresses and ids and to meet at barriers before training starts (like torch's TCPStore).
//
// Protocol: each message is a 4-byte big-endian length and a msgpack object.
//   request  {id, op: 'set', key, value} | {id, op: 'get', key} | {id, op: 'add', key, delta} | {id, op: 'wait', keys}
//            | {id, op: 'arrive', key, delta: worldSize}
//   reply    {id, value?} | {id, error}
// `get` and `wait` are answered once the keys exist (set or add), so a rank can ask before another rank has
// published. Values are bytes; `add` keeps a decimal counter. `arrive` (a barrier) adds one to a counter and
// is answered once the counter reaches worldSize: all ranks' answers are written at the same moment, which
// matters because rank 0 hosts the server and may block in native code right after its own barrier returns.
// Every client call has a deadline; the server keeps no timers.
import * as net from 'node:net';
import { pack, unpack } from 'msgpackr';

interface Request {
  id: number;
  op: 'set' | 'get' | 'add' | 'wait' | 'arrive';
  key?: string;
  keys?: string[];
  value?: Uint8Array;
  delta?: number;
}

interface Reply {
  id: number;
  value?: Uint8Array | number;
  error?: string;
}

/** Splits a TCP byte stream into length-prefixed msgpack messages. */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onMessage: (m: unknown) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 4) {
      const length = this.pending.readUInt32BE(0);
      if (this.pending.length < 4 + length) break;
      const body = this.pending.subarray(4, 4 + length);
      this.pending = this.pending.subarray(4 + length);
      this.onMessage(unpack(body));
    }
  }
}

function frame(message: unknown): Buffer {
  const body = pack(message);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** The server side, hosted by rank 0 (or a test). */
export class StoreServer {
  private readonly data = new Map<string, Uint8Array>();
  /** Requests waiting for keys that do not exist yet. */
  private parked: { socket: net.Socket; request: Request }[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number) {}

  /** Listens on host:port (port 0 picks a free one; host undefined means every interface). */
  static listen(port: number, host?: string): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new Error(`rendezvous store: cannot listen on ${host ?? '*'}:${port}: ${e.code === 'EADDRINUSE'
          ? 'the port is in use (another run? choose another --master-port / MASTER_PORT)' : e.message}`));
      });
      server.listen(port, host, () => {
        const store = new StoreServer(server, (server.address() as net.AddressInfo).port);
        server.on('connection', (s) => store.accept(s));
        resolve(store);
      });
    });
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new FrameReader((m) => this.handle(socket, m as Request));
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.parked = this.parked.filter((p) => p.socket !== socket);
    });
  }

  private reply(socket: net.Socket, reply: Reply): void {
    if (!socket.destroyed) socket.write(frame(reply));
  }

  private counter(key: string): number {
    return Number(Buffer.from(this.data.get(key) ?? Buffer.from('0')).toString());
  }

  /** Answers a get/wait if its keys exist (an arrive once its counter is full); returns whether it did. */
  private answer(socket: net.Socket, r: Request): boolean {
    if (r.op === 'arrive') {
      if (this.counter(r.key!) < r.delta!) return false;
      this.reply(socket, { id: r.id });
      return true;
    }
    const keys = r.op === 'get' ? [r.key!] : r.keys!;
    if (!keys.every((k) => this.data.has(k))) return false;
    this.reply(socket, { id: r.id, value: r.op === 'get' ? this.data.get(r.key!) : undefined });
    return true;
  }

  private handle(socket: net.Socket, r: Request): void {
    switch (r.op) {
      case 'set':
        this.data.set(r.key!, r.value!);
        this.reply(socket, { id: r.id });
        break;
      case 'add': {
        const now = this.counter(r.key!) + r.delta!;
        this.data.set(r.key!, Buffer.from(String(now)));
        this.reply(socket, { id: r.id, value: now });
        break;
      }
      case 'arrive':
        this.data.set(r.key!, Buffer.from(String(this.counter(r.key!) + 1)));
        this.parked.push({ socket, request: r });
        break;
      case 'get':
      case 'wait':
        if (!this.answer(socket, r)) this.parked.push({ socket, request: r });
        return;
      default:
        this.reply(socket, { id: r.id, error: `unknown store operation ${String(r.op)}` });
        return;
    }
    this.parked = this.parked.filter((p) => !this.answer(p.socket, p.request));
  }

  /** Lets the process exit while the server still listens (after the rendezvous nobody needs it). */
  unref(): void {
    this.server.unref();
    for (const s of this.sockets) s.unref();
    this.server.on('connection', (s) => s.unref());
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface StoreClientOptions {
  host: string;
  port: number;
  /** Ranks taking part (for barriers). */
  worldSize: number;
  /** How long to keep trying to reach the server, in seconds. */
  connectTimeout: number;
  /** Default deadline of each operation, in seconds. */
  timeout: number;
}

/** Every rank's handle on the store. Operations reject with a message naming the key after their deadline. */
export class StoreClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private barriers = 0;
  private closedError: Error | null = null;

  private constructor(private readonly socket: net.Socket, readonly opts: StoreClientOptions) {
    const reader = new FrameReader((m) => {
      const reply = m as Reply;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!p) return;
      if (reply.error) p.reject(new Error(`rendezvous store: ${reply.error}`));
      else p.resolve(reply);
    });
    socket.on('data', (chunk) => reader.push(chunk));
    const fail = (why: string) => {
      this.closedError ??= new Error(`rendezvous store at ${opts.host}:${opts.port} ${why}`);
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
    };
    socket.on('error', (e) => fail(`lost the connection (${e.message}): did rank 0 exit?`));
    socket.on('close', () => fail('closed the connection (did rank 0 exit?)'));
  }

  /** Connects, retrying while the server is not up yet (rank 0 may start last). */
  static async connect(opts: StoreClientOptions): Promise<StoreClient> {
    const deadline = Date.now() + opts.connectTimeout * 1000;
    let lastError = '';
    while (Date.now() < deadline) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: opts.host, port: opts.port }, () => resolve(s));
          s.once('error', reject);
        });
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        return new StoreClient(socket, opts);
      } catch (e) {
        lastError = (e as Error).message;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`rendezvous: could not reach the store at ${opts.host}:${opts.port} (hosted by rank 0) within ` +
      `${opts.connectTimeout} s: ${lastError || 'timed out'}`);
  }

  /** This end's address as the server sees it: the interface other hosts can reach us on. */
  get localAddress(): string {
    return this.socket.localAddress ?? '127.0.0.1';
  }

  private request(r: Omit<Request, 'id'>, what: string, timeout = this.opts.timeout): Promise<Reply> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`rendezvous: ${what} timed out after ${timeout} s`));
      }, timeout * 1000);
      this.pending.set(id, {
        resolve: (reply) => { clearTimeout(timer); resolve(reply); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.socket.write(frame({ ...r, id }));
    });
  }

  async set(key: string, value: string | Uint8Array): Promise<void> {
    await this.request({ op: 'set', key, value: typeof value === 'string' ? Buffer.from(value) : value }, `set '${key}'`);
  }

  /** The value of `key`, waiting until some rank sets it. */
  async get(key: string, timeout?: number): Promise<Buffer> {
    const reply = await this.request({ op: 'get', key }, `get '${key}'`, timeout);
    return Buffer.from(reply.value as Uint8Array);
  }

  async getString(key: string, timeout?: number): Promise<string> {
    return (await this.get(key, timeout)).toString();
  }

  /** Adds `delta` to the counter `key` (0 if absent) and returns the new value. */
  async add(key: string, delta: number): Promise<number> {
    return (await this.request({ op: 'add', key, delta }, `add '${key}'`)).value as number;
  }

  /** Resolves once every key exists. */
  async wait(keys: string[], timeout?: number): Promise<void> {
    await this.request({ op: 'wait', keys }, `wait for ${keys.map((k) => `'${k}'`).join(', ')}`, timeout);
  }

  /** Resolves once all worldSize ranks called barrier() the same number of times. */
  async barrier(tag = 'barrier', timeout = this.opts.timeout): Promise<void> {
    const key = `barrier/${tag}/${this.barriers++}`;
    try {
      await this.request({ op: 'arrive', key, delta: this.opts.worldSize }, `barrier '${tag}'`, timeout);
    } catch (e) {
      if (this.closedError) throw e;
      const count = await this.add(key, 0).catch(() => NaN);
      throw new Error(`rendezvous: barrier '${tag}' timed out after ${timeout} s: ${count} of ${this.opts.worldSize} ` +
        'ranks arrived (a rank failed to start, or the ranks run different commands)');
    }
  }

  /** Lets the process exit while the connection is open. */
  unref(): void {
    this.socket.unref();
  }

  close(): void {
    this.closedError ??= new Error('rendezvous store client closed');
    this.socket.destroy();
  }
}
