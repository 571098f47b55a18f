//! Command-line options of the `fieldauth-emulator` binary, parsed into an
//! [`EmulatorConfig`] (kept in the library so it is tested).

use std::net::IpAddr;

use crate::config::{EmulatorConfig, FentuApiKey, FentuTier, Provider, RateWindow, FENTU_SCOPES};
use crate::fault::FaultRule;

/// The endpoints and demo credentials as one string literal, so that
/// [`USAGE`] can include it with `concat!` and [`ENDPOINTS`] (the index page,
/// `GET /`) is the same text.
macro_rules! endpoints {
    () => {
        "\
ENDPOINTS (one port; each provider's paths follow its prefix, e.g.
           http://127.0.0.1:8080/fieldnation/authentication/api/oauth/token)
  /fentu        Fentu FSM: API keys (Authorization: Bearer KEY) and OAuth 2.0
    GET  /oauth/authorize                   authorization code (+ PKCE): approves at once, redirects
    POST /oauth/token                       authorization_code, refresh_token (form body)
    POST /oauth/revoke                      revocation (Authorization: Bearer TOKEN)
    GET  /v1/work-orders, /v1/customers, /v1/assets   (and /ID; POST to a collection)
  /fieldnation  Field Nation: client credentials, the token as a query parameter
    POST /authentication/api/oauth/token    client_credentials (JSON body)
    GET  /api/rest/v2/workorders[/ID]?access_token=TOKEN
  /autotask     Autotask: client credentials, Authorization: Bearer TOKEN
    POST /ATServicesRest/oauth/token        client_credentials (form body)
    GET  /ATServicesRest/V1.0/Companies, /ATServicesRest/V1.0/Tickets   (and /ID)
  /patchworks   Patchworks: API keys alone in Authorization, or a login
    POST /fabric/api/login                  {\"username\",\"password\"} (JSON body): a 24-hour token
    GET  /core/...                          any path, e.g. /core/v1/flows
  GET  /        this list
  GET  /_stats  counters per provider, JSON: token requests (succeeded, rate limited), refresh-token
                replays, revoked grants, API requests (authorized, rejected, rate limited), and the
                most token / API requests in any sliding window of each --stats-window length
  POST /_stats/reset   answers the counters as they were, then zeroes them

CREDENTIALS (defaults; the options above replace them)
  OAuth client demo-client / demo-secret (Fentu, Field Nation, Autotask)
  Fentu API key fentu-demo-key; Patchworks API key pw-demo-key
  Patchworks login me@patchworks.com / a1b2c3d4e5f6
"
    };
}

/// The endpoints of every provider and the demo credentials (the end of
/// [`USAGE`], and the emulator's index page, `GET /`).
pub const ENDPOINTS: &str = endpoints!();

/// The usage text: options, fault specs, endpoints and credentials.
pub const USAGE: &str = concat!(
    "\
fieldauth-emulator: Fentu FSM, Field Nation, Autotask and Patchworks on one loopback port

USAGE: fieldauth-emulator [OPTIONS]

  --port N                   port to listen on (default 8080; 0 = any free port)
  --bind ADDR                address to bind (default 127.0.0.1)
  --lifetime SECS            access-token lifetime of every provider, seconds
  --lifetime PROVIDER=SECS   ... of one provider (fentu, fieldnation, autotask, patchworks)
  --refresh-lifetime SECS    Fentu refresh-token lifetime (default 2592000 = 30 days)
  --rotate-refresh-tokens    Fentu: a refresh returns a new refresh token and retires the old one;
                             replaying a retired one revokes the whole grant (the default)
  --no-rotate-refresh-tokens Fentu: keep refresh tokens on refresh (no new one, no reuse detection)
                             (--rotate / --no-rotate are short forms)
  --tier TIER                Fentu rate tier: standard (1000/h), professional (10000/h), enterprise
  --fieldnation-expired-400  Field Nation quirk: expired token -> 400 invalid_request \"Expired token\"
  --autotask-window MODE     Autotask limits counted in `sliding` (default) or `fixed` windows
  --client-id ID             OAuth client id of Fentu, Field Nation, Autotask (default demo-client)
  --client-secret SECRET     ... and its secret (default demo-secret)
  --redirect-uri URI         register a Fentu redirect URI (repeatable; default: any absolute URI)
  --fentu-key KEY            a Fentu API key with every non-admin scope (repeatable; replaces fentu-demo-key)
  --patchworks-key KEY       a Patchworks API key (repeatable; replaces pw-demo-key)
  --patchworks-user EMAIL    Patchworks login (default me@patchworks.com)
  --patchworks-password PW   ... and password (default a1b2c3d4e5f6)
  --faults SPEC[,SPEC...]    fault rules (repeatable), each PROVIDER:ENDPOINT:FAULT[:TRIGGER]
  --stats-window SECS        a window length for the /_stats maxima (repeatable; replaces the
                             default 60 and 3600)
  --stats-cap N              most request timestamps one /_stats window counter keeps (default 100000;
                             past it the maxima are lower bounds, `exact`: false)
  --seed N                   PRNG seed (token text, rate-triggered faults)
  --epoch SECS               pretend the server starts at this Unix time (default: now)
  --quiet                    do not log requests
  -h, --help                 this text

FAULT SPECS
  PROVIDER  fentu | fieldnation | autotask | patchworks | all
  ENDPOINT  authorize | token | revoke | api | all
  FAULT     revoke-after=N       tokens revoked server-side after N API calls (then 401)
            429=SECS             429 with Retry-After: SECS
            503=SECS             503 with Retry-After: SECS
            slow=MS[/BYTES]      write BYTES (default 32) at a time, MS apart
            chunked[=BYTES]      Transfer-Encoding: chunked, BYTES per chunk (default 16)
            pieces[=BYTES]       write BYTES (default 1) per write call
            truncate[=BYTES]     close after BYTES of the body (default half)
            malformed[=KIND]     broken JSON in token responses: cut, trailing, bad-escape, html
            limit=N/SECS         API rate limit override
  TRIGGER   always (default) | once | every=N | first=N | after=N | rate=P (0..1, seeded)

  e.g. --faults fieldnation:api:revoke-after=3,autotask:token:429=30:every=3

",
    endpoints!()
);

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Cli {
    /// Address to bind.
    pub bind: IpAddr,
    /// Port to listen on.
    pub port: u16,
    /// The emulator configuration.
    pub config: EmulatorConfig,
    /// `--epoch`: the start time was given (else the binary uses the clock).
    pub epoch_given: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--help`.
    pub help: bool,
}

/// Parses the arguments (without the program name). `--flag=value` and
/// `--flag value` are both accepted.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut cli = Cli {
        bind: IpAddr::from([127, 0, 0, 1]),
        port: 8080,
        config: EmulatorConfig::default(),
        epoch_given: false,
        quiet: false,
        help: false,
    };
    let mut client_id = None;
    let mut client_secret = None;
    let mut redirect_uris = Vec::new();
    let mut fentu_keys = Vec::new();
    let mut patchworks_keys = Vec::new();
    let mut stats_windows = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        let number = |text: String, what: &str| -> Result<u64, String> {
            text.parse::<u64>()
                .map_err(|_| format!("{what}: `{text}` is not a number"))
        };
        match flag.as_str() {
            "-h" | "--help" => cli.help = true,
            "--quiet" | "-q" => cli.quiet = true,
            "--port" => {
                let v = value()?;
                cli.port = v
                    .parse()
                    .map_err(|_| format!("--port: `{v}` is not a port"))?;
            }
            "--bind" => {
                let v = value()?;
                cli.bind = v
                    .parse()
                    .map_err(|_| format!("--bind: `{v}` is not an IP address"))?;
            }
            "--lifetime" => {
                let v = value()?;
                match v.split_once('=') {
                    Some((p, secs)) => {
                        let provider = Provider::from_name(p)
                            .ok_or_else(|| format!("--lifetime: unknown provider `{p}`"))?;
                        let secs = positive(number(secs.to_owned(), "--lifetime")?, "--lifetime")?;
                        cli.config.set_token_lifetime(provider, secs);
                    }
                    None => {
                        cli.config.token_lifetime_s =
                            Some(positive(number(v, "--lifetime")?, "--lifetime")?);
                    }
                }
            }
            "--refresh-lifetime" => {
                cli.config.fentu.refresh_lifetime_s = positive(
                    number(value()?, "--refresh-lifetime")?,
                    "--refresh-lifetime",
                )?;
            }
            "--no-rotate-refresh-tokens" | "--no-rotate" => {
                cli.config.fentu.rotate_refresh_tokens = false;
            }
            "--rotate-refresh-tokens" | "--rotate" => cli.config.fentu.rotate_refresh_tokens = true,
            "--tier" => {
                cli.config.fentu.tier = match value()?.to_ascii_lowercase().as_str() {
                    "standard" => FentuTier::Standard,
                    "professional" => FentuTier::Professional,
                    "enterprise" | "unlimited" => FentuTier::Enterprise,
                    other => return Err(format!("--tier: unknown tier `{other}`")),
                }
            }
            "--fieldnation-expired-400" => cli.config.field_nation.expired_token_quirk = true,
            "--autotask-window" => {
                cli.config.autotask.window = match value()?.as_str() {
                    "sliding" => RateWindow::Sliding,
                    "fixed" => RateWindow::Fixed,
                    other => {
                        return Err(format!("--autotask-window: `{other}` (sliding or fixed)"))
                    }
                }
            }
            "--client-id" => client_id = Some(value()?),
            "--client-secret" => client_secret = Some(value()?),
            "--redirect-uri" => redirect_uris.push(value()?),
            "--fentu-key" => fentu_keys.push(value()?),
            "--patchworks-key" => patchworks_keys.push(value()?),
            "--patchworks-user" => cli.config.patchworks.users[0].username = value()?,
            "--patchworks-password" => cli.config.patchworks.users[0].password = value()?,
            "--faults" | "--fault" => cli.config.faults.extend(FaultRule::parse_list(&value()?)?),
            "--stats-window" => {
                stats_windows.push(positive(
                    number(value()?, "--stats-window")?,
                    "--stats-window",
                )?);
            }
            "--stats-cap" => {
                let cap = positive(number(value()?, "--stats-cap")?, "--stats-cap")?;
                cli.config.stats_cap = cap as usize;
            }
            "--seed" => cli.config.seed = number(value()?, "--seed")?,
            "--epoch" => {
                cli.config.start_epoch_ms = number(value()?, "--epoch")? * 1000;
                cli.epoch_given = true;
            }
            other => return Err(format!("unknown option `{other}` (see --help)")),
        }
    }
    if client_id.is_some() || client_secret.is_some() {
        cli.config.set_client(
            client_id.as_deref().unwrap_or("demo-client"),
            client_secret.as_deref().unwrap_or("demo-secret"),
        );
    }
    if !redirect_uris.is_empty() {
        for client in &mut cli.config.fentu.clients {
            client.redirect_uris = redirect_uris.clone();
        }
    }
    if !fentu_keys.is_empty() {
        cli.config.fentu.api_keys = fentu_keys
            .into_iter()
            .map(|key| FentuApiKey {
                key,
                scopes: FENTU_SCOPES
                    .iter()
                    .filter(|s| **s != "admin")
                    .map(|s| (*s).to_owned())
                    .collect(),
            })
            .collect();
    }
    if !patchworks_keys.is_empty() {
        cli.config.patchworks.api_keys = patchworks_keys;
    }
    if !stats_windows.is_empty() {
        cli.config.stats_windows_s = stats_windows;
    }
    Ok(cli)
}

fn positive(n: u64, what: &str) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{what}: must be between 1 and {}", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Fault, Trigger};

    #[test]
    fn defaults() {
        let cli = parse_args(Vec::<String>::new()).unwrap();
        assert_eq!(cli.port, 8080);
        assert_eq!(cli.bind.to_string(), "127.0.0.1");
        assert_eq!(cli.config, EmulatorConfig::default());
        assert!(!cli.help && !cli.quiet && !cli.epoch_given);
    }

    #[test]
    fn every_flag() {
        let cli = parse_args([
            "--port",
            "0",
            "--bind=127.0.0.2",
            "--lifetime",
            "30",
            "--lifetime",
            "patchworks=5",
            "--refresh-lifetime",
            "60",
            "--no-rotate",
            "--tier",
            "professional",
            "--fieldnation-expired-400",
            "--autotask-window",
            "fixed",
            "--client-id",
            "me",
            "--client-secret",
            "s3",
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
            "--fentu-key",
            "k1",
            "--patchworks-key",
            "p1",
            "--patchworks-user",
            "u@x",
            "--patchworks-password",
            "pw",
            "--faults",
            "fieldnation:api:revoke-after=3,autotask:token:429=30:every=3",
            "--fault=all:all:chunked",
            "--seed",
            "9",
            "--epoch",
            "1700000000",
            "--quiet",
        ])
        .unwrap();
        assert_eq!(cli.port, 0);
        assert_eq!(cli.bind.to_string(), "127.0.0.2");
        let c = &cli.config;
        assert_eq!(c.token_lifetime(Provider::Fentu), 30);
        assert_eq!(c.token_lifetime(Provider::Patchworks), 5);
        assert_eq!(c.fentu.refresh_lifetime_s, 60);
        assert!(!c.fentu.rotate_refresh_tokens);
        assert_eq!(c.fentu.tier, FentuTier::Professional);
        assert!(c.field_nation.expired_token_quirk);
        assert_eq!(c.autotask.window, RateWindow::Fixed);
        assert_eq!(c.fentu.clients[0].client_id, "me");
        assert_eq!(
            c.fentu.clients[0].redirect_uris,
            vec!["http://127.0.0.1:9/cb"]
        );
        assert_eq!(c.field_nation.clients[0].client_secret, "s3");
        assert_eq!(c.autotask.clients[0].client_id, "me");
        assert_eq!(c.fentu.api_keys[0].key, "k1");
        assert_eq!(c.patchworks.api_keys, vec!["p1"]);
        assert_eq!(c.patchworks.users[0].username, "u@x");
        assert_eq!(c.patchworks.users[0].password, "pw");
        assert_eq!(c.faults.len(), 3);
        assert_eq!(c.faults[0].fault, Fault::RevokeAfter(3));
        assert_eq!(c.faults[1].trigger, Trigger::EveryNth(3));
        assert_eq!(c.seed, 9);
        assert_eq!(c.start_epoch_ms, 1_700_000_000_000);
        assert!(cli.epoch_given && cli.quiet);
    }

    /// Every endpoint `--help` (and `GET /`) lists is one the emulator
    /// routes: a request to it gets the provider's answer (401, 400, 302 ...),
    /// never the 404 of an unknown path, and the log names its endpoint.
    #[test]
    fn listed_endpoints_are_routed() {
        use crate::{Emulator, Request};
        let listed = [
            ("/fentu", "GET", "/oauth/authorize"),
            ("/fentu", "POST", "/oauth/token"),
            ("/fentu", "POST", "/oauth/revoke"),
            ("/fentu", "GET", "/v1/work-orders"),
            ("/fentu", "GET", "/v1/customers"),
            ("/fentu", "GET", "/v1/assets"),
            ("/fieldnation", "POST", "/authentication/api/oauth/token"),
            ("/fieldnation", "GET", "/api/rest/v2/workorders"),
            ("/autotask", "POST", "/ATServicesRest/oauth/token"),
            ("/autotask", "GET", "/ATServicesRest/V1.0/Companies"),
            ("/autotask", "GET", "/ATServicesRest/V1.0/Tickets"),
            ("/patchworks", "POST", "/fabric/api/login"),
            ("/patchworks", "GET", "/core/v1/flows"),
        ];
        let mut emu = Emulator::new(EmulatorConfig::default());
        for (prefix, method, path) in listed {
            assert!(
                ENDPOINTS.contains(&format!("  {prefix} ")) && ENDPOINTS.contains(path),
                "{prefix}{path} is not listed"
            );
            let resp = emu.handle(0, &Request::new(method, &format!("{prefix}{path}")));
            assert_ne!(resp.status, 404, "{method} {prefix}{path}");
            let entry = emu.log().last().unwrap();
            assert!(entry.endpoint.is_some(), "{method} {prefix}{path}: {entry}");
        }
        for p in Provider::ALL {
            assert!(ENDPOINTS.contains(&format!("  {} ", p.prefix())), "{p}");
        }
        assert!(USAGE.ends_with(ENDPOINTS) && USAGE.contains("FAULT SPECS"));
        let index = emu.handle(1, &Request::get("/"));
        assert!(index.body_text().contains(ENDPOINTS));
    }

    #[test]
    fn errors_are_explained() {
        for args in [
            vec!["--port"],
            vec!["--port", "x"],
            vec!["--lifetime", "0"],
            vec!["--lifetime", "nobody=5"],
            vec!["--tier", "gold"],
            vec!["--faults", "fentu:api:boom"],
            vec!["--wat"],
        ] {
            assert!(parse_args(args.clone()).is_err(), "{args:?}");
        }
        assert!(parse_args(["-h"]).unwrap().help);
    }
}
