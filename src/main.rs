//! The `finalping` binary: parse the command line, run it on a multi-thread
//! tokio runtime, map the outcome to an exit code. Everything else is in the
//! library.

use clap::Parser;
use finalping::error::exit;

fn main() {
    // Bad flags exit 3 (usage error), as documented; --help/--version exit 0.
    let cli = match finalping::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::PASS
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::INTERNAL);
        }
    };
    let code = match runtime.block_on(finalping::commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.code
        }
    };
    // Do not wait for lingering connection tasks: the reports are written.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    std::process::exit(code);
}

/// One log line on its way to stderr: collected, then written scrubbed of
/// URLs' secrets and of the process's registered secrets (`secret::register`).
#[derive(Default)]
struct ScrubbedStderr(Vec<u8>);

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedStderr {
    fn drop(&mut self) {
        let line = finalping::secret::scrub_registered(&String::from_utf8_lossy(&self.0));
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
}

/// Logs go to stderr, scrubbed of secrets: warnings by default (also with `-q`: they say whether
/// results can be trusted), `-v` info, `-vv` debug (each failed connect with
/// its reason), `-vvv` trace; `RUST_LOG` overrides. Colour only when stderr is a terminal; `--log-format json`
/// writes one JSON object per line.
fn init_logging(verbose: u8, format: finalping::cli::LogFormat) {
    use std::io::IsTerminal;
    let level = match verbose {
        0 => "warn",
        1 => "warn,finalping=info",
        2 => "warn,finalping=debug",
        _ => "info,finalping=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level))
        // tungstenite traces the raw handshake request, whose URL carries tokens.
        .add_directive("tungstenite=off".parse().unwrap_or_default())
        .add_directive("tokio_tungstenite=off".parse().unwrap_or_default());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbedStderr::default)
        .with_target(false);
    match format {
        finalping::cli::LogFormat::Json => builder.json().init(),
        finalping::cli::LogFormat::Text => {
            builder.with_ansi(std::io::stderr().is_terminal()).init()
        }
    }
}
