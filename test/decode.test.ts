// Decoding: the decode attention kernel (native/cpu/attention_decode.cc) against a float64 reference and the
// training (flash) kernel; half-precision weights (bf16, f16) in linear and embedding against a float64
// reference of the widened weights; greedy decoding of a tiny model with half weights against f32 weights;
// and the CLI's --dtype flags.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { noGrad } from '../lib/autograd/tape';
import { generate, PREFILL_CHUNK } from '../lib/infer/generate';
import { loadModelFolder, saveModelFolder } from '../lib/io/model-folder';
import { resolveConfig } from '../lib/nn/config';
import { initWeights } from '../lib/nn/init';
import { MiniMind } from '../lib/nn/model';
import { native } from '../lib/native';
import { attention, VectorIsa } from '../lib/ops/attention';
import { embedding } from '../lib/ops/embedding';
import { linear } from '../lib/ops/gemm';
import { resetStepArenas } from '../lib/tensor/memory';
import { bf16ToF32, f32ToBf16 } from '../lib/tensor/dtype';
import { Tensor } from '../lib/tensor/tensor';
import { WeightWriter } from '../lib/infer/weights';
import { halfToFloat } from '../lib/io/safetensors';
import { expectClose, randn } from './helpers';

afterEach(() => resetStepArenas());

// ---- decode attention ------------------------------------------------------------------------------------

interface Case { B: number; T: number; Tk: number; NH: number; NKV: number; HD: number; causal: boolean }

/** softmax(q kᵀ / √HD + causal mask) v in float64, q [B, T, NH, HD], k/v [B, Tk, NKV, HD]. */
function refAttention(c: Case, q: Float32Array, k: Float32Array, v: Float32Array): Float64Array {
  const { B, T, Tk, NH, NKV, HD } = c;
  const out = new Float64Array(B * T * NH * HD);
  const p = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++) {
        const end = c.causal ? Tk - T + i + 1 : Tk;
        const qo = ((b * T + i) * NH + h) * HD;
        let max = -Infinity;
        for (let j = 0; j < end; j++) {
          let s = 0;
          for (let d = 0; d < HD; d++) s += q[qo + d] * k[((b * Tk + j) * NKV + g) * HD + d];
          p[j] = s / Math.sqrt(HD);
          max = Math.max(max, p[j]);
        }
        let sum = 0;
        for (let j = 0; j < end; j++) sum += p[j] = Math.exp(p[j] - max);
        for (let j = 0; j < end; j++) {
          for (let d = 0; d < HD; d++) out[qo + d] += (p[j] / sum) * v[((b * Tk + j) * NKV + g) * HD + d];
        }
      }
    }
  return out;
}

const isas: VectorIsa[] = ['portable', ...(native.cpu.cpuInfo().avx512f ? ['avx512' as VectorIsa] : [])];

describe('decode attention vs float64 reference and the flash kernel', () => {
  // GQA groups 1, 2 and 4 with head dims 32, 48 and 64 (each pair meets every head dim); cache lengths from
  // 1 to 600; one to four queries; batch 1 and 2; causal and not.
  const cases: Case[] = [];
  let n = 0;
  for (const [NH, NKV] of [[2, 2], [4, 2], [8, 2]])
    for (const Tk of [1, 2, 17, 65, 300, 600]) {
      const T = Math.min(Tk, 1 + (n % 4));
      cases.push({ B: 1 + (n % 2), T, Tk, NH, NKV, HD: [32, 48, 64][n % 3], causal: n % 5 !== 4 });
      n++;
    }

  test.each(isas)('every shape, %s', (isa) => {
    cases.forEach((c, i) => {
      const q = randn(c.B * c.T * c.NH * c.HD, 1 + i, 0.8);
      const k = randn(c.B * c.Tk * c.NKV * c.HD, 100 + i, 0.8);
      const v = randn(c.B * c.Tk * c.NKV * c.HD, 200 + i);
      const [tq, tk, tv] = [Tensor.from(q, [c.B, c.T, c.NH, c.HD]), Tensor.from(k, [c.B, c.Tk, c.NKV, c.HD]),
        Tensor.from(v, [c.B, c.Tk, c.NKV, c.HD])];
      const decoded = attention(tq, tk, tv, { causal: c.causal, isa, decode: true }).toArray();
      const flash = attention(tq, tk, tv, { causal: c.causal, isa, decode: false }).toArray();
      expectClose(decoded, refAttention(c, q, k, v), 2e-5, 2e-4, `decode ${isa} ${JSON.stringify(c)}`);
      expectClose(decoded, flash, 2e-5, 2e-4, `decode vs flash ${isa} ${JSON.stringify(c)}`);
      resetStepArenas();
    });
  });

  test('a single query is the decode kernel by default, and does not depend on the thread count', () => {
    const c: Case = { B: 1, T: 1, Tk: 333, NH: 16, NKV: 8, HD: 32, causal: true };
    const q = Tensor.from(randn(c.NH * c.HD, 7), [1, 1, c.NH, c.HD]);
    const k = Tensor.from(randn(c.Tk * c.NKV * c.HD, 8), [1, c.Tk, c.NKV, c.HD]);
    const v = Tensor.from(randn(c.Tk * c.NKV * c.HD, 9), [1, c.Tk, c.NKV, c.HD]);
    const threads = native.cpu.threads();
    const byDefault = attention(q, k, v).toArray();
    native.cpu.setThreads(1);
    try {
      expect(attention(q, k, v, { decode: true }).toArray()).toEqual(byDefault);
    } finally {
      native.cpu.setThreads(threads);
    }
  });
});

// ---- half-precision weights ------------------------------------------------------------------------------

/** f32 -> f16 bits, round to nearest even, in float64: the nearest of the two neighbouring f16 values. */
function f32ToF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
    const a = Math.abs(v);
    if (Number.isNaN(v)) out[i] = 0x7e00;
    else if (a >= 65520) out[i] = sign | 0x7c00;
    else {
      const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a)); // exponent of a's binade (subnormals: -14)
      const ulp = 2 ** (e - 10);
      let m = a / ulp; // mantissa in ulps, [0, 2048)
      const r = Math.round(m);
      m = Math.abs(m - Math.trunc(m) - 0.5) < 1e-12 && r % 2 === 1 ? r - 1 : r; // ties to even
      const bits = e === -14 && a < 2 ** -14 ? m : ((e + 15) << 10) + (m - 1024);
      out[i] = sign | bits; // a carry of m into 2048 lands on the next exponent, as the bits add up
    }
  }
  return out;
}

const f16ToF32 = (h: Uint16Array) => Float32Array.from(h, halfToFloat);

/** The native rounding (lib/infer/weights.ts WeightWriter, as model loading uses it). */
function narrowNative(x: Float32Array, dtype: 'bf16' | 'f16'): Uint16Array {
  const t = Tensor.persistent([x.length], dtype);
  const writer = new WeightWriter();
  try {
    writer.write(t, 0, x);
    return t.toArray() as Uint16Array;
  } finally {
    writer.dispose();
    t.dispose();
  }
}

const halfTypes = [
  { dtype: 'bf16' as const, narrow: f32ToBf16, widen: bf16ToF32 },
  { dtype: 'f16' as const, narrow: f32ToF16, widen: f16ToF32 },
];

describe.each(halfTypes)('$dtype weights', ({ dtype, narrow, widen }) => {
  test('loading rounds to nearest even as the reference; widening is exact', () => {
    const special = [0, -0, 1, -2.5, 65504, 65519, 65520, -1e6, 1e-7, 6e-8, 2 ** -24 * 1.5, 2 ** -14, 3.14159,
      -1e-3, 0.1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity, -Infinity];
    const x = Float32Array.from([...special, ...randn(1000, 5, 3), ...randn(1000, 6, 1e-5)]);
    expect(Array.from(narrowNative(x, dtype))).toEqual(Array.from(narrow(x)));
    const back = widen(narrow(x));
    expect(Array.from(narrow(back))).toEqual(Array.from(narrow(x))); // representable values come back unchanged
    expect(Number.isNaN(widen(narrowNative(Float32Array.from([NaN]), dtype))[0])).toBe(true);
  });

  // [M, N, K]: one to four rows (the matrix-vector kernel, every row-block remainder), odd K (the scalar tail),
  // and M > 4 (blocks widened to f32 for the GEMM, past one 512-row block).
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 7, 3], [2, 9, 17], [3, 5, 33], [4, 13, 64],
    [1, 64, 512], [4, 30, 100], [5, 3, 16], [9, 600, 40], [33, 70, 130]];
  test.each(['auto', 'avx2', 'portable'])('linear vs float64 reference of the widened weights, gemm path %s', (isa) => {
    const supported = (() => {
      try {
        native.cpu.gemmIsa(isa);
        return true;
      } catch {
        return false;
      }
    })();
    try {
      if (!supported) return;
      shapes.forEach(([M, N, K], i) => {
        const x = randn(M * K, 1 + i);
        const w16 = narrow(randn(N * K, 50 + i, 0.5));
        const w = widen(w16);
        const ref = new Float64Array(M * N);
        let mag = 0;
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let kk = 0; kk < K; kk++) {
              s += x[m * K + kk] * w[n * K + kk];
              mag = Math.max(mag, Math.abs(x[m * K + kk] * w[n * K + kk]));
            }
            ref[m * N + n] = s;
          }
        const got = noGrad(() => linear(Tensor.from(x, [M, K]), Tensor.from(w16, [N, K], dtype)).toArray());
        expectClose(got, ref, 1e-6 * K * (mag + 1), 1e-5, `${dtype} ${isa} [${M}, ${N}, ${K}]`);
        resetStepArenas();
      });
    } finally {
      native.cpu.gemmIsa('auto');
    }
  });

  test('embedding rows are the widened weight rows; a bad id throws', () => {
    const w16 = narrow(randn(10 * 24, 3));
    const w = Tensor.from(w16, [10, 24], dtype);
    const ids = Tensor.from(Int32Array.from([3, 0, 9, 3]), [2, 2], 'i32');
    const got = noGrad(() => embedding(ids, w));
    expect(got.shape).toEqual([2, 2, 24]);
    const wide = widen(w16);
    const want = [3, 0, 9, 3].flatMap((id) => Array.from(wide.subarray(id * 24, id * 24 + 24)));
    expect(Array.from(got.toArray())).toEqual(want);
    expect(() => noGrad(() => embedding(Tensor.from(Int32Array.from([10]), [1], 'i32'), w))).toThrow(/outside the vocabulary/);
  });
});

// ---- a model with half weights ----------------------------------------------------------------------------

describe('a tiny model loaded with bf16 / f16 weights', () => {
  let dir: string;
  let reference: MiniMind;
  const cfg = resolveConfig({ dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 300, max_seq_len: 160, hidden_dim: 128 });
  // Longer than one prefill chunk, so the prompt runs in two.
  const prompt = Array.from({ length: PREFILL_CHUNK + 9 }, (_, i) => 3 + ((i * 37) % 290));

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-decode-'));
    reference = new MiniMind(cfg);
    initWeights(reference, 11);
    // Larger weights than the init's: sharper logits, so greedy choices have clear margins.
    for (const t of reference.parameters()) if (t.ndim === 2) t.upload((t.toArray() as Float32Array).map((v) => v * 8));
    saveModelFolder(reference, dir);
  });
  afterAll(() => {
    reference.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const lastLogits = (m: MiniMind, ids: number[]) => noGrad(() => {
    const out = m.forward(Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32'), { lastOnly: true }).toArray();
    resetStepArenas();
    return out as Float32Array;
  });
  const greedy = (m: MiniMind) => generate(m, prompt, { maxNewTokens: 12, temperature: 0 }).ids;

  test('f32 loading is exact; the cached, chunked decoder matches full recomputation', () => {
    const m = loadModelFolder(dir);
    try {
      expect(m.params.tensors.get('layers.1.feed_forward.w2.weight')!.toArray())
        .toEqual(reference.params.tensors.get('layers.1.feed_forward.w2.weight')!.toArray());
      expect(lastLogits(m, prompt)).toEqual(lastLogits(reference, prompt));
      const cached = greedy(m);
      expect(generate(m, prompt, { maxNewTokens: 12, temperature: 0, kvCache: false }).ids).toEqual(cached);
    } finally {
      m.dispose();
    }
  });

  test.each([['bf16', 3e-2], ['f16', 4e-3]] as const)('%s: weights stored at that precision, logits close to f32, same greedy tokens', (dtype, tol) => {
    const m = loadModelFolder(dir, 'cpu', dtype);
    try {
      expect(m.params.tensors.get('tok_embeddings.weight')!.dtype).toBe(dtype);
      expect(m.params.tensors.get('layers.0.attention.wq.weight')!.dtype).toBe(dtype);
      expect(m.params.tensors.get('norm.weight')!.dtype).toBe('f32');
      const want = lastLogits(reference, prompt);
      const spread = Math.max(...want) - Math.min(...want);
      expectClose(lastLogits(m, prompt), want, tol * spread, 0, `${dtype} logits`);
      // Greedy chains of a random model meet near-ties after a few tokens, where half weights may pick the
      // other token: the first tokens must agree, and the chunked, cached decode must equal recomputation.
      const tokens = greedy(m);
      expect(tokens.slice(0, 4)).toEqual(greedy(reference).slice(0, 4));
      expect(generate(m, prompt, { maxNewTokens: 12, temperature: 0, kvCache: false }).ids).toEqual(tokens);
    } finally {
      m.dispose();
    }
  });

  test('half weights refuse a gradient and a non-cpu device', () => {
    const m = loadModelFolder(dir, 'cpu', 'bf16');
    try {
      const x = Tensor.from(randn(64, 1), [1, 64]);
      x.requiresGrad = true;
      expect(() => linear(x, m.output)).toThrow(/no gradient/);
    } finally {
      m.dispose();
    }
    expect(() => loadModelFolder(dir, 'cuda', 'f16')).toThrow(/CPU-only/);
    expect(() => loadModelFolder(dir, 'cpu', 'f8' as never)).toThrow(/expected one of f32, bf16, f16/);
  });

  test('the CLI: generate --dtype matches the library; a bad --dtype is refused', () => {
    const root = path.join(__dirname, '..');
    const cli = (args: string[]) => spawnSync(process.execPath, ['-r', path.join(root, 'scripts/register-ts.js'),
      path.join(root, 'bin/cli.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
    for (const dtype of ['bf16', 'f16'] as const) {
      const r = cli(['generate', '--model', dir, '--prompt-ids', prompt.slice(0, 5).join(','), '--temperature', '0',
        '--max-new-tokens', '5', '--json', '--dtype', dtype]);
      expect(r.status).toBe(0);
      const m = loadModelFolder(dir, 'cpu', dtype);
      try {
        expect(JSON.parse(r.stdout).ids).toEqual(generate(m, prompt.slice(0, 5), { maxNewTokens: 5, temperature: 0 }).ids);
      } finally {
        m.dispose();
      }
    }
    const bad = cli(['generate', '--model', dir, '--prompt-ids', '1,2', '--dtype', 'f8']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/dtype/);
  });
});
