//! The `parley` server: read the configuration, build the app, serve until stopped.

use std::process::ExitCode;

use parley::{App, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    return_large_allocations_to_the_os();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parley: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("Parley is listening on http://{}", app.local_addr());
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each password hash borrows 19 MiB. glibc raises its mmap threshold after the first such
/// block is freed, and from then on keeps every later one in its heaps: the resident size grew
/// by 19 MiB per login. A fixed threshold makes large blocks go back to the system when freed.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called before any other thread starts
    // allocating large blocks, and a rejected value leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
