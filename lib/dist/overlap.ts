// Averaging gradients over the ranks while the backward pass is still running, as torch's DDP does with its
// gradient buckets. The model marks where each layer starts in the forward pass (MiniMind.layerBackwardHook);
// the backward pass reaches that mark after every op of the layer has back-propagated, so the gradients of the
// layer's parameters are complete there, and their all-reduce starts in the background (Dist.allReduceMeanStart)
// while the layers below are back-propagated. The rest (embedding, which the tied output also uses, and the
// final norm) goes last, and finish() waits for everything before the optimizer reads the gradients.
// Every rank starts the same groups in the same order (last layer first), as collectives require.
import { gradOf } from '../autograd/tape';
import type { LayerBackwardHook, MiniMind } from '../nn/model';
import type { Tensor } from '../tensor/tensor';
import type { Dist } from './index';

/** The layer a parameter belongs to, from its state_dict name (`layers.3.attention.wq.weight` → 3). */
function layerOf(param: Tensor): number | null {
  const m = /^layers\.(\d+)\./.exec(param.name);
  return m ? Number(m[1]) : null;
}

export class GradientOverlap implements LayerBackwardHook {
  private readonly byLayer = new Map<number, Tensor[]>();
  private readonly rest: Tensor[] = [];
  /** Per layer: marks recorded in this step's forward passes that backward has not reached yet. */
  private readonly marks = new Map<number, number>();
  private readonly started = new Set<number>();

  constructor(private readonly dist: Dist, params: Tensor[]) {
    for (const p of params) {
      const layer = layerOf(p);
      if (layer === null) this.rest.push(p);
      else {
        if (!this.byLayer.has(layer)) this.byLayer.set(layer, []);
        this.byLayer.get(layer)!.push(p);
      }
    }
  }

  /** Averages the gradients of the next forward + backward passes on `model` (a step's last micro-batch). */
  arm(model: MiniMind): void {
    model.layerBackwardHook = this;
  }

  recorded(layer: number): void {
    this.marks.set(layer, (this.marks.get(layer) ?? 0) + 1);
  }

  reached(layer: number): void {
    const left = this.marks.get(layer)! - 1;
    this.marks.set(layer, left);
    // A layer used by several forward passes (DPO's chosen and rejected) is complete after the last of them.
    if (left === 0) this.start(layer);
  }

  private start(layer: number): void {
    const params = this.byLayer.get(layer);
    this.started.add(layer);
    // gradOf gives a parameter this rank's batch did not reach (an idle expert) zeros, so all ranks send alike.
    if (params?.length) this.dist.allReduceMeanStart(params.map((p) => gradOf(p)));
  }

  /** After the backward pass: averages what is left, waits for every all-reduce, and disarms the model. */
  finish(model: MiniMind): void {
    model.layerBackwardHook = null;
    const missed = [...this.byLayer.keys()].filter((l) => !this.started.has(l)).sort((a, b) => b - a);
    for (const layer of missed) this.start(layer); // layers no forward pass marked (none for MiniMind)
    if (this.rest.length) this.dist.allReduceMeanStart(this.rest.map((p) => gradOf(p)));
    this.dist.waitAll();
    this.marks.clear();
    this.started.clear();
  }
}
