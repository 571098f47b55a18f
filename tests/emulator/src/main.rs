//! `fieldauth-emulator`: serves Fentu FSM, Field Nation, Autotask and
//! Patchworks on one loopback port and logs every request.
//!
//! ```text
//! cargo run -p fieldauth-emulator -- --port 8080 --lifetime 30 \
//!     --faults fieldnation:api:revoke-after=3
//! ```

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fieldauth_emulator::cli::{parse_args, USAGE};
use fieldauth_emulator::http::rfc3339_ms;
use fieldauth_emulator::{serve, Emulator, Provider};

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("fieldauth-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.help {
        print!("{USAGE}");
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

    println!("fieldauth-emulator listening on http://{addr}");
    for p in Provider::ALL {
        println!(
            "  {:<13} http://{addr}{}  (token lifetime {} s)",
            p.display_name(),
            p.prefix(),
            config.token_lifetime(p)
        );
    }
    let client = &config.fentu.clients[0];
    println!(
        "credentials: client {} / {}; Fentu API key {}; Patchworks API key {}; Patchworks login {} / {}",
        client.client_id,
        client.client_secret.as_deref().unwrap_or("(public)"),
        config.fentu.api_keys.first().map_or("(none)", |k| k.key.as_str()),
        config.patchworks.api_keys.first().map_or("(none)", String::as_str),
        config.patchworks.users[0].username,
        config.patchworks.users[0].password,
    );
    for rule in &config.faults {
        println!("fault: {rule}");
    }

    let started = Instant::now();
    let mut emulator = Emulator::new(config);
    if !cli.quiet {
        emulator.set_observer(Box::new(move |entry| {
            println!(
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
