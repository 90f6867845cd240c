// Test-only writer of torch.save files, so the reader can be tested with no torch installed. It emits what
// CPython's pickler (protocol 2) emits for torch.save(state_dict): an OrderedDict built by REDUCE + SETITEMS
// (+ BUILD with the `_metadata` attribute), tensors as `_rebuild_tensor_v2(storage, offset, size, stride,
// False, OrderedDict())`, storages as persistent ids `('storage', torch.FloatStorage, '0', 'cpu', numel)`,
// every new object memoised with BINPUT and repeats fetched with BINGET. Containers: the zip archive
// (`<name>/data.pkl`, `<name>/byteorder`, `<name>/data/<key>` 64-byte aligned, `<name>/version`) and the legacy
// back-to-back pickles.
import * as zlib from 'node:zlib';

export type StorageClass = 'FloatStorage' | 'HalfStorage' | 'BFloat16Storage' | 'DoubleStorage';
export interface FakeStorage {
  key: string;
  cls: StorageClass;
  numel: number;
  bytes: Uint8Array;
}
export interface FakeTensor {
  storage: FakeStorage;
  offset: number;
  shape: number[];
  stride: number[];
}
export interface SaveOptions {
  /** Write the v3 form: UntypedStorage in the persistent id and the dtype as a rebuild argument. */
  untyped?: boolean;
  /** Attach a `_metadata` OrderedDict with BUILD, as state_dict() does. */
  metadata?: boolean;
  /** Save a training checkpoint {'model': state_dict, 'step': 7} instead of the bare state dict. */
  wrap?: boolean;
}

const BYTES_PER: Record<StorageClass, number> = { FloatStorage: 4, HalfStorage: 2, BFloat16Storage: 2, DoubleStorage: 8 };
const DTYPE_OF: Record<StorageClass, string> = { FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64' };

class Pickler {
  private chunks: Buffer[] = [];
  private memo = new Map<string, number>();

  op(...bytes: number[]) {
    this.chunks.push(Buffer.from(bytes));
  }
  raw(b: Buffer) {
    this.chunks.push(b);
  }
  /** Memoise the object on top of the stack (BINPUT, or LONG_BINPUT past 255). */
  put(key: string) {
    const idx = this.memo.size;
    this.memo.set(key, idx);
    if (idx < 256) this.op(0x71, idx);
    else {
      const b = Buffer.alloc(5);
      b[0] = 0x72;
      b.writeUInt32LE(idx, 1);
      this.raw(b);
    }
  }
  /** BINGET an already memoised object; false if it is new. */
  get(key: string): boolean {
    const idx = this.memo.get(key);
    if (idx === undefined) return false;
    if (idx < 256) this.op(0x68, idx);
    else {
      const b = Buffer.alloc(5);
      b[0] = 0x6a;
      b.writeUInt32LE(idx, 1);
      this.raw(b);
    }
    return true;
  }
  global(module: string, name: string) {
    if (this.get(`global ${module}.${name}`)) return;
    this.raw(Buffer.from(`c${module}\n${name}\n`, 'latin1'));
    this.put(`global ${module}.${name}`);
  }
  str(s: string) {
    if (this.get(`str ${s}`)) return;
    const b = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58; // BINUNICODE
    head.writeUInt32LE(b.length, 1);
    this.raw(Buffer.concat([head, b]));
    this.put(`str ${s}`);
  }
  int(n: number) {
    if (n >= 0 && n < 256) this.op(0x4b, n);
    else if (n >= 0 && n < 65536) this.op(0x4d, n & 0xff, n >> 8);
    else if (n >= -(2 ** 31) && n < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(n, 1);
      this.raw(b);
    } else {
      let v = BigInt(n);
      const bytes: number[] = [];
      while (v !== 0n && v !== -1n) {
        bytes.push(Number(v & 0xffn));
        v >>= 8n;
      }
      if (bytes.length === 0 || (bytes[bytes.length - 1] & 0x80) !== (n < 0 ? 0x80 : 0)) bytes.push(n < 0 ? 0xff : 0);
      this.op(0x8a, bytes.length, ...bytes); // LONG1
    }
  }
  bigLong(v: bigint) {
    const bytes: number[] = [];
    for (let x = v; x > 0n; x >>= 8n) bytes.push(Number(x & 0xffn));
    if (bytes[bytes.length - 1] & 0x80) bytes.push(0);
    this.op(0x8a, bytes.length, ...bytes);
  }
  /** A tuple: TUPLE1-3 for short ones, MARK ... TUPLE otherwise; then memoised as CPython does. */
  tuple(key: string, items: (() => void)[]) {
    if (items.length === 0) {
      this.op(0x29);
      return;
    }
    if (items.length > 3) this.op(0x28);
    for (const item of items) item();
    this.op(items.length > 3 ? 0x74 : 0x84 + items.length);
    this.put(key);
  }
  /** An OrderedDict() via REDUCE, its items with SETITEM/SETITEMS (batches of 1000), then an optional BUILD. */
  orderedDict(key: string, items: [string, () => void][], state?: () => void) {
    this.global('collections', 'OrderedDict');
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
    this.put(key);
    for (let i = 0; i < items.length; i += 1000) {
      const batch = items.slice(i, i + 1000);
      if (batch.length > 1) this.op(0x28);
      for (const [k, v] of batch) {
        this.str(k);
        v();
      }
      this.op(batch.length > 1 ? 0x75 : 0x73);
    }
    if (state) {
      state();
      this.op(0x62); // BUILD
    }
  }
  finish(): Buffer {
    this.op(0x2e); // STOP
    return Buffer.concat(this.chunks);
  }
}

function picklerWithProto(): Pickler {
  const p = new Pickler();
  p.op(0x80, 2);
  return p;
}

/** The `_metadata` state of a state_dict: {'_metadata': OrderedDict([('', {'version': 1})])}. */
function metadataState(p: Pickler) {
  p.op(0x7d); // EMPTY_DICT
  p.put('state');
  p.str('_metadata');
  p.orderedDict('metadata', [['', () => {
    p.op(0x7d);
    p.put('meta-root');
    p.str('version');
    p.int(1);
    p.op(0x73);
  }]]);
  p.op(0x73);
}

let objectCounter = 0;

function pickleStateDict(entries: [string, FakeTensor][], opts: SaveOptions, legacy: boolean): Buffer {
  const p = picklerWithProto();
  const tensor = (t: FakeTensor) => () => {
    const id = objectCounter++;
    p.global('torch._utils', opts.untyped ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2');
    const storagePid = () => {
      const s = t.storage;
      const pid = [() => p.str('storage'), () => p.global('torch', opts.untyped ? 'UntypedStorage' : s.cls),
        () => p.str(s.key), () => p.str('cpu'), () => p.int(opts.untyped ? s.numel * BYTES_PER[s.cls] : s.numel)];
      if (legacy) pid.push(() => p.op(0x4e)); // view_metadata None
      p.tuple(`pid ${id}`, pid);
      p.op(0x51); // BINPERSID
    };
    const args = [storagePid, () => p.int(t.offset), () => p.tuple(`size ${id}`, t.shape.map((d) => () => p.int(d))),
      () => p.tuple(`stride ${id}`, t.stride.map((d) => () => p.int(d))), () => p.op(0x89), // requires_grad False
      () => {
        p.global('collections', 'OrderedDict');
        p.op(0x29, 0x52);
        p.put(`hooks ${id}`);
      }];
    if (opts.untyped) args.push(() => p.global('torch', DTYPE_OF[t.storage.cls]));
    p.tuple(`args ${id}`, args);
    p.op(0x52); // REDUCE
    p.put(`tensor ${id}`);
  };
  const stateDict = () => p.orderedDict('state_dict', entries.map(([name, t]) => [name, tensor(t)]),
    opts.metadata ? () => metadataState(p) : undefined);
  if (!opts.wrap) {
    stateDict();
    return p.finish();
  }
  p.op(0x7d); // EMPTY_DICT
  p.put('checkpoint');
  p.op(0x28);
  p.str('model');
  stateDict();
  p.str('step');
  p.int(7);
  p.op(0x75); // SETITEMS
  return p.finish();
}

/** Storages in the order torch writes them (sorted keys), each once. */
function uniqueStorages(entries: [string, FakeTensor][]): FakeStorage[] {
  const byKey = new Map<string, FakeStorage>();
  for (const [, t] of entries) byKey.set(t.storage.key, t.storage);
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

/** A zip archive as torch's writer makes it (stored entries, data aligned to 64 bytes), or deflated. */
export function zipArchive(files: [string, Uint8Array][], deflate = false): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of files) {
    const nameBytes = Buffer.from(name, 'utf8');
    const data = deflate ? zlib.deflateRawSync(content) : Buffer.from(content);
    // torch pads the local extra field ("FB" tag) so that each record's data starts on a 64-byte boundary
    const headerLen = 30 + nameBytes.length;
    const pad = deflate ? 0 : (64 - ((offset + headerLen + 4) % 64)) % 64;
    const extra = deflate ? Buffer.alloc(0) : Buffer.alloc(4 + pad);
    if (!deflate) {
      extra.writeUInt16LE(0x4246, 0);
      extra.writeUInt16LE(pad, 2);
    }
    const crc = zlib.crc32(content);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(content.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(deflate ? 8 : 0, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(content.length, 24);
    cd.writeUInt16LE(nameBytes.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, nameBytes);
    parts.push(local, nameBytes, extra, data);
    offset += 30 + nameBytes.length + extra.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cdBytes.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBytes, eocd]);
}

/** torch.save(state_dict, "<archive>.pth") in the zip format. */
export function torchSaveZip(entries: [string, FakeTensor][], opts: SaveOptions & { archive?: string; deflate?: boolean } = {}): Buffer {
  const archive = opts.archive ?? 'archive';
  const files: [string, Uint8Array][] = [[`${archive}/data.pkl`, pickleStateDict(entries, opts, false)],
    [`${archive}/byteorder`, Buffer.from('little')]];
  for (const s of uniqueStorages(entries)) files.push([`${archive}/data/${s.key}`, s.bytes]);
  files.push([`${archive}/version`, Buffer.from('3\n')]);
  return zipArchive(files, opts.deflate);
}

/** torch.save(state_dict, f, _use_new_zipfile_serialization=False): the legacy format. */
export function torchSaveLegacy(entries: [string, FakeTensor][], opts: SaveOptions = {}): Buffer {
  const magic = picklerWithProto();
  magic.bigLong(0x1950a86a20f9469cfc6cn);
  const protocol = picklerWithProto();
  protocol.int(1001);
  const sysInfo = picklerWithProto();
  sysInfo.op(0x7d);
  sysInfo.put('sys');
  sysInfo.op(0x28);
  sysInfo.str('protocol_version');
  sysInfo.int(1001);
  sysInfo.str('little_endian');
  sysInfo.op(0x88);
  sysInfo.str('type_sizes');
  sysInfo.op(0x7d);
  sysInfo.put('sizes');
  sysInfo.op(0x28);
  for (const [k, v] of [['short', 2], ['int', 4], ['long', 4]] as const) {
    sysInfo.str(k);
    sysInfo.int(v);
  }
  sysInfo.op(0x75, 0x75);
  const storages = uniqueStorages(entries);
  const keys = picklerWithProto();
  keys.op(0x5d); // EMPTY_LIST
  keys.put('keys');
  keys.op(0x28);
  for (const s of storages) keys.str(s.key);
  keys.op(0x65); // APPENDS
  const data: Buffer[] = [];
  for (const s of storages) {
    const n = Buffer.alloc(8);
    n.writeBigInt64LE(BigInt(s.numel));
    data.push(n, Buffer.from(s.bytes));
  }
  return Buffer.concat([magic.finish(), protocol.finish(), sysInfo.finish(), pickleStateDict(entries, opts, true), keys.finish(), ...data]);
}

/** Raw storage bytes of a dtype from f32 values (f16 and bf16 rounded to nearest even). */
export function storageBytes(cls: StorageClass, values: Float32Array): Uint8Array {
  if (cls === 'FloatStorage') return new Uint8Array(values.slice().buffer);
  if (cls === 'DoubleStorage') return new Uint8Array(Float64Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.slice().buffer);
  for (let i = 0; i < values.length; i++) {
    if (cls === 'BFloat16Storage') out[i] = (u32[i] + 0x7fff + ((u32[i] >>> 16) & 1)) >>> 16;
    else out[i] = floatToHalfForTest(values[i]);
  }
  return new Uint8Array(out.buffer);
}

/** f32 → f16 by way of the exact f16 grid (test values are chosen representable, so no rounding matters). */
function floatToHalfForTest(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  const e = Math.floor(Math.log2(a));
  if (e < -14) return sign | Math.round(a / 2 ** -24);
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}
