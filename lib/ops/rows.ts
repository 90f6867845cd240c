// Row slicing and concatenation with autograd, for MoE (each expert runs on its slice of the expert-sorted
// rows) and for inference (only the last position goes through the output head).
//   sliceRows(x [N, C], start, count) -> [count, C]   a view
//   concatRows(parts [n_i, C]...)     -> [Σn_i, C]    a copy
//   lastRow(x [B, T, C])              -> [B, 1, C]    a copy
// Outputs keep their input's dtype (f32 on the CPU, bf16 activations on cuda), and so do the gradients.
import { needsGrad, record } from '../autograd/tape';
import { Device } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { accumulate } from './elementwise';
import { gradBuffer } from './grad-target';

export function sliceRows(x: Tensor, start: number, count: number): Tensor {
  const out = x.narrowView(start, count);
  if (needsGrad(x)) record(out, () => accumulate(gradBuffer(x).narrowView(start, count), out.grad!));
  return out;
}

/** Concatenates [n_i, C] tensors along rows into [rows, C]; `rows` must equal Σ n_i. */
export function concatRows(parts: Tensor[], rows: number, C: number, device: Device): Tensor {
  const total = parts.reduce((s, p) => s + p.shape[0], 0);
  if (total !== rows) throw new Error(`concatRows: parts hold ${total} rows, expected ${rows}`);
  const out = Tensor.empty([rows, C], parts.length ? parts[0].dtype : 'f32', device, false);
  const starts: number[] = [];
  let at = 0;
  for (const p of parts) {
    starts.push(at);
    out.narrowView(at, p.shape[0]).copyFrom(p.reshapeView([p.shape[0], C]));
    at += p.shape[0];
  }
  if (needsGrad(...parts)) {
    record(out, () => {
      parts.forEach((p, i) => {
        if (p.requiresGrad) accumulate(gradBuffer(p), out.grad!.narrowView(starts[i], p.shape[0]));
      });
    });
  }
  return out;
}

export function lastRow(x: Tensor): Tensor {
  const [B, T, C] = x.shape;
  const out = Tensor.empty([B, 1, C], x.dtype, x.device, false);
  const rows = x.reshapeView([B * T, C]);
  const outRows = out.reshapeView([B, C]);
  for (let b = 0; b < B; b++) outRows.narrowView(b, 1).copyFrom(rows.narrowView(b * T + T - 1, 1));
  if (needsGrad(x)) {
    record(out, () => {
      const g = gradBuffer(x).reshapeView([B * T, C]);
      const go = out.grad!.reshapeView([B, C]);
      for (let b = 0; b < B; b++) accumulate(g.narrowView(b * T + T - 1, 1), go.narrowView(b, 1));
    });
  }
  return out;
}
