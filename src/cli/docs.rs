//! Shell completions and manual pages, generated from the command line itself so that
//! they cannot drift from it. `scripts/dist.sh` writes them next to a release binary.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Command;
use clap_complete::Shell;

/// Prints the completion script of `shell` for `cmd`.
pub fn completions(mut cmd: Command, shell: Shell) -> ExitCode {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, &mut io::stdout());
    ExitCode::SUCCESS
}

/// Prints the manual page of `cmd` in roff, or of one of its subcommands (named
/// `<binary>-<subcommand>`, as git names its pages).
pub fn man(cmd: Command, subcommand: Option<&str>) -> ExitCode {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    // A subcommand's page names the program and its version, as the main page does.
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    let page = match subcommand {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let known: Vec<&str> = cmd.get_subcommands().map(Command::get_name).collect();
                eprintln!(
                    "man: no command {name:?}; the commands are {}",
                    known.join(", ")
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let mut out = io::stdout().lock();
    match clap_mangen::Man::new(page)
        .source(source)
        .render(&mut out)
        .and_then(|()| out.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        // `... man | head`: the reader has what it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("man: cannot write the page: {e}");
            ExitCode::FAILURE
        }
    }
}
