// Draws a run's curves (loss, learning rate, tokens/s against step) from <run>/metrics.jsonl as one SVG,
// three stacked panels, written by hand (no plotting dependency).
import * as fs from 'node:fs';
import * as path from 'node:path';

interface Series {
  title: string;
  key: string;
  color: string;
}

const SERIES: Series[] = [
  { title: 'loss', key: 'loss', color: '#c0392b' },
  { title: 'learning rate', key: 'lr', color: '#2471a3' },
  { title: 'tokens/s', key: 'tokens_per_s', color: '#1e8449' },
];

export function readMetrics(runDir: string): Record<string, number>[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) throw new Error(`${runDir}: no metrics.jsonl (is it a training run's --out folder?)`);
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line, i) => {
    try {
      return JSON.parse(line) as Record<string, number>;
    } catch {
      throw new Error(`${file}:${i + 1}: not valid JSON`);
    }
  });
}

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3));

export function metricsSvg(rows: Record<string, number>[], title: string): string {
  const W = 720;
  const panelH = 180;
  const padL = 70;
  const padR = 20;
  const padT = 30;
  const gap = 40;
  const H = padT + SERIES.length * (panelH + gap);
  const steps = rows.map((r) => r.step);
  const x0 = Math.min(...steps);
  const x1 = Math.max(...steps, x0 + 1);
  const sx = (s: number) => padL + ((s - x0) / (x1 - x0)) * (W - padL - padR);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  SERIES.forEach((s, i) => {
    const top = padT + i * (panelH + gap) + 10;
    const pts = rows.filter((r) => Number.isFinite(r[s.key])).map((r) => [r.step, r[s.key]] as const);
    const ys = pts.map((p) => p[1]);
    const y0 = ys.length ? Math.min(...ys) : 0;
    const y1 = ys.length ? Math.max(...ys) : 1;
    const span = y1 - y0 || Math.abs(y1) || 1;
    const sy = (v: number) => top + panelH - ((v - y0) / span) * panelH;
    parts.push(`<rect x="${padL}" y="${top}" width="${W - padL - padR}" height="${panelH}" fill="none" stroke="#999"/>`);
    parts.push(`<text x="${padL}" y="${top - 4}">${s.title}</text>`);
    parts.push(`<text x="${padL - 4}" y="${top + 10}" text-anchor="end">${fmt(y1)}</text>`);
    parts.push(`<text x="${padL - 4}" y="${top + panelH}" text-anchor="end">${fmt(y0)}</text>`);
    parts.push(`<text x="${padL}" y="${top + panelH + 14}">${x0}</text>`);
    parts.push(`<text x="${W - padR}" y="${top + panelH + 14}" text-anchor="end">step ${x1}</text>`);
    if (pts.length) {
      const d = pts.map((p, j) => `${j ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    }
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
