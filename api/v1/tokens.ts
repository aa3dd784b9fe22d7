/**
 * Access tokens: short-lived JWTs (HS256, signed with JWT_SECRET) naming the
 * account (`sub`) and the login session (`sid`). They are checked on every
 * request together with the session (core/accounts/login-sessions.ts), so
 * logging out stops them at once; their short life bounds what a leaked one
 * is worth if the database check were ever skipped.
 */
import jwt from 'jsonwebtoken';
import type { Clock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';

/** How long an access token works. */
export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;

const ISSUER = 'atlantic';
const AUDIENCE = 'atlantic-api';

export interface AccessClaims {
  accountId: string;
  sessionId: string;
}

export interface TokenSigner {
  issue(claims: AccessClaims): { accessToken: string; expiresAt: Date };
  /** The claims of a valid token; UNAUTHENTICATED (details.reason TOKEN_EXPIRED / TOKEN_INVALID) otherwise. */
  verify(token: string): AccessClaims;
}

export function createTokenSigner(secret: string, clock: Clock): TokenSigner {
  if (secret.length < 32) throw new Error('JWT secret must be at least 32 characters');
  const nowSeconds = (): number => Math.floor(clock.now().getTime() / 1000);
  return {
    issue({ accountId, sessionId }) {
      const iat = nowSeconds();
      const exp = iat + ACCESS_TOKEN_TTL_SECONDS;
      const accessToken = jwt.sign({ sid: sessionId, typ: 'access', iat, exp }, secret, {
        algorithm: 'HS256',
        subject: accountId,
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      return { accessToken, expiresAt: new Date(exp * 1000) };
    },
    verify(token) {
      let payload: string | jwt.JwtPayload;
      try {
        payload = jwt.verify(token, secret, {
          algorithms: ['HS256'],
          issuer: ISSUER,
          audience: AUDIENCE,
          clockTimestamp: nowSeconds(),
        });
      } catch (error) {
        const expired = error instanceof jwt.TokenExpiredError;
        throw new DomainError(
          'UNAUTHENTICATED',
          expired
            ? 'Your access token expired: refresh it or log in again.'
            : 'That access token is not valid.',
          { details: { reason: expired ? 'TOKEN_EXPIRED' : 'TOKEN_INVALID' } },
        );
      }
      if (
        typeof payload !== 'object' ||
        payload.typ !== 'access' ||
        typeof payload.sub !== 'string' ||
        typeof payload.sid !== 'string'
      ) {
        throw new DomainError('UNAUTHENTICATED', 'That access token is not valid.', {
          details: { reason: 'TOKEN_INVALID' },
        });
      }
      return { accountId: payload.sub, sessionId: payload.sid };
    },
  };
}
