/**
 * The files of a LemonLDAP::NG instance started by a test
 * (test/helpers/lemonldap.ts): its configuration, its local configuration
 * and the nginx in front of it, all pointing at one temporary directory.
 */
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'

export const PORTAL_ROOT = '/usr/share/lemonldap-ng/portal/htdocs'
const TEMPLATES = '/usr/share/lemonldap-ng/portal/templates'

export interface LemonLdapClient {
  readonly clientId: string
  readonly clientSecret: string
  readonly redirectUris: readonly string[]
  readonly postLogoutRedirectUris: readonly string[]
  /**
   * Relying-party options over the lane's (`oidcRPMetaDataOptions…` without
   * the prefix: `{ IDTokenSignAlg: 'HS512' }`).
   */
  readonly options?: Readonly<Record<string, string | number>>
  /** Claims over the lane's (`oidcRPMetaDataExportedVars`): claim name to LL::NG's `attribute;type;array`. */
  readonly claims?: Readonly<Record<string, string>>
}

export interface LemonLdapOptions {
  /**
   * The relying party registered for Gatehouse: confidential, offline
   * access allowed, PKCE required, the client-credentials grant allowed.
   */
  readonly client: LemonLdapClient
  /** More relying parties, each registered under its client id, with the same defaults as `client`. */
  readonly clients?: readonly LemonLdapClient[]
  /** Access-token lifetime in seconds (`oidcRPMetaDataOptionsAccessTokenExpiration`). */
  readonly accessTokenTtl: number
}

/**
 * The whole configuration (`lmConf-1.json`): every value we rely on is set
 * here, so a change in the package's defaults cannot change the test.
 */
export function portalConfig(dir: string, port: number, options: LemonLdapOptions, rsSecret: string) {
  const { client, clients: extra = [] } = options
  const sessions = join(dir, 'sessions')
  return {
    cfgNum: 1,
    cfgVersion: '2.16.1',
    cfgAuthor: 'gatehouse tests',
    cfgDate: String(Math.floor(Date.now() / 1000)),
    portal: `http://127.0.0.1:${port}/`,
    domain: '127.0.0.1',
    cookieName: 'lemonldap',
    securedCookie: 0,
    authentication: 'Demo',
    userDB: 'Same',
    passwordDB: 'Demo',
    registerDB: 'Null',
    demoExportedVars: { cn: 'cn', mail: 'mail', uid: 'uid' },
    exportedVars: {},
    locationRules: { '127.0.0.1': { default: 'accept' } },
    loginHistoryEnabled: 0,
    notification: 0,
    portalDisplayRegister: 0,
    captcha_register_enabled: 0,
    captcha_mail_enabled: 0,
    globalStorage: 'Apache::Session::File',
    globalStorageOptions: {
      Directory: sessions,
      LockDirectory: join(sessions, 'lock'),
      generateModule: 'Lemonldap::NG::Common::Apache::Session::Generate::SHA256',
    },
    // No local session cache: the package default is a Cache::FileCache under
    // /var/cache (system-wide), and with any cache a session deleted from the
    // store stays usable by the portal until the cache entry expires (600 s).
    localSessionStorage: '',
    issuerDBOpenIDConnectActivation: 1,
    oidcServiceKeyIdSig: 'gatehouse-test-1',
    ...signingKeys(),
    oidcRPMetaDataOptions: {
      gatehouse: relyingParty(client, options.accessTokenTtl),
      ...Object.fromEntries(extra.map((c) => [c.clientId, relyingParty(c, options.accessTokenTtl)])),
      'orders-api': {
        oidcRPMetaDataOptionsClientID: 'orders-api',
        oidcRPMetaDataOptionsClientSecret: rsSecret,
        oidcRPMetaDataOptionsIDTokenSignAlg: 'RS256',
      },
    },
    oidcRPMetaDataExportedVars: {
      gatehouse: { ...LANE_CLAIMS, ...client.claims },
      ...Object.fromEntries(extra.map((c) => [c.clientId, { ...LANE_CLAIMS, ...c.claims }])),
      'orders-api': {},
    },
  }
}

/** A new RSA key pair for the OP's signatures, as LemonLDAP::NG's configuration holds it. */
export function signingKeys(): { oidcServicePrivateKeySig: string; oidcServicePublicKeySig: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  return { oidcServicePrivateKeySig: privateKey, oidcServicePublicKeySig: publicKey }
}

const LANE_CLAIMS = { name: 'cn', email: 'mail', preferred_username: 'uid' }

/** One relying party: confidential, offline access allowed, PKCE required, the client-credentials grant allowed. */
function relyingParty(client: LemonLdapClient, accessTokenTtl: number): Record<string, string | number> {
  const own = Object.entries(client.options ?? {}).map(([name, value]) => [
    `oidcRPMetaDataOptions${name}`,
    value,
  ])
  return {
    oidcRPMetaDataOptionsClientID: client.clientId,
    oidcRPMetaDataOptionsClientSecret: client.clientSecret,
    oidcRPMetaDataOptionsRedirectUris: client.redirectUris.join(' '),
    oidcRPMetaDataOptionsPostLogoutRedirectUris: client.postLogoutRedirectUris.join(' '),
    // The package's default is HS512, keyed with the client secret.
    oidcRPMetaDataOptionsIDTokenSignAlg: 'RS256',
    oidcRPMetaDataOptionsAccessTokenExpiration: accessTokenTtl,
    // Advertises the refresh_token grant and issues online refresh tokens;
    // AllowOffline lets offline_access (with prompt=consent, OIDC Core §11)
    // get a refresh token that outlives the SSO session.
    oidcRPMetaDataOptionsRefreshToken: 1,
    oidcRPMetaDataOptionsAllowOffline: 1,
    oidcRPMetaDataOptionsRequirePKCE: 1,
    // For token: client routes; without it the grant is 400 unauthorized_client.
    oidcRPMetaDataOptionsAllowClientCredentialsGrant: 1,
    ...Object.fromEntries(own),
  }
}

/** The local configuration (`lemonldap-ng.ini`) that points every component at our files. */
export function localIni(dir: string): string {
  return `[all]
logLevel = notice
; Std: to the FastCGI server's stderr, which we read; the default for
; FastCGI is syslog.
logger = Lemonldap::NG::Common::Logger::Std
checkTime = 600

[configuration]
type = File
dirName = ${join(dir, 'conf')}

[portal]
staticPrefix = /static
templateDir = ${TEMPLATES}
languages = en
`
}

/**
 * The file nginx's server block includes: empty, or a location that answers
 * the token endpoint in the portal's place (`cannedTokenAnswer`).
 */
export const TOKEN_ENDPOINT_CONF = 'token-endpoint.conf'

/** An answer nginx gives token requests instead of the portal: one LemonLDAP::NG never gives itself. */
export interface CannedTokenAnswer {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/**
 * The location that gives `answer` to every token request. The portal's
 * rewrite makes the path `/index.psgi/oauth2/token` before locations are
 * matched, and an exact match wins over the FastCGI one.
 */
export function cannedTokenAnswer(answer: CannedTokenAnswer): string {
  // nginx reads `$` in a string as a variable and has no escape for it.
  if (answer.body.includes('$')) throw new Error('a canned body cannot hold $')
  const quoted = answer.body.replace(/[\\']/g, (c) => `\\${c}`)
  return `location = /index.psgi/oauth2/token {
  default_type ${answer.contentType};
  return ${answer.status} '${quoted}';
}
`
}

/**
 * nginx in front of the FastCGI server, after the package's
 * /etc/lemonldap-ng/portal-nginx.conf, on loopback only, with every path it
 * writes in our directory. The access log has the method, the path without
 * its query and the status: what counting calls needs, and no parameter.
 * `user` is the one its workers run as when it is started as root.
 */
export function nginxConf(dir: string, port: number, user: string | undefined): string {
  const tmp = join(dir, 'nginx')
  return `${user ? `user ${user};\n` : ''}worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  map $request_uri $path_only { ~^(?<p>[^?]*) $p; }
  log_format calls '$request_method $path_only $status';
  access_log ${join(dir, 'access.log')} calls;
  client_body_temp_path ${tmp}/body;
  fastcgi_temp_path ${tmp}/fastcgi;
  proxy_temp_path ${tmp}/proxy;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  server {
    listen 127.0.0.1:${port};
    include ${join(dir, TOKEN_ENDPOINT_CONF)};
    root ${PORTAL_ROOT}/;
    if ($uri !~ ^/((static|javascript|favicon).*|.*\\.psgi)) {
      rewrite ^/(.*)$ /index.psgi/$1 break;
    }
    location ~ ^(?<sc>/.*\\.psgi)(?:$|/) {
      include /etc/nginx/fastcgi_params;
      fastcgi_pass unix:${join(dir, 'fastcgi.sock')};
      fastcgi_param LLTYPE psgi;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_split_path_info ^(.*\\.psgi)(/.*)$;
      fastcgi_param PATH_INFO $fastcgi_path_info;
    }
    location /static/ { alias ${PORTAL_ROOT}/static/; }
    location /javascript/ { alias /usr/share/javascript/; }
  }
}
`
}
