// @ts-check
/**
 * The remembered fallback: which transport worked for a gateway after the ones before it failed,
 * and when they failed, so that the next client (a new page load, another tab, another client in
 * the same process) starts with it instead of waiting for the others to fail again. Kept in
 * `localStorage` when the page has one (shared by the tabs of an origin), else in memory (shared
 * by the clients of one page or process). session.js decides what to write and when it expires.
 */
/** @import { TransportName } from './types.js' */

/** @typedef {{ transport: TransportName, at: number }} Fallback */

/** where records go when there is no usable localStorage @type {Map<string, string>} */
const memory = new Map();

/** localStorage, if there is one and it may be used (sandboxed frames and some privacy modes throw) */
function local() {
  try {
    const ls = /** @type {any} */ (globalThis).localStorage;
    if (ls && typeof ls.getItem === 'function' && typeof ls.setItem === 'function' && typeof ls.removeItem === 'function') return ls;
  } catch {
    /* not allowed here */
  }
  return null;
}

export class Remembered {
  /** @param {string} key  storage key */
  constructor(key) {
    this.key = key;
  }

  /** The record, or null (none, or not one of ours). @returns {Fallback | null} */
  read() {
    /** @type {string | null | undefined} */
    let text = null;
    const ls = local();
    try {
      if (ls) text = ls.getItem(this.key);
    } catch {
      /* unreadable */
    }
    if (text == null) text = memory.get(this.key);
    if (!text) return null;
    try {
      const v = JSON.parse(text);
      if (v && typeof v.transport === 'string' && typeof v.at === 'number' && Number.isFinite(v.at)) return { transport: v.transport, at: v.at };
    } catch {
      /* not ours */
    }
    return null;
  }

  /**
   * @param {TransportName} transport  the transport that worked
   * @param {number} at  when the transports before it failed
   */
  write(transport, at) {
    const text = JSON.stringify({ transport, at });
    const ls = local();
    try {
      if (ls) {
        ls.setItem(this.key, text);
        memory.delete(this.key);
        return;
      }
    } catch {
      /* full or not allowed: keep it in memory */
    }
    memory.set(this.key, text);
  }

  forget() {
    memory.delete(this.key);
    const ls = local();
    try {
      if (ls) ls.removeItem(this.key);
    } catch {
      /* not allowed */
    }
  }
}
