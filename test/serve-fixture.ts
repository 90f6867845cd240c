// A small random model folder with a real tokenizer, for the inference and serving tests: a 512-token BPE
// trained on a slice of the demo corpus and a 2-layer model (untrained: the tests check plumbing, not answers).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeDemoData } from '../lib/demo';
import { saveModelFolder } from '../lib/io/model-folder';
import { resolveConfig } from '../lib/nn/config';
import { initWeights } from '../lib/nn/init';
import { MiniMind } from '../lib/nn/model';
import { trainTokenizer } from '../lib/tokenizer/train';

export async function makeModelFolder(maxSeqLen = 256): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-model-'));
  const files = writeDemoData(path.join(dir, 'data'), { pretrainBytes: 40_000 });
  const tokenizer = path.join(dir, 'tokenizer');
  await trainTokenizer({ files: [files.pretrain], vocabSize: 512, out: tokenizer });
  const model = new MiniMind(resolveConfig({ dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 512,
    max_seq_len: maxSeqLen, hidden_dim: 128 }));
  initWeights(model, 3);
  const out = path.join(dir, 'model');
  saveModelFolder(model, out, tokenizer);
  model.dispose();
  return out;
}
