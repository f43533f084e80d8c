// The OpenID Connect server of the production tests (npm oidc-provider):
// client-credentials tokens for medallion that live OIDC_TOKEN_TTL seconds,
// and token introspection for the catalog proxy that checks them. Tokens
// are kept in memory, as a restarted identity provider with a fresh store
// would; the proxy remembers what it already checked.
//
// A client-credentials request that names a `resource` (RFC 8707) gets a
// JWT access token instead, RS256-signed, with that resource as `aud` and
// the granted `upload:<dataset>` scopes in `scope`: what the upload API
// (`medallion serve`) verifies against the JWKS. Without `resource` tokens
// stay opaque and introspectable, as before.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const ttl = Number(process.env.OIDC_TOKEN_TTL);
const issuer = `http://127.0.0.1:${port}`;

// A new signing key at every start, so a restart is a key rotation: tokens
// signed before it carry a kid the new JWKS no longer lists. The provider
// takes the private JWK and publishes only its public part at /jwks. The
// key is written to OIDC_KEY_OUT; OIDC_KEY_IN makes a second server sign
// with the first one's key (a token that verifies, from another issuer).
function signingKeyOf() {
  if (process.env.OIDC_KEY_IN) {
    return JSON.parse(readFileSync(process.env.OIDC_KEY_IN, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: randomUUID(),
    alg: 'RS256',
    use: 'sig',
  };
}
const signingKey = signingKeyOf();
if (process.env.OIDC_KEY_OUT) {
  writeFileSync(process.env.OIDC_KEY_OUT, JSON.stringify(signingKey), { mode: 0o600 });
}

// The APIs that take JWTs, by resource indicator; unset ones are unknown
// (requests naming them fail with invalid_target).
const uploadScopes = ['upload:orders', 'upload:customer'];
const resources = new Set(
  [process.env.OIDC_API_RESOURCE, process.env.OIDC_OTHER_RESOURCE].filter(Boolean),
);

const uploader = process.env.OIDC_UPLOADER_ID
  ? [
    {
      client_id: process.env.OIDC_UPLOADER_ID,
      client_secret: process.env.OIDC_UPLOADER_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
      scope: uploadScopes.join(' '),
    },
  ]
  : [];

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: process.env.OIDC_CATALOG_ID,
      client_secret: process.env.OIDC_CATALOG_SECRET,
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    ...uploader,
  ],
  // The upload scopes are declared so that the provider grants them rather
  // than dropping them as unknown; the uploader client may ask for them.
  scopes: ['catalog', ...uploadScopes],
  jwks: { keys: [signingKey] },
  features: {
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The catalog may ask about any token.
      allowedPolicy: async () => true,
    },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // No resource requested means no resource: the opaque token of before.
      defaultResource: async () => undefined,
      // Client credentials carry no grant to take a resource from.
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (!resources.has(resourceIndicator)) {
          throw new errors.InvalidTarget();
        }
        return {
          // The scopes this API understands: the token's `scope` is the
          // requested ones filtered by this list.
          scope: uploadScopes.join(' '),
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL: ttl,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: ttl },
  cookies: { keys: ['medallion-test-cookies'] },
});

provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(port, '127.0.0.1', () => {
  // The test waits for this line before it runs medallion.
  console.log(`listening ${issuer}`);
});
