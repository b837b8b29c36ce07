//! `sluice completions SHELL` and `sluice man [DIR]`: shell completions and man pages generated
//! from the command line's own definition, so they never drift from `--help` (the Debian
//! package ships both, generated from the built binary).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write sluice.1 and one page per command (sluice-serve.1, ...) into this folder; without
    /// it, sluice.1 goes to standard output.
    dir: Option<PathBuf>,
}

/// Writes `text` to standard output; a reader that went away (`| head`) is not an error.
pub fn print(text: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = crate::Cli::command();
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sluice", &mut text);
    print(&text)
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let command = crate::Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir).with_context(|| format!("cannot write into {}", dir.display()))?;
        }
        None => {
            let mut text = Vec::new();
            clap_mangen::Man::new(command).render(&mut text)?;
            print(&text)?;
        }
    }
    Ok(())
}
