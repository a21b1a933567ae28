/**
 * What a dialect declares of its options, so that the gateway reads, checks and documents them
 * without naming the dialect: the form of each command-line flag (the gateway's config table takes
 * them in, under the dialect's key), how the configured values resolve (defaults, checks), and
 * what the demo page needs (its endpoint, its scripts).
 */

/** How an option's value is read (a flag, a variable or a config-file key) */
export type OptionKind =
  | { t: 'int'; min: number; max?: number }
  | { t: 'number'; min: number; max: number }
  | { t: 'string'; pattern?: RegExp; form?: string }
  | { t: 'list' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'flag' };

/** One command-line flag of a dialect (gateway commands only) */
export interface DialectFlag {
  /** the flag, without `--` */
  flag: string;
  kind: OptionKind;
  /** the option it sets, under the dialect's key ('': the dialect's key itself, e.g. `--no-socketio`) */
  to: string;
  /** for a `flag` kind: the value it sets @default true */
  sets?: unknown;
  /** what the help says the default is */
  def: string;
  help: string;
  /** only for `switchyard gateway` (not `start`) */
  clusterOnly?: boolean;
}

/** What a dialect's defaults may follow of its node's options */
export interface NodeDefaults {
  readonly pingMs: number;
  readonly maxPayloadBytes: number;
}

/** An integer time or count option, at least `min`: else a TypeError naming it */
export function checkInt(name: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new TypeError(`option ${name} must be an integer >= ${min}, got ${String(v)}`);
}

/** The fields of `o` that are set */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
