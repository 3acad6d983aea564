//! Carries out each sub-command: turns parsed flags into library calls and a
//! process exit code. User-facing messages are formed here; the library
//! returns typed errors.

mod capacity;
mod child;
mod compare;
mod deploy;
mod embedded;
mod merge;
mod report_cmd;
mod run;
mod runtime_setup;
mod saas;
#[cfg(feature = "emulator")]
mod serve;
#[cfg(all(unix, feature = "emulator"))]
mod serve_workers;
#[cfg(all(not(unix), feature = "emulator"))]
mod serve_workers {
    //! `serve --workers` needs SO_REUSEPORT (Linux, macOS, the BSDs).
    use crate::emulator_config::EmulatorConfig;
    use crate::error::CliError;
    use std::net::SocketAddr;

    fn unsupported() -> CliError {
        CliError::usage("--workers needs SO_REUSEPORT (Linux, macOS, the BSDs)")
    }

    pub async fn supervise(_: EmulatorConfig, _: SocketAddr, _: u32) -> Result<i32, CliError> {
        Err(unsupported())
    }

    pub async fn worker(_: SocketAddr, _: u32) -> Result<i32, CliError> {
        Err(unsupported())
    }
}
mod signals;
mod start;
mod sweep;
mod validate;
mod workers;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Runs the parsed command; `Ok(code)` is the process exit code.
pub async fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Run(mut args) => {
            args.quiet = quiet || args.json;
            insecure(&args.common);
            run::run(args).await
        }
        #[cfg(feature = "emulator")]
        Command::Serve(args) => serve::serve(args).await,
        #[cfg(not(feature = "emulator"))]
        Command::Serve(_) => Err(CliError::usage(format!(
            "`finalping serve` is not in this build: {}",
            embedded::NOT_BUILT
        ))),
        Command::Validate(args) => validate::validate(&args),
        Command::Sweep(mut args) => {
            args.quiet = quiet;
            insecure(&args.common);
            sweep::sweep(args).await
        }
        Command::Capacity(mut args) => {
            args.quiet = quiet;
            insecure(&args.common);
            capacity::capacity(args).await
        }
        Command::Compare(args) => compare::compare(&args),
        Command::Report(args) => report_cmd::report(&args),
        Command::Merge(mut args) => {
            args.quiet = quiet;
            merge::merge(&args)
        }
        Command::Deploy(target) => deploy::deploy(target),
        Command::Completions(args) => completions(args.shell),
        Command::Schema => {
            println!("{}", crate::scenario::schema::json_schema_text());
            Ok(crate::error::exit::PASS)
        }
    }
}

/// `--insecure` of the commands that open connections.
fn insecure(common: &crate::cli::TargetArgs) {
    if common.insecure {
        crate::tls::set_insecure(true);
        eprintln!(
            "warning: --insecure: TLS certificates are NOT verified; anyone on the path can read this traffic"
        );
    }
}

/// `finalping completions <shell>`: the completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<i32, CliError> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "finalping", &mut std::io::stdout());
    Ok(crate::error::exit::PASS)
}
