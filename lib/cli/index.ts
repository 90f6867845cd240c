// Every CLI command; bin/cli.ts registers them with yargs. A new command adds one line here.
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench';
import { infoCommand } from './info';
import { launchCommand } from './launch';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [infoCommand, benchCommand, launchCommand];
