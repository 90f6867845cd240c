// Reading torch.save checkpoints: files made by the test writer (zip and legacy containers, shared storages,
// offset views, transposed tensors, f16/bf16/f64 storages, the v3 untyped-storage form), by CPython's own pickler
// with a stub torch module (when python3 exists), and by real torch (when it is installed; skipped otherwise).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTorchStateDict } from '../lib/io/pytorch';
import { FakeStorage, FakeTensor, storageBytes, StorageClass, torchSaveLegacy, torchSaveZip, zipArchive } from './io-torchwriter';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-pytorch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Values that f16 and bf16 hold exactly: multiples of 1/8 in [-16, 16). */
const exactValues = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => (((i * 37 + seed * 11) % 256) - 128) / 8);

function storage(key: string, cls: StorageClass, values: Float32Array): FakeStorage {
  return { key, cls, numel: values.length, bytes: storageBytes(cls, values) };
}

/** A state dict exercising every layout, with the row-major values the reader must produce. */
function sampleStateDict() {
  const embed = exactValues(6 * 4, 1);
  const big = exactValues(40, 2); // wq is a [4, 4] view at offset 5 into this storage
  const wkT = exactValues(3 * 4, 3); // stored as [4, 3] row-major; wk is its transpose [3, 4], stride [1, 3]
  const half = exactValues(8, 4);
  const bf = exactValues(6, 5);
  const dbl = exactValues(4, 6);
  const sEmbed = storage('0', 'FloatStorage', embed);
  const entries: [string, FakeTensor][] = [
    ['_orig_mod.tok_embeddings.weight', { storage: sEmbed, offset: 0, shape: [6, 4], stride: [4, 1] }],
    ['layers.0.attention.wq.weight', { storage: storage('1', 'FloatStorage', big), offset: 5, shape: [4, 4], stride: [4, 1] }],
    ['layers.0.attention.wk.weight', { storage: storage('2', 'FloatStorage', wkT), offset: 0, shape: [3, 4], stride: [1, 3] }],
    ['layers.0.attention.mask', { storage: storage('3', 'FloatStorage', new Float32Array(4)), offset: 0, shape: [2, 2], stride: [2, 1] }],
    ['layers.0.ffn_norm.weight', { storage: storage('4', 'HalfStorage', half), offset: 0, shape: [8], stride: [1] }],
    ['layers.0.attention_norm.weight', { storage: storage('5', 'BFloat16Storage', bf), offset: 0, shape: [2, 3], stride: [3, 1] }],
    ['norm.weight', { storage: storage('6', 'DoubleStorage', dbl), offset: 0, shape: [4], stride: [1] }],
    ['output.weight', { storage: sEmbed, offset: 0, shape: [6, 4], stride: [4, 1] }],
  ];
  const transposed = new Float32Array(12);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) transposed[r * 4 + c] = wkT[c * 3 + r];
  const expected = new Map<string, { shape: number[]; data: Float32Array }>([
    ['tok_embeddings.weight', { shape: [6, 4], data: embed }],
    ['layers.0.attention.wq.weight', { shape: [4, 4], data: big.slice(5, 21) }],
    ['layers.0.attention.wk.weight', { shape: [3, 4], data: transposed }],
    ['layers.0.ffn_norm.weight', { shape: [8], data: half }],
    ['layers.0.attention_norm.weight', { shape: [2, 3], data: bf }],
    ['norm.weight', { shape: [4], data: dbl }],
    ['output.weight', { shape: [6, 4], data: embed }],
  ]);
  return { entries, expected };
}

function expectStateDict(file: string, expected: Map<string, { shape: number[]; data: Float32Array }>) {
  const got = readTorchStateDict(file);
  expect([...got.keys()]).toEqual([...expected.keys()]);
  for (const [name, t] of expected) {
    expect(got.get(name)!.shape).toEqual(t.shape);
    expect(Array.from(got.get(name)!.data)).toEqual(Array.from(t.data));
  }
}

function save(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, bytes);
  return file;
}

describe('readTorchStateDict', () => {
  const { entries, expected } = sampleStateDict();

  test('zip archive (stored): shared storage, offset view, transposed, f16/bf16/f64, _orig_mod. stripped, mask dropped', () => {
    expectStateDict(save('zip.pth', torchSaveZip(entries, { metadata: true })), expected);
  });

  test('zip archive with deflated entries and another archive name', () => {
    expectStateDict(save('pretrain_512.pth', torchSaveZip(entries, { archive: 'pretrain_512', deflate: true })), expected);
  });

  test('v3 form: UntypedStorage persistent ids with the dtype as a rebuild argument', () => {
    expectStateDict(save('v3.pth', torchSaveZip(entries, { untyped: true })), expected);
  });

  test('legacy (pre-1.6) format', () => {
    expectStateDict(save('legacy.pth', torchSaveLegacy(entries, { metadata: true })), expected);
  });

  test('a training checkpoint holding the state dict under "model"', () => {
    expectStateDict(save('checkpoint.pth', torchSaveZip(entries, { wrap: true })), expected);
  });

  test('errors name the file and the unsupported global or opcode', () => {
    const pkl = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('cmodel\nTransformer\n', 'latin1'), Buffer.from([0x2e])]);
    const file = save('model.pth', zipArchive([['archive/data.pkl', pkl], ['archive/version', Buffer.from('3\n')]]));
    expect(() => readTorchStateDict(file)).toThrow(/model\.pth.*model\.Transformer/);
    const bad = save('bad.pth', zipArchive([['archive/data.pkl', Buffer.from([0x80, 2, 0x69, 0x2e])]]));
    expect(() => readTorchStateDict(bad)).toThrow(/bad\.pth.*unsupported opcode 0x69 \(INST\)/);
    expect(() => readTorchStateDict(save('text.pth', Buffer.from('hello')))).toThrow(/text\.pth: not a torch checkpoint/);
  });
});

const python = spawnSync('python3', ['-c', 'import pickle, zipfile'], { encoding: 'utf8' }).status === 0;
// Real torch: Debian's python3-torch (.ci/run installs it) lives in the system interpreter, which a pyenv
// `python3` on PATH does not see, so look for torch in both.
const torchPython = ['python3', '/usr/bin/python3'].find((py) =>
  spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);

// CPython's pickler with classes named like torch's: an independent producer of the same opcode stream.
const STUB_TORCH_SCRIPT = String.raw`
import sys, types, pickle, collections, zipfile, struct, json
torch = types.ModuleType('torch'); utils = types.ModuleType('torch._utils')
sys.modules['torch'] = torch; sys.modules['torch._utils'] = utils; torch._utils = utils
def named(cls, module):
    cls.__module__ = module; setattr(sys.modules[module], cls.__name__, cls); return cls
class FloatStorage: pass
class HalfStorage: pass
named(FloatStorage, 'torch'); named(HalfStorage, 'torch')
def _rebuild_tensor_v2(*args): pass
_rebuild_tensor_v2.__module__ = 'torch._utils'; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class Storage:
    def __init__(self, key, cls, fmt, values): self.key, self.cls, self.numel = key, cls, len(values); self.data = struct.pack('<%d%s' % (len(values), fmt), *values)
class Tensor:
    def __init__(self, storage, offset, size, stride): self.args = (storage, offset, size, stride)
    def __reduce_ex__(self, proto): return (_rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))
emb = Storage('0', FloatStorage, 'f', [i / 4 for i in range(300)])
half = Storage('1', HalfStorage, 'e', [i / 8 - 2 for i in range(12)])
sd = collections.OrderedDict()
for i in range(300):  # over 255 memo entries: LONG_BINPUT/LONG_BINGET, and SETITEMS batches
    sd['layers.%d.w' % i] = Tensor(emb, i, (1,), (1,))
sd['tok_embeddings.weight'] = Tensor(emb, 0, (30, 10), (10, 1))
sd['t.weight'] = Tensor(emb, 0, (10, 30), (1, 10))
sd['h.weight'] = Tensor(half, 2, (2, 5), (5, 1))
sd._metadata = collections.OrderedDict([('', {'version': 1})])
storages = {}
def persistent_id(obj):
    if isinstance(obj, Storage):
        storages[obj.key] = obj
        return ('storage', obj.cls, obj.key, 'cpu', obj.numel) + ((None,) if legacy else ())
legacy = sys.argv[2] == 'legacy'
class P(pickle.Pickler):
    def persistent_id(self, obj): return persistent_id(obj)
import io
buf = io.BytesIO(); P(buf, protocol=2).dump(sd)
if legacy:
    with open(sys.argv[1], 'wb') as f:
        for v in (0x1950a86a20f9469cfc6c, 1001, {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}):
            pickle.dump(v, f, protocol=2)
        f.write(buf.getvalue())
        keys = sorted(storages); pickle.dump(keys, f, protocol=2)
        for k in keys: f.write(struct.pack('<q', storages[k].numel)); f.write(storages[k].data)
else:
    with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:
        z.writestr('stub/data.pkl', buf.getvalue()); z.writestr('stub/byteorder', 'little')
        for k in sorted(storages): z.writestr('stub/data/' + k, storages[k].data)
        z.writestr('stub/version', '3\n')
`;

function expectStubFile(file: string) {
  const got = readTorchStateDict(file);
  expect(got.size).toBe(303);
  for (let i = 0; i < 300; i++) expect(Array.from(got.get(`layers.${i}.w`)!.data)).toEqual([i / 4]);
  const emb = Array.from({ length: 300 }, (_, i) => i / 4);
  expect(Array.from(got.get('tok_embeddings.weight')!.data)).toEqual(emb);
  const t = got.get('t.weight')!;
  expect(t.shape).toEqual([10, 30]);
  for (let r = 0; r < 10; r++) for (let c = 0; c < 30; c++) expect(t.data[r * 30 + c]).toBe(emb[c * 10 + r]);
  expect(Array.from(got.get('h.weight')!.data)).toEqual(Array.from({ length: 10 }, (_, i) => (i + 2) / 8 - 2));
}

test('CPython pickler with a stub torch module: zip and legacy files (needs python3)', () => {
  if (!python) throw new Error('python3 with pickle and zipfile is needed');
  for (const kind of ['zip', 'legacy']) {
    const file = path.join(tmp, `stub-${kind}.pth`);
    const r = spawnSync('python3', ['-c', STUB_TORCH_SCRIPT, file, kind], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expectStubFile(file);
  }
});

// Real torch.save output, from PyTorch itself.
test('real torch.save files, zip and legacy (needs torch: apt-get install python3-torch)', () => {
  if (!torchPython) throw new Error('no python with torch found (apt-get install python3-torch; .ci/run does)');
  const script = String.raw`
import sys, torch, json
torch.manual_seed(0)
emb = torch.randn(6, 4)
sd = {'tok_embeddings.weight': emb, 'output.weight': emb, 'wq': torch.randn(8, 4)[2:6], 'wk': torch.randn(4, 3).t(),
      'h': torch.randn(5).half(), 'b': torch.randn(2, 3).bfloat16()}
for legacy in (False, True):
    torch.save(sd, sys.argv[1] + ('.legacy' if legacy else '.zip'), _use_new_zipfile_serialization=not legacy)
print(json.dumps({k: {'shape': list(v.shape), 'data': v.float().flatten().tolist()} for k, v in sd.items()}))
`;
  const base = path.join(tmp, 'real');
  const r = spawnSync(torchPython, ['-c', script, base], { encoding: 'utf8' });
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.status).toBe(0);
  const want = JSON.parse(r.stdout) as Record<string, { shape: number[]; data: number[] }>;
  for (const file of [`${base}.zip`, `${base}.legacy`]) {
    const got = readTorchStateDict(file);
    for (const [name, t] of Object.entries(want)) {
      expect(got.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(got.get(name)!.data)).toEqual(t.data.map((v) => Math.fround(v)));
    }
  }
});
