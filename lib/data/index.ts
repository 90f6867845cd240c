// Training data: preparation (`data prepare`), the prepared-file layout, and the batch loaders.
export { prepareData, type PrepareOptions, type PrepareProgress, type PrepareResult } from './prepare';
export { openLoader, DataLoader, type Batch, type Cursor, type LoaderOptions } from './loader';
export { readHeader, type DataHeader } from './format';
export { STAGES, type Stage, type InputFormat, type MaskStyle } from './records';
export { SampleBuilder, PAD_ID } from './samples';
export { defaultTokenizerLoader, loadTokenizerWith, type TokenizerLoaderRef } from './tokenizer-loader';
