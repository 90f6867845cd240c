declare module 'node-gyp-build' {
  /** Loads the native addon for the package rooted at `dir` (build/Release first, then prebuilds/). */
  function load(dir: string): unknown;
  namespace load {
    /** The path of the .node file that load() would use; throws if none. */
    function path(dir?: string): string;
  }
  export = load;
}
