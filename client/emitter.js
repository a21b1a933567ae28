// @ts-check
/** The client's listeners: on/once/off, and _fire, which never lets a listener's exception escape. */

/** Report an exception without interrupting the caller. @param {unknown} e */
function rethrowLater(e) {
  const g = /** @type {any} */ (globalThis);
  if (typeof g.reportError === 'function') g.reportError(e);
  else
    setTimeout(() => {
      throw e;
    });
}

export class Emitter {
  constructor() {
    /** @private @type {Map<string, Set<Function>>} */ this._ls = new Map();
  }

  /**
   * Listen to a client event ('open', 'close', 'reconnecting', 'transport', 'error', 'event') or
   * to a named server event. Returns a function that removes the listener.
   * @param {string} name
   * @param {(...args: any[]) => void} fn
   * @returns {() => void}
   */
  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this._ls.get(name);
    if (!set) this._ls.set(name, (set = new Set()));
    set.add(fn);
    return () => this.off(name, fn);
  }

  /**
   * Like on(), but the listener runs at most once.
   * @param {string} name
   * @param {(...args: any[]) => void} fn
   * @returns {() => void}
   */
  once(name, fn) {
    // (the listener's result is passed on: a server request handler may return a promise)
    const off = this.on(name, (...args) => {
      off();
      return fn.apply(this, args);
    });
    return off;
  }

  /**
   * Remove one listener, every listener of `name`, or (no arguments) every listener.
   * @param {string} [name]
   * @param {(...args: any[]) => void} [fn]
   */
  off(name, fn) {
    if (name === undefined) this._ls.clear();
    else if (fn === undefined) this._ls.delete(name);
    else this._ls.get(name)?.delete(fn);
    return this;
  }

  /**
   * The listeners of `name` now, in order (internal: a copy, safe to iterate while they change).
   * @param {string} name
   * @returns {Function[]}
   */
  _listeners(name) {
    const set = this._ls.get(name);
    return set ? [...set] : [];
  }

  /**
   * Call the listeners of `name` (internal: the client and its connections fire events).
   * @param {string} name
   * @param {...unknown} args
   */
  _fire(name, ...args) {
    const set = this._ls.get(name);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try {
        fn.apply(this, args);
      } catch (e) {
        rethrowLater(e);
      }
    }
  }
}
