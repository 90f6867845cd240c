// Every CLI command; bin/cli.ts registers them with yargs. A new command adds one line here.
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench';
import { chatCommand } from './chat';
import { dataCommand } from './data';
import { demoCommand } from './demo';
import { evalCommand } from './eval';
import { generateCommand } from './generate';
import { infoCommand } from './info';
import { launchCommand } from './launch';
import { plotCommand } from './plot';
import { exportCommand, importCommand } from './io';
import { serveCommand } from './serve';
import { tokenizerCommand } from './tokenizer';
import { trainCommand } from './train';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  infoCommand, demoCommand, tokenizerCommand, dataCommand, trainCommand, generateCommand, chatCommand, serveCommand,
  evalCommand, importCommand, exportCommand, plotCommand, benchCommand, launchCommand,
];
