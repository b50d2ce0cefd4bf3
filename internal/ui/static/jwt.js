// Decoding (never verifying: only the hub can) and, on a development hub,
// minting of the two kinds of Mercure tokens.

const DETAIL_TYPE = 'https://mercure.rocks/authorization-detail';

function b64urlDecode(s) {
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  const bin = atob(s);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

function b64urlEncode(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// isAccessToken reports whether a header's typ makes a draft-08 access token.
export function isAccessToken(header) {
  const typ = String(header?.typ ?? '').toLowerCase();
  return typ === 'at+jwt' || typ === 'application/at+jwt';
}

// decodeToken returns {header, claims, format, publish, subscribe, payload}
// for a compact JWS, or throws an Error saying what is wrong.
export function decodeToken(raw) {
  const parts = raw.trim().split('.');
  if (parts.length !== 3) throw new Error('not a JWT: want three dot-separated parts');
  let header, claims;
  try { header = JSON.parse(b64urlDecode(parts[0])); } catch { throw new Error('the header is not base64url JSON'); }
  try { claims = JSON.parse(b64urlDecode(parts[1])); } catch { throw new Error('the claims are not base64url JSON'); }
  const out = { header, claims, format: isAccessToken(header) ? 'draft-08 access token' : 'draft-07 legacy token', publish: [], subscribe: [], payload: null };
  if (isAccessToken(header)) {
    for (const d of Array.isArray(claims.authorization_details) ? claims.authorization_details : []) {
      if (d?.type !== DETAIL_TYPE) continue;
      const topics = (Array.isArray(d.topics) ? d.topics : []).map((t) => `${t?.match} (${t?.match_type ?? 'exact'})`);
      const actions = Array.isArray(d.actions) ? d.actions : [];
      if (actions.includes('publish')) out.publish.push(...topics);
      if (actions.includes('subscribe')) out.subscribe.push(...topics);
      if (d.payload !== undefined && out.payload === null) out.payload = d.payload;
    }
  } else {
    const m = claims.mercure ?? {};
    out.publish = Array.isArray(m.publish) ? m.publish.map(String) : [];
    out.subscribe = Array.isArray(m.subscribe) ? m.subscribe.map(String) : [];
    out.payload = m.payload ?? null;
  }
  return out;
}

// relative says how far a unix time is from now, in words.
export function relative(unix) {
  const d = Math.round(unix - Date.now() / 1000);
  const abs = Math.abs(d);
  const words = abs < 90 ? `${abs}s` : abs < 5400 ? `${Math.round(abs / 60)}m` : abs < 172800 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return d >= 0 ? `in ${words}` : `${words} ago`;
}

const HASHES = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

// mintToken signs a token with an HMAC key (bytes) in the browser. opts:
// {alg, format: 'legacy'|'rfc9068', publish, subscribe, ttlSeconds,
// audience, issuer}.
export async function mintToken(key, opts) {
  const hash = HASHES[opts.alg];
  if (!hash) throw new Error(`cannot mint ${opts.alg} tokens in the page`);
  if (!globalThis.crypto?.subtle) throw new Error('minting needs the Web Crypto API, which browsers offer only on https:// or localhost pages');
  const now = Math.floor(Date.now() / 1000);
  let header, claims;
  if (opts.format === 'rfc9068') {
    header = { alg: opts.alg, typ: 'at+jwt' };
    const topic = (s) => ({ match: s, match_type: /(^|\/)[:*]/.test(s) && s !== '*' ? 'urlpattern' : 'exact' });
    const details = [];
    if (opts.publish.length) details.push({ type: DETAIL_TYPE, actions: ['publish'], topics: opts.publish.map(topic) });
    if (opts.subscribe.length) details.push({ type: DETAIL_TYPE, actions: ['subscribe'], topics: opts.subscribe.map(topic) });
    claims = {
      iss: opts.issuer || 'mercurectl', aud: opts.audience, sub: 'debug-ui', client_id: 'mercurectl-ui',
      iat: now, exp: now + opts.ttlSeconds, jti: crypto.randomUUID(), authorization_details: details,
    };
  } else {
    header = { alg: opts.alg, typ: 'JWT' };
    claims = { mercure: { publish: opts.publish, subscribe: opts.subscribe }, iat: now, exp: now + opts.ttlSeconds };
  }
  const enc = new TextEncoder();
  const input = b64urlEncode(enc.encode(JSON.stringify(header))) + '.' + b64urlEncode(enc.encode(JSON.stringify(claims)));
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(input)));
  return input + '.' + b64urlEncode(sig);
}

// keyBytes decodes the base64url key of the page's configuration.
export function keyBytes(s) {
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}
