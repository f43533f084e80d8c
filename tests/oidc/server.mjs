// The OpenID Connect server of the production tests (npm oidc-provider):
// client-credentials tokens for medallion that live OIDC_TOKEN_TTL seconds,
// and token introspection for the catalog proxy that checks them. Tokens
// are kept in memory, as a restarted identity provider with a fresh store
// would; the proxy remembers what it already checked.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const ttl = Number(process.env.OIDC_TOKEN_TTL);
const issuer = `http://127.0.0.1:${port}`;

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
  ],
  scopes: ['catalog'],
  features: {
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The catalog may ask about any token.
      allowedPolicy: async () => true,
    },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: ttl },
  cookies: { keys: ['medallion-test-cookies'] },
});

provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(port, '127.0.0.1', () => {
  // The test waits for this line before it runs medallion.
  console.log(`listening ${issuer}`);
});
