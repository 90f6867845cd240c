// A small Python pickle virtual machine: enough of the protocol (0-5 binary opcodes) to read the pickles that
// torch.save writes for state dicts. Nothing is executed: GLOBAL names are handed to `findClass`, which returns
// a JS stand-in (a function for callables, any value for classes/constants) or throws; persistent ids (torch's
// storages) go to `persistentLoad`.
//
// Python values become: None → null, bool → boolean, int → number (bigint past 2^53), float → number,
// str → string, bytes → Uint8Array, list and tuple → array, dict → Map, set → Set.

export interface PickleHooks {
  /** Resolves `module.name` from GLOBAL/STACK_GLOBAL; throws for names it does not allow. */
  findClass(module: string, name: string): unknown;
  /** Turns a persistent id (BINPERSID/PERSID) into a value. */
  persistentLoad(pid: unknown): unknown;
}

/** A Python callable or class that REDUCE/NEWOBJ may call with positional arguments. */
export type PyCallable = (args: unknown[]) => unknown;

/** The state BUILD attached to an object (e.g. the `_metadata` of a state_dict OrderedDict). */
export const BUILD_STATE = Symbol('pickle BUILD state');

// Opcodes that exist but that torch state dicts never use, named in the error message.
const UNSUPPORTED_OPCODES: Record<number, string> = {
  0x46: 'FLOAT', 0x4c: 'LONG', 0x53: 'STRING', 0x56: 'UNICODE', 0x69: 'INST', 0x6f: 'OBJ', 0x82: 'EXT1',
  0x83: 'EXT2', 0x84: 'EXT4', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/**
 * Runs the pickle that starts at `start` in `buf` until STOP. Returns the value and the offset after STOP
 * (legacy torch files hold several pickles back to back). `where` names the file in errors.
 */
export function unpickle(buf: Uint8Array, start: number, hooks: PickleHooks, where: string): { value: unknown; end: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const utf8 = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  let stack: unknown[] = [];
  const marks: unknown[][] = []; // the stacks saved by MARK (as CPython's metastack)
  const memo = new Map<number, unknown>();
  let pos = start;

  const fail = (msg: string): never => {
    throw new Error(`${where}: pickle at byte ${pos}: ${msg}`);
  };
  const need = (n: number) => {
    if (pos + n > buf.length) fail('truncated pickle');
  };
  const u8 = () => (need(1), buf[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} too large`);
    return Number(v);
  };
  const bytes = (n: number) => (need(n), (pos += n), buf.subarray(pos - n, pos));
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text line');
    const s = latin1.decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => (stack.length === 0 ? fail('stack underflow') : stack.pop());
  const top = () => (stack.length === 0 ? fail('stack underflow') : stack[stack.length - 1]);
  const popMark = () => {
    const items = stack;
    const saved = marks.pop();
    if (!saved) fail('no MARK on the stack');
    stack = saved!;
    return items;
  };
  const call = (fn: unknown, args: unknown, op: string) => {
    if (typeof fn !== 'function') fail(`${op} on a value that is not callable (${describe(fn)})`);
    if (!Array.isArray(args)) fail(`${op} arguments are not a tuple`);
    return (fn as PyCallable)(args as unknown[]);
  };
  const signedLE = (b: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail(`SETITEM(S) on a ${describe(dict)}, not a dict`);
    for (let i = 0; i + 1 < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) fail(`APPEND(S) on a ${describe(list)}, not a list`);
    (list as unknown[]).push(...items);
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO: the version does not change how we read
      case 0x95: u64(); break; // FRAME: framing is only a buffering hint
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: marks.push(stack); stack = []; break;
      case 0x30: pop(); break;
      case 0x31: popMark(); break;
      case 0x32: stack.push(top()); break;
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(hooks.findClass(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(hooks.findClass(module as string, name as string));
        break;
      }
      case 0x71: memo.set(u8(), top()); break;
      case 0x72: memo.set(u32(), top()); break;
      case 0x94: memo.set(memo.size, top()); break;
      case 0x70: memo.set(Number(line()), top()); break;
      case 0x68: case 0x6a: case 0x67: {
        const key = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(key)) fail(`memo key ${key} was never stored`);
        stack.push(memo.get(key));
        break;
      }
      case 0x29: stack.push([]); break;
      case 0x74: { const items = popMark(); stack.push(items); break; } // popMark swaps `stack`: call it first
      case 0x85: stack.push([pop()]); break;
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; }
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; }
      case 0x7d: stack.push(new Map()); break;
      case 0x64: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; }
      case 0x75: { const items = popMark(); setItems(top(), items); break; }
      case 0x5d: stack.push([]); break;
      case 0x6c: { const items = popMark(); stack.push(items); break; }
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; }
      case 0x65: { const items = popMark(); appendItems(top(), items); break; }
      case 0x8f: stack.push(new Set()); break;
      case 0x90: {
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) fail('ADDITEMS on a value that is not a set');
        for (const v of items) (set as Set<unknown>).add(v);
        break;
      }
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; }
      case 0x58: stack.push(utf8.decode(bytes(u32()))); break;
      case 0x8c: stack.push(utf8.decode(bytes(u8()))); break;
      case 0x8d: stack.push(utf8.decode(bytes(u64()))); break;
      case 0x54: stack.push(latin1.decode(bytes(u32()))); break; // Python 2 str
      case 0x55: stack.push(latin1.decode(bytes(u8()))); break;
      case 0x42: stack.push(new Uint8Array(bytes(u32()))); break;
      case 0x43: stack.push(new Uint8Array(bytes(u8()))); break;
      case 0x8e: stack.push(new Uint8Array(bytes(u64()))); break;
      case 0x4a: stack.push(i32()); break;
      case 0x4b: stack.push(u8()); break;
      case 0x4d: stack.push(u16()); break;
      case 0x49: { // INT: protocol 0 text; "00"/"01" are False/True
        const s = line();
        stack.push(s === '00' ? false : s === '01' ? true : Number(s));
        break;
      }
      case 0x8a: stack.push(signedLE(bytes(u8()))); break;
      case 0x8b: stack.push(signedLE(bytes(u32()))); break;
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // big-endian double
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4e: stack.push(null); break;
      case 0x52: { const args = pop(); stack.push(call(pop(), args, 'REDUCE')); break; }
      case 0x81: { const args = pop(); stack.push(call(pop(), args, 'NEWOBJ')); break; }
      case 0x92: {
        const kwargs = pop();
        const args = pop();
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail('NEWOBJ_EX with keyword arguments is not supported');
        stack.push(call(pop(), args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD: keep the state beside the object; nothing here needs __setstate__
        const state = pop();
        const obj = top();
        if (obj !== null && typeof obj === 'object') (obj as Record<symbol, unknown>)[BUILD_STATE] = state;
        break;
      }
      case 0x51: stack.push(hooks.persistentLoad(pop())); break;
      case 0x50: stack.push(hooks.persistentLoad(line())); break;
      default:
        pos = opPos;
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')}` +
          (UNSUPPORTED_OPCODES[op] ? ` (${UNSUPPORTED_OPCODES[op]})` : ` ('${String.fromCharCode(op)}')`));
    }
  }
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `tuple/list of ${v.length}`;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (typeof v === 'function') return `callable ${v.name}`;
  if (typeof v === 'object') return `object ${(v as object).constructor?.name ?? ''}`.trim();
  return `${typeof v} ${String(v)}`;
}
