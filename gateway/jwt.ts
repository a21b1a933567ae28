/**
 * Built-in JWT verification (jose, loaded when the first token is checked), optional: a new session's credentials must be a JWT signed
 * with the configured key (HS256 secret, RS256/ES256 public key file, or a JWKS URL), for the
 * audience and issuer configured, and not expired. Its claims become `session.meta.auth`. A
 * refused token ends the opening session with SY_ERR_AUTH_FAILED, which every dialect answers as
 * its own refusal (see docs/operations.md).
 */
import { readFileSync } from 'node:fs';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';

type Jose = typeof import('jose');
let jose: Promise<Jose> | null = null;
/** jose is loaded at the first token a node checks, not by every node at start-up */
const loadJose = (): Promise<Jose> => (jose ??= import('jose'));
import type { SessionMeta } from '../cluster/types.ts';

/** The `jwt` option: one of `secret`, `publicKeyFile`, `jwksUrl` */
export interface JwtConfig {
  /** HS256 shared secret (at least 32 bytes; from SWITCHYARD_JWT_SECRET on the command line) */
  secret?: string;
  /** a PEM public key (SPKI or certificate): RSA keys verify RS256, EC P-256 keys ES256 */
  publicKeyFile?: string;
  /** a JSON Web Key Set URL (fetched and cached; RS256 and ES256) */
  jwksUrl?: string;
  /** the `aud` the token must name */
  audience?: string;
  /** the `iss` the token must name */
  issuer?: string;
  /** accepted clock skew for `exp` and `nbf` @default 5 */
  clockToleranceSec?: number;
}

export class JwtVerifier {
  /** the key; for a JWKS URL, the remote key set (made at the first check) */
  private key: KeyObject | JWTVerifyGetKey | URL;
  private readonly algorithms: string[];

  constructor(private readonly c: JwtConfig) {
    const given = [c.secret, c.publicKeyFile, c.jwksUrl].filter((v) => v !== undefined).length;
    if (given !== 1) throw new TypeError('option jwt needs exactly one of secret, publicKeyFile, jwksUrl');
    if (c.secret !== undefined) {
      if (Buffer.byteLength(c.secret) < 32) throw new TypeError('option jwt.secret must be at least 32 bytes (HS256)');
      this.key = createSecretKey(Buffer.from(c.secret));
      this.algorithms = ['HS256'];
    } else if (c.publicKeyFile !== undefined) {
      let pem: string;
      try {
        pem = readFileSync(c.publicKeyFile, 'utf8');
      } catch (err) {
        throw new TypeError(`option jwt.publicKeyFile: cannot read ${c.publicKeyFile}: ${(err as Error).message}`);
      }
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType === 'rsa') this.algorithms = ['RS256'];
      else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') this.algorithms = ['ES256'];
      else throw new TypeError(`option jwt.publicKeyFile: an RSA or EC P-256 public key is needed, got ${key.asymmetricKeyType ?? 'unknown'}`);
      this.key = key;
    } else {
      let url: URL;
      try {
        url = new URL(c.jwksUrl!);
      } catch {
        throw new TypeError(`option jwt.jwksUrl must be a URL, got ${c.jwksUrl}`);
      }
      this.key = url;
      this.algorithms = ['RS256', 'ES256'];
    }
  }

  /** The token's claims, or a rejection whose message says why (never the token itself) */
  async verify(token: string): Promise<JWTPayload> {
    const options = {
      algorithms: this.algorithms,
      audience: this.c.audience,
      issuer: this.c.issuer,
      clockTolerance: this.c.clockToleranceSec ?? 5,
      requiredClaims: ['exp'],
    };
    const j = await loadJose();
    if (this.key instanceof URL) this.key = j.createRemoteJWKSet(this.key);
    try {
      const { payload } = typeof this.key === 'function' ? await j.jwtVerify(token, this.key, options) : await j.jwtVerify(token, this.key, options);
      return payload;
    } catch (err) {
      throw new Error(reasonOf(err, j.errors));
    }
  }
}

/** A short, token-free reason for a refusal */
function reasonOf(err: unknown, joseErrors: Jose['errors']): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `claim ${err.claim} ${err.reason === 'check_failed' ? 'does not match' : err.reason.replace(/_/g, ' ')}`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no matching key';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return 'key set unavailable';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'malformed token';
  return 'invalid token';
}

/**
 * The token a new session brings, wherever its dialect carries it: a string `auth` (native `auth`
 * query or `Authorization` header, SignalR's `access_token` or bearer, SockJS's `auth` query),
 * less a `Bearer ` prefix; Socket.IO's auth payload's `token`. Null when there is none.
 */
export function tokenOf(auth: SessionMeta['auth']): string | null {
  const t = typeof auth === 'string' ? auth.replace(/^Bearer\s+/i, '') : auth.token;
  return typeof t === 'string' && t !== '' ? t : null;
}
