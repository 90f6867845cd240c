// Picks the kernel table of a tensor's device, and checks the arguments ops share.
import { KernelTable, native } from '../native';
import { Device } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';

/** The kernels of a device, typed by the op family that calls them (`kernels<GemmKernels>('cpu')`). */
export function kernels<K>(device: Device): K & KernelTable {
  const table: KernelTable = device === 'cpu' ? native.cpu : native.cuda;
  return table as K & KernelTable;
}

/** Throws unless every tensor is on the same device; returns that device. */
export function sameDevice(op: string, ...ts: Tensor[]): Device {
  const d = ts[0].device;
  for (const t of ts) {
    if (t.device !== d) throw new Error(`${op}: tensors on different devices (${ts.map((x) => x.device).join(', ')})`);
  }
  return d;
}

export function assertShape(op: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: expected ${t.name || 'tensor'} of shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

export function assertDtype(op: string, t: Tensor, dtype: string): void {
  if (t.dtype !== dtype) throw new Error(`${op}: expected ${dtype}, got ${t.describe()}`);
}
