//! The `slotd` binary: parse the command line, then run the chosen subcommand.

use clap::Parser;

/// mimalloc instead of the system allocator: request handling allocates many small, short-lived
/// buffers from several threads, where glibc's malloc showed up as lock contention in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = slotd::cli::Cli::parse();
    cli.init_tracing();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(cli.run())
}
