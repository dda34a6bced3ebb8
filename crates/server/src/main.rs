//! The `slotd` binary: parse the command line, then run the chosen subcommand.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = slotd::cli::Cli::parse();
    cli.init_tracing();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(cli.run())
}
