// `minimind-native serve --model DIR [--host 127.0.0.1] [--port 8998] [--api-key KEY]`
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadModelFolder } from '../io/model-folder';
import { checkWeightDtype, DTYPE_OPTION } from '../infer/weights';
import { createServer } from '../serve/server';
import { Tokenizer } from '../tokenizer';
import { applyLora } from '../train/lora';
import { applyRopeScaling, ROPE_SCALING_OPTIONS, RopeScalingArgs } from './rope-scaling';

interface ServeArgs extends RopeScalingArgs {
  model: string;
  host: string;
  port: number;
  'api-key'?: string;
  name?: string;
  'max-queue': number;
  'max-body': number;
  lora?: string;
  dtype: string;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve a model with an OpenAI-compatible API and a web chat page (binds 127.0.0.1 by default)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (with tokenizer files)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind (0.0.0.0 exposes it to the network)' })
      .option('port', { type: 'number', default: 8998 })
      .option('api-key', { type: 'string', describe: 'require "Authorization: Bearer KEY" on /v1/ routes' })
      .option('name', { type: 'string', describe: 'the model id reported by /v1/models (default: the folder name)' })
      .option('max-queue', { type: 'number', default: 64, describe: 'requests waiting before 429' })
      .option('max-body', { type: 'number', default: 1 << 20, describe: 'request body limit in bytes' })
      .option('lora', { type: 'string', describe: 'apply a LoRA adapter folder' })
      .options(ROPE_SCALING_OPTIONS)
      .option('dtype', DTYPE_OPTION) as Argv<ServeArgs>,
  handler: async (argv) => {
    const model = loadModelFolder(argv.model, 'cpu', checkWeightDtype(argv.dtype, 'cpu'));
    if (argv.lora) applyLora(model, argv.lora);
    applyRopeScaling(model, argv);
    const tokenizer = Tokenizer.load(argv.model);
    const name = argv.name ?? path.basename(path.resolve(argv.model));
    const server = createServer({ model, tokenizer, modelName: name, apiKey: argv['api-key'],
      maxQueue: argv['max-queue'], maxBodyBytes: argv['max-body'] });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(argv.port, argv.host, () => resolve());
    });
    const addr = server.address() as { address: string; port: number };
    console.log(`serving ${name} on http://${addr.address}:${addr.port} (chat page at /, API at /v1)`);
    await new Promise<void>((resolve) => {
      const stop = () => server.close(() => resolve());
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
