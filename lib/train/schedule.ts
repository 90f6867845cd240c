// MiniMind's learning-rate schedule, evaluated per optimizer step s of S:
//   s < warmup:      lr = maxLr * s / warmup
//   s > S:           lr = minLr
//   otherwise:       lr = minLr + 0.5 * (1 + cos(pi * (s - warmup) / (S - warmup))) * (maxLr - minLr)
export interface Schedule {
  maxLr: number;
  minLr: number;
  warmup: number;
  totalSteps: number;
}

export function learningRate(s: number, sch: Schedule): number {
  const { maxLr, minLr, warmup, totalSteps } = sch;
  if (s < warmup) return (maxLr * s) / warmup;
  if (s > totalSteps) return minLr;
  const span = Math.max(1, totalSteps - warmup);
  return minLr + 0.5 * (1 + Math.cos((Math.PI * (s - warmup)) / span)) * (maxLr - minLr);
}
