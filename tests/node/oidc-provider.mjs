// A certified OpenID Provider (npm "oidc-provider") for the vc_plugin tests.
// Usage: node oidc-provider.mjs   with env PORT and CLIENTS (JSON array of client metadata).
// Prints "READY <issuer>" once it listens. Test accounts are fixed below; their roles and
// organisation are released through the userinfo endpoint (not the ID token), as certified
// providers do by default.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.CLIENTS || '[]');

const ACCOUNTS = {
  doc: { name: 'Dr. Maria Berg', email: 'maria.berg@praxis-nord.test', roles: ['practitioner'], organisation: 'praxis-nord' },
  desk: { name: 'Tom Empfang', email: 'tom@praxis-nord.test', roles: ['staff'], organisation: 'praxis-nord' },
  boss: { name: 'Anna Admin', email: 'anna@praxis-nord.test', roles: ['admin', 'practitioner'], organisation: 'praxis-nord' },
  south: { name: 'Dr. Sam Süd', email: 'sam@praxis-sued.test', roles: ['practitioner'], organisation: 'praxis-sued' },
  nobody: { name: 'Nora Niemand', email: 'nora@praxis-nord.test', roles: [], organisation: 'praxis-nord' },
};

const provider = new Provider(issuer, {
  clients,
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'roles', 'organisation'],
    email: ['email', 'email_verified'],
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: ['vc-plugin-test-cookie-key'] },
  async findAccount(ctx, sub) {
    const account = ACCOUNTS[sub] || { name: sub, email: `${sub}@example.test`, roles: [], organisation: 'praxis-nord' };
    return {
      accountId: sub,
      async claims() {
        return { sub, ...account, email_verified: true };
      },
    };
  },
});
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
