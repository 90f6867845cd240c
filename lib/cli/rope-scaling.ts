// The --rope-scaling / --rope-factor options of generate, chat, serve and eval loss: run a model on a context
// longer than its max_seq_len by scaling RoPE (lib/ops/rope.ts scaledRopeTable). Without them the model keeps
// its config.json's rope_scaling (usually none).
import type { MiniMind } from '../nn/model';

export interface RopeScalingArgs {
  'rope-scaling'?: 'linear' | 'yarn';
  'rope-factor'?: number;
}

export const ROPE_SCALING_OPTIONS = {
  'rope-scaling': { choices: ['linear', 'yarn'] as const,
    describe: 'extend the context beyond max_seq_len: linear (position interpolation) or yarn (with --rope-factor)' },
  'rope-factor': { type: 'number' as const, describe: 'RoPE scaling factor F ≥ 1: the context becomes max_seq_len × F' },
};

/** Applies the options to a loaded model (both must be given together). */
export function applyRopeScaling(model: MiniMind, argv: RopeScalingArgs): void {
  const type = argv['rope-scaling'];
  const factor = argv['rope-factor'];
  if (type === undefined && factor === undefined) return;
  if (type === undefined) throw new Error('--rope-factor needs --rope-scaling linear|yarn');
  if (factor === undefined) throw new Error('--rope-scaling needs --rope-factor F (the context becomes max_seq_len × F)');
  model.setRopeScaling({ type, factor });
}
