// panva's oidc-provider as an independent OAuth 2.0 server for fieldauth's
// end-to-end tests (issue #14). See README.md in this directory.
//
//   node tests/oidc/server.mjs
//
// Listens on 127.0.0.1 only. The first line on stdout is the port (and
// nothing else is ever written to stdout: oidc-provider's notices go to
// stderr). In-memory storage: every start is a fresh server.
//
// Environment:
//   OIDC_PORT              port to listen on (default 0: any free port)
//   OIDC_ACCESS_TTL_S      access-token lifetime in seconds (default 5)
//   OIDC_REFRESH_TTL_S     refresh-token lifetime in seconds (default 3600)
//   OIDC_EXIT_ON_STDIN_EOF 1: exit when stdin closes (a test harness that
//                          dies leaves no server behind)
//   OIDC_REFRESH_RULE      `code-flow` (default): the code flow always gets a
//                          refresh token (see issueRefreshToken below);
//                          `offline_access`: oidc-provider's own rule, refresh
//                          tokens only for grants that kept `offline_access`
// Stops on SIGTERM, SIGINT, or (with the variable above) end of stdin.

import http from 'node:http';

// oidc-provider 9 uses URL.parse (Node.js 20.18 and later); an older Node
// fails with a clear message instead of a TypeError on the first request.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) {
  console.error(`tests/oidc/server.mjs: oidc-provider 9 needs Node.js >= 20.18, this is ${process.version}`
    + ' (Debian 12 ships 18: use a newer Debian or NodeSource\'s nodejs)');
  process.exit(3);
}

const { default: Provider, errors } = await import('oidc-provider');

// oidc-provider prints its notices with console.info (stdout): keep stdout
// for the port line alone.
console.info = (...args) => console.error(...args);

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const PORT = positiveInt('OIDC_PORT', 0);
const ACCESS_TTL_S = Math.max(1, positiveInt('OIDC_ACCESS_TTL_S', 5));
const REFRESH_TTL_S = Math.max(1, positiveInt('OIDC_REFRESH_TTL_S', 3600));
const REFRESH_RULE = process.env.OIDC_REFRESH_RULE || 'code-flow';
if (REFRESH_RULE !== 'code-flow' && REFRESH_RULE !== 'offline_access') {
  console.error(`OIDC_REFRESH_RULE must be code-flow or offline_access, got ${JSON.stringify(REFRESH_RULE)}`);
  process.exit(2);
}

// The resource server every token is for unless a request names another one
// (RFC 8707). Without a resource server oidc-provider grants client_credentials
// no scope at all: unknown scopes are silently dropped.
const RESOURCE = 'urn:fieldauth:api';
const RESOURCE_SCOPES = 'api:read api:write';

// The special-character secret: client_secret_basic must form-urlencode it
// before base64 (RFC 6749 §2.3.1), and so must the client_id.
const CLIENTS = [
  {
    client_id: 'basic client:1',
    client_secret: 'p@ss:w/rd+&=%',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'post-client',
    client_secret: 'post-secret',
    token_endpoint_auth_method: 'client_secret_post',
  },
].map((c) => ({
  ...c,
  grant_types: [
    'client_credentials',
    'refresh_token',
    'authorization_code',
    'urn:ietf:params:oauth:grant-type:device_code',
  ],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  scope: `openid offline_access ${RESOURCE_SCOPES}`,
}));

const server = http.createServer();

server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: CLIENTS,
    // Fixed keys: this is a test peer, nothing it signs leaves the machine.
    cookies: { keys: ['fieldauth-oidc-test-cookie-key'] },
    scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
    claims: { openid: ['sub'] },
    async findAccount(_ctx, sub) {
      return { accountId: sub, async claims() { return { sub }; } };
    },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== RESOURCE) throw new errors.InvalidTarget();
          return {
            audience: RESOURCE,
            scope: RESOURCE_SCOPES,
            accessTokenTTL: ACCESS_TTL_S,
            accessTokenFormat: 'opaque',
          };
        },
      },
    },
    rotateRefreshToken: true,
    // Refresh tokens: oidc-provider's default issues them only for grants
    // with `offline_access`, and in the code flow it drops `offline_access`
    // unless the authorization request says `prompt=consent`. With
    // OIDC_REFRESH_RULE=code-flow (the default, which core/tests/oidc.rs
    // relies on: its code-flow tests ask no `prompt`) the code flow gets a
    // refresh token here whenever the client may use the refresh_token
    // grant; the device flow keeps the default rule (`offline_access`, which
    // it keeps without any prompt). With OIDC_REFRESH_RULE=offline_access
    // (bindings/python/tests/test_oidc.py) it is oidc-provider's rule alone,
    // so only a code flow that sent `prompt=consent` gets one.
    async issueRefreshToken(_ctx, client, source) {
      if (!client.grantTypeAllowed('refresh_token')) return false;
      if (REFRESH_RULE === 'code-flow' && source.kind === 'AuthorizationCode') return true;
      return source.scopes.has('offline_access');
    },
    ttl: {
      AccessToken: ACCESS_TTL_S,
      ClientCredentials: ACCESS_TTL_S,
      RefreshToken: REFRESH_TTL_S,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 3600,
      Session: 3600,
    },
  });

  const oidc = provider.callback();
  server.on('request', (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/api/me') {
      protectedApi(provider, req, res).catch((err) => {
        console.error('/api/me:', err);
        send(res, 500, { error: 'server_error' });
      });
    } else {
      oidc(req, res);
    }
  });

  process.stdout.write(`${port}\n`);
  console.error(`oidc-provider ${issuer} (access tokens ${ACCESS_TTL_S} s, refresh tokens ${REFRESH_TTL_S} s,`
    + ` refresh rule ${REFRESH_RULE})`);
});

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

// A protected resource for the resource server above (RFC 6750): GET with
// `Authorization: Bearer <access token>`. 200 with what the token is for, or
// 401 with a Bearer challenge (invalid_token for an unknown, expired or
// revoked token), or 403 insufficient_scope without `api:read`.
async function protectedApi(provider, req, res) {
  const realm = 'realm="fieldauth-oidc"';
  if (req.method !== 'GET') {
    send(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET' });
    return;
  }
  const m = /^Bearer ([\x21-\x7e]+)$/i.exec(req.headers.authorization ?? '');
  if (!m) {
    send(res, 401, { error: 'unauthorized' }, { 'WWW-Authenticate': `Bearer ${realm}` });
    return;
  }
  let token;
  try {
    token = (await provider.ClientCredentials.find(m[1]))
      ?? (await provider.AccessToken.find(m[1]));
    // An access token dies with its grant (revoking a refresh token revokes it).
    if (token?.grantId && !(await provider.Grant.find(token.grantId))) token = undefined;
  } catch {
    token = undefined;
  }
  if (!token || token.isExpired) {
    const why = 'the access token is unknown, expired or revoked';
    send(res, 401, { error: 'invalid_token', error_description: why }, {
      'WWW-Authenticate': `Bearer ${realm}, error="invalid_token", error_description="${why}"`,
    });
    return;
  }
  if (!token.scope?.split(' ').includes('api:read')) {
    send(res, 403, { error: 'insufficient_scope' }, {
      'WWW-Authenticate': `Bearer ${realm}, error="insufficient_scope", scope="api:read"`,
    });
    return;
  }
  send(res, 200, {
    client_id: token.clientId,
    sub: token.accountId,
    scope: token.scope,
    aud: token.aud,
    exp: token.exp,
  });
}

function stop() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (process.env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
