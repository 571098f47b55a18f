//! `fieldauth-emulator`: serves Fentu FSM, Field Nation, Autotask and
//! Patchworks on one loopback port and logs every request.
//!
//! ```text
//! cargo run -p fieldauth-emulator -- --port 8080 --lifetime 30 \
//!     --faults fieldnation:api:revoke-after=3
//! ```

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fieldauth_emulator::cli::{parse_args, USAGE};
use fieldauth_emulator::http::rfc3339_ms;
use fieldauth_emulator::{serve, Emulator, Provider};

/// `println!` that ignores a closed stdout: the emulator keeps serving when
/// whoever started it stops reading its log (a closed pipe would make
/// `println!` panic with "failed printing to stdout: Broken pipe").
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("fieldauth-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.help {
        let _ = write!(std::io::stdout().lock(), "{USAGE}");
        return ExitCode::SUCCESS;
    }
    let config = if cli.epoch_given {
        cli.config.clone()
    } else {
        cli.config.clone().with_wall_clock()
    };
    let addr = SocketAddr::new(cli.bind, cli.port);
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fieldauth-emulator: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);

    say!("fieldauth-emulator listening on http://{addr}");
    for p in Provider::ALL {
        let refresh = match p {
            Provider::Fentu if config.fentu.rotate_refresh_tokens => {
                "; refresh tokens rotate, a replayed one revokes the grant"
            }
            Provider::Fentu => "; refresh tokens do not rotate",
            _ => "",
        };
        say!(
            "  {:<13} http://{addr}{}  (token lifetime {} s){refresh}",
            p.display_name(),
            p.prefix(),
            config.token_lifetime(p)
        );
    }
    let client = &config.fentu.clients[0];
    say!(
        "credentials: client {} / {}; Fentu API key {}; Patchworks API key {}; Patchworks login {} / {}",
        client.client_id,
        client.client_secret.as_deref().unwrap_or("(public)"),
        config.fentu.api_keys.first().map_or("(none)", |k| k.key.as_str()),
        config.patchworks.api_keys.first().map_or("(none)", String::as_str),
        config.patchworks.users[0].username,
        config.patchworks.users[0].password,
    );
    let windows: Vec<String> = config.stats_windows_s.iter().map(u32::to_string).collect();
    say!(
        "counters: GET http://{addr}/_stats (windows {} s), POST http://{addr}/_stats/reset",
        windows.join(", ")
    );
    for rule in &config.faults {
        say!("fault: {rule}");
    }

    let started = Instant::now();
    let mut emulator = Emulator::new(config);
    if !cli.quiet {
        emulator.set_observer(Box::new(move |entry| {
            say!(
                "{} +{:>8.3}s {}",
                rfc3339_ms(entry.epoch_ms),
                started.elapsed().as_secs_f64(),
                entry
            );
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    match serve(listener, Arc::new(Mutex::new(emulator)), stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fieldauth-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
