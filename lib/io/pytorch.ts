// Reading PyTorch checkpoints (torch.save of a state dict) with no Python.
//
// Two container formats:
//  - zip (torch >= 1.6): `<archive>/data.pkl` (a protocol-2 pickle of the object), `<archive>/data/<key>` (the raw
//    bytes of each storage), `<archive>/byteorder` ("little"/"big"), `<archive>/version`. torch stores the entries
//    uncompressed; deflated entries (a re-zipped file) are inflated with node:zlib.
//  - legacy (torch < 1.6, or `_use_new_zipfile_serialization=False`): pickles back to back (magic number,
//    protocol version, sys_info, the object, the list of storage keys), then for each key an int64 element count
//    and the storage bytes.
// In the pickle a tensor is `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` (or
// `_rebuild_tensor_v3(..., dtype)` over an untyped storage), the storage a persistent id
// `('storage', torch.FloatStorage, key, location, numel)`. Tensors are materialised row-major as Float32Array
// (f16/bf16/f64 storages converted; views, offsets and non-contiguous strides gathered).
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { halfToFloat } from './safetensors';
import { describe, PickleHooks, unpickle } from './pickle';
import { StateDict } from './state-dict';

type StorageDType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

const ELEMENT_BYTES: Record<StorageDType, number> = { f32: 4, f16: 2, bf16: 2, f64: 8, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };

/** torch.<Name>Storage classes (the typed storages of torch.save's persistent ids). */
const STORAGE_CLASSES: Record<string, StorageDType> = {
  FloatStorage: 'f32', HalfStorage: 'f16', BFloat16Storage: 'bf16', DoubleStorage: 'f64', LongStorage: 'i64',
  IntStorage: 'i32', ShortStorage: 'i16', CharStorage: 'i8', ByteStorage: 'u8', BoolStorage: 'bool',
  UntypedStorage: 'u8', // bytes; _rebuild_tensor_v3 then says the tensor's dtype
};

/** torch.<dtype> globals, as passed to _rebuild_tensor_v3. */
const TORCH_DTYPES: Record<string, StorageDType> = {
  float32: 'f32', float: 'f32', float16: 'f16', half: 'f16', bfloat16: 'bf16', float64: 'f64', double: 'f64',
  int64: 'i64', long: 'i64', int32: 'i32', int: 'i32', int16: 'i16', short: 'i16', int8: 'i8', uint8: 'u8', bool: 'bool',
};

/** Stand-ins for the pickled classes and dtypes, recognised by the rebuild functions. */
class StorageClass {
  constructor(readonly dtype: StorageDType) {}
}
class TorchDType {
  constructor(readonly dtype: StorageDType) {}
}

/** One storage: its raw bytes (little-endian after loading) and its element type. */
class Storage {
  bytes: Uint8Array | null = null;
  private asF32 = new Map<StorageDType, Float32Array>();
  constructor(readonly key: string, readonly dtype: StorageDType) {}

  /** The whole storage read as `dtype`, in f32: converted once and shared by every tensor that views it. */
  f32(dtype: StorageDType): Float32Array {
    let out = this.asF32.get(dtype);
    if (!out) this.asF32.set(dtype, (out = convertToF32(this.bytes!, dtype)));
    return out;
  }
}

function convertToF32(b: Uint8Array, dtype: StorageDType): Float32Array {
  if (dtype === 'f32') {
    const aligned = alignedTo(b, 4);
    return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 2);
  }
  if (dtype === 'f64') {
    const aligned = alignedTo(b, 8);
    return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 3));
  }
  const aligned = alignedTo(b, 2);
  const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 1);
  if (dtype === 'f16') return Float32Array.from(u16, halfToFloat);
  const u32 = new Uint32Array(u16.length);
  for (let i = 0; i < u16.length; i++) u32[i] = u16[i] << 16; // bf16 is the top half of an f32
  return new Float32Array(u32.buffer);
}

/** The bytes themselves if they start on an `align`-byte boundary, else an aligned copy (typed views need it). */
const alignedTo = (b: Uint8Array, align: number) => (b.byteOffset % align === 0 ? b : new Uint8Array(b));

/** A tensor as the pickle describes it: a strided view into a storage. */
class TensorRef {
  constructor(readonly storage: Storage, readonly offset: number, readonly shape: number[], readonly stride: number[],
    readonly dtype: StorageDType) {}
}

function intList(v: unknown, what: string, where: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => typeof d === 'number' && Number.isInteger(d))) {
    throw new Error(`${where}: ${what} is not a tuple of ints (${describe(v)})`);
  }
  return v as number[];
}

/** The pickle hooks shared by both containers; `storageFor` makes the Storage of a persistent id. */
function torchHooks(where: string, storageFor: (pid: unknown[]) => Storage): PickleHooks {
  const storages = new Map<string, Storage>(); // shared storages (tied weights) appear once per tensor
  const rebuild = (dtypeArgIndex: number | null) => (args: unknown[]) => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof Storage)) throw new Error(`${where}: a tensor's storage is ${describe(storage)}`);
    if (typeof offset !== 'number') throw new Error(`${where}: a tensor's storage offset is ${describe(offset)}`);
    const dtypeArg = dtypeArgIndex === null ? null : args[dtypeArgIndex];
    if (dtypeArg !== null && !(dtypeArg instanceof TorchDType)) throw new Error(`${where}: _rebuild_tensor_v3 dtype is ${describe(dtypeArg)}`);
    const shape = intList(size, 'a tensor size', where);
    return new TensorRef(storage, offset, shape, intList(stride, 'a tensor stride', where), dtypeArg?.dtype ?? storage.dtype);
  };
  const globals: Record<string, unknown> = {
    'collections.OrderedDict': (args: unknown[]) => new Map(Array.isArray(args[0]) ? (args[0] as [unknown, unknown][]) : []),
    'torch._utils._rebuild_tensor': rebuild(null),
    'torch._utils._rebuild_tensor_v2': rebuild(null),
    'torch._utils._rebuild_tensor_v3': rebuild(6),
    // nn.Parameter(data, requires_grad, hooks[, state]): the data is the tensor
    'torch._utils._rebuild_parameter': (args: unknown[]) => args[0],
    'torch._utils._rebuild_parameter_with_state': (args: unknown[]) => args[0],
    // Python 3 pickles bytes at protocol 2 as _codecs.encode(latin1 text, 'latin1')
    '_codecs.encode': (args: unknown[]) => Uint8Array.from(String(args[0]), (c) => c.charCodeAt(0)),
  };
  return {
    findClass(module, name) {
      const qualified = `${module}.${name}`;
      if (qualified in globals) return globals[qualified];
      if ((module === 'torch' || module === 'torch.storage') && name in STORAGE_CLASSES) return new StorageClass(STORAGE_CLASSES[name]);
      if (module === 'torch' && name in TORCH_DTYPES) return new TorchDType(TORCH_DTYPES[name]);
      throw new Error(`${where}: the pickle refers to ${qualified}, which this reader does not load ` +
        '(it reads state dicts saved with torch.save(model.state_dict()), not whole models or other objects)');
    },
    persistentLoad(pid) {
      if (!Array.isArray(pid) || pid[0] !== 'storage') throw new Error(`${where}: unsupported persistent id ${describe(pid)}`);
      const key = String(pid[2]);
      let s = storages.get(key);
      if (!s) storages.set(key, (s = storageFor(pid)));
      return s;
    },
  };
}

function storageClassOf(pid: unknown[], where: string): StorageDType {
  const cls = pid[1];
  if (!(cls instanceof StorageClass)) throw new Error(`${where}: storage ${String(pid[2])} has type ${describe(cls)}`);
  return cls.dtype;
}

// ---- zip container ----

interface ZipEntry {
  method: number;
  compressedSize: number;
  size: number;
  localHeader: number;
}

/** The central directory of a zip file (zip64 sizes and offsets included). */
function zipEntries(buf: Buffer, where: string): Map<string, ZipEntry> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${where}: not a zip file (no end-of-central-directory record)`);
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || buf.readUInt32LE(locator) !== 0x07064b50) throw new Error(`${where}: zip64 locator missing`);
    const z64 = Number(buf.readBigUInt64LE(locator + 8));
    if (buf.readUInt32LE(z64) !== 0x06064b50) throw new Error(`${where}: zip64 end record missing`);
    count = Number(buf.readBigUInt64LE(z64 + 32));
    cdOffset = Number(buf.readBigUInt64LE(z64 + 48));
  }
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${where}: corrupt zip central directory at byte ${p}`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const entry: ZipEntry = { method: buf.readUInt16LE(p + 10), compressedSize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24), localHeader: buf.readUInt32LE(p + 42) };
    // zip64 extra field: the 8-byte values of whichever 32-bit fields are saturated, in this order
    for (let e = p + 46 + nameLen; e < p + 46 + nameLen + extraLen; e += 4 + buf.readUInt16LE(e + 2)) {
      if (buf.readUInt16LE(e) !== 0x0001) continue;
      let q = e + 4;
      for (const field of ['size', 'compressedSize', 'localHeader'] as const) {
        if (entry[field] === 0xffffffff) {
          entry[field] = Number(buf.readBigUInt64LE(q));
          q += 8;
        }
      }
    }
    entries.set(buf.toString('utf8', p + 46, p + 46 + nameLen), entry);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

function zipRead(buf: Buffer, name: string, entry: ZipEntry, where: string): Uint8Array {
  const h = entry.localHeader;
  if (buf.readUInt32LE(h) !== 0x04034b50) throw new Error(`${where}: corrupt zip local header for ${name}`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  const raw = buf.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method === 8) return zlib.inflateRawSync(raw);
  throw new Error(`${where}: zip entry ${name} uses compression method ${entry.method} (only stored and deflate are supported)`);
}

function readZipCheckpoint(buf: Buffer, where: string): unknown {
  const entries = zipEntries(buf, where);
  const pklName = [...entries.keys()].find((n) => /^([^/]+\/)?data\.pkl$/.test(n));
  if (!pklName) throw new Error(`${where}: a zip file without <archive>/data.pkl is not a torch.save checkpoint`);
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const read = (name: string) => {
    const entry = entries.get(prefix + name);
    return entry ? zipRead(buf, prefix + name, entry, where) : null;
  };
  const byteorder = read('byteorder');
  const bigEndian = byteorder !== null && Buffer.from(byteorder).toString('latin1').trim() === 'big';
  const hooks = torchHooks(where, (pid) => {
    const s = new Storage(String(pid[2]), storageClassOf(pid, where));
    const bytes = read(`data/${s.key}`);
    if (!bytes) throw new Error(`${where}: storage data/${s.key} is missing from the archive`);
    s.bytes = bigEndian ? byteSwapped(bytes, ELEMENT_BYTES[s.dtype]) : bytes;
    return s;
  });
  return unpickle(read('data.pkl')!, 0, hooks, `${where} (${pklName})`).value;
}

function byteSwapped(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  return out;
}

// ---- legacy container ----

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function readLegacyCheckpoint(buf: Buffer, where: string): unknown {
  const plain: PickleHooks = {
    findClass: (m, n) => {
      throw new Error(`${where}: unexpected global ${m}.${n} in the legacy header`);
    },
    persistentLoad: () => {
      throw new Error(`${where}: unexpected persistent id in the legacy header`);
    },
  };
  const magic = unpickle(buf, 0, plain, where);
  if (magic.value !== LEGACY_MAGIC) throw new Error(`${where}: not a torch checkpoint (neither a zip file nor the legacy magic number)`);
  const protocol = unpickle(buf, magic.end, plain, where);
  if (protocol.value !== 1001) throw new Error(`${where}: legacy torch protocol ${String(protocol.value)} (expected 1001)`);
  const sysInfo = unpickle(buf, protocol.end, plain, where);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new Error(`${where}: big-endian legacy checkpoints are not supported`);
  }
  const storages = new Map<string, Storage>();
  const hooks = torchHooks(where, (pid) => {
    // legacy ids: ('storage', type, root_key, location, numel, view_metadata)
    if (pid[5] !== null && pid[5] !== undefined) throw new Error(`${where}: legacy storage views are not supported`);
    const s = new Storage(String(pid[2]), storageClassOf(pid, where));
    storages.set(s.key, s);
    return s;
  });
  const object = unpickle(buf, sysInfo.end, hooks, where);
  const keys = unpickle(buf, object.end, plain, where);
  if (!Array.isArray(keys.value)) throw new Error(`${where}: the legacy storage key list is missing`);
  let pos = keys.end;
  for (const key of keys.value as unknown[]) {
    const s = storages.get(String(key));
    if (!s) throw new Error(`${where}: storage ${String(key)} is listed but never used`);
    if (pos + 8 > buf.length) throw new Error(`${where}: truncated at storage ${s.key}`);
    const numel = Number(buf.readBigInt64LE(pos));
    const end = pos + 8 + numel * ELEMENT_BYTES[s.dtype];
    if (end > buf.length) throw new Error(`${where}: truncated at storage ${s.key}`);
    s.bytes = buf.subarray(pos + 8, end);
    pos = end;
  }
  return object.value;
}

// ---- tensors and state dicts ----

/** Copies a strided view out of its storage, row-major, as f32. */
function materialise(t: TensorRef, name: string, where: string): Float32Array {
  if (!['f32', 'f16', 'bf16', 'f64'].includes(t.dtype)) {
    throw new Error(`${where}: tensor ${name} is ${t.dtype}; a MiniMind state dict holds floating-point tensors only`);
  }
  const src = t.storage.f32(t.dtype);
  const { shape, stride, offset } = t;
  if (stride.length !== shape.length) throw new Error(`${where}: tensor ${name} has ${shape.length} sizes but ${stride.length} strides`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel === 0) return new Float32Array(0);
  let last = offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  if (offset < 0 || last >= src.length || stride.some((s) => s < 0)) {
    throw new Error(`${where}: tensor ${name} [${shape}] (offset ${offset}, stride [${stride}]) reaches past its storage of ${src.length} elements`);
  }
  let contiguous = true;
  let rowMajorStride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== rowMajorStride) contiguous = false;
    rowMajorStride *= shape[d];
  }
  if (contiguous) return src.slice(offset, offset + numel);
  // Odometer over the index tuple; `at` tracks the storage position.
  const out = new Float32Array(numel);
  const index = new Array<number>(shape.length).fill(0);
  let at = offset;
  for (let i = 0; i < numel; i++) {
    out[i] = src[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) {
        at += stride[d];
        break;
      }
      at -= (shape[d] - 1) * stride[d];
      index[d] = 0;
    }
  }
  return out;
}

/** Reads any torch.save file whose object is built from dicts, lists and tensors; tensors stay unmaterialised. */
function readTorchObject(file: string): unknown {
  const buf = fs.readFileSync(file);
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50) return readZipCheckpoint(buf, file);
  if (buf.length > 262 && buf.toString('latin1', 257, 262) === 'ustar') {
    throw new Error(`${file}: tar-format torch checkpoints (torch < 0.4) are not supported`);
  }
  if (buf[0] === 0x80) return readLegacyCheckpoint(buf, file);
  throw new Error(`${file}: not a torch checkpoint (neither a zip archive nor a pickle)`);
}

const isTensorMap = (v: unknown): v is Map<unknown, TensorRef> =>
  v instanceof Map && v.size > 0 && [...v.values()].every((t) => t instanceof TensorRef);

/**
 * Reads the state dict of a torch.save file as name → f32 tensor. Accepts a bare state dict or a training
 * checkpoint dict holding one under "model"/"state_dict"/"model_state_dict". As the upstream scripts do, a
 * torch.compile `_orig_mod.` prefix is stripped and keys containing "mask" (old causal-mask buffers) are dropped.
 */
export function readTorchStateDict(file: string): StateDict {
  const top = readTorchObject(file);
  let tensors: Map<unknown, TensorRef> | null = isTensorMap(top) ? top : null;
  if (!tensors && top instanceof Map) {
    for (const key of ['model', 'state_dict', 'model_state_dict']) {
      const inner = top.get(key);
      if (isTensorMap(inner)) tensors = inner;
    }
  }
  if (!tensors) {
    const keys = top instanceof Map ? ` (top-level keys: ${[...top.keys()].slice(0, 10).map(String).join(', ')})` : '';
    throw new Error(`${file}: holds a ${describe(top)}, not a state dict of tensors${keys}`);
  }
  const out: StateDict = new Map();
  for (const [rawKey, ref] of tensors) {
    let name = String(rawKey);
    while (name.startsWith('_orig_mod.')) name = name.slice('_orig_mod.'.length);
    if (name.includes('mask')) continue;
    out.set(name, { shape: [...ref.shape], data: materialise(ref, name, file) });
  }
  return out;
}
