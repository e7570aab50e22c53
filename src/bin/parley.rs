//! The `parley` command: serve (the default), migrate, back up, and administer accounts. It
//! reads the configuration and calls the library; what each command does lives there.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use parley::config::LogFormat;
use parley::domain::User;
use parley::{App, Config};
use tracing_subscriber::EnvFilter;

/// A real-time chat server. With no command, `serve`. Every command reads the same
/// configuration (parley.toml, PARLEY_* and DATABASE_URL; see the README).
#[derive(Parser)]
#[command(name = "parley", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the WebSockets and the web client (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Copy the live SQLite database to PATH, consistently, while servers run
    /// (on PostgreSQL, use pg_dump).
    Backup {
        /// The copy to write; an existing file is never overwritten.
        path: PathBuf,
    },
    /// Manage accounts.
    #[command(subcommand)]
    Admin(Admin),
    /// Print every setting: its environment variables, `parley.toml` key, default and meaning,
    /// as the Markdown table of the README.
    Config,
}

/// Account commands. A password is read from standard input (one line), or asked for at a
/// terminal without echo; it is never an argument, which other users could see in `ps`.
#[derive(Subcommand)]
enum Admin {
    /// Create an account (password from standard input).
    CreateUser { username: String, email: String },
    /// Set a new password for an account (password from standard input).
    ResetPassword {
        /// The account's username or email.
        username: String,
    },
    /// List every account.
    ListUsers,
    /// Disable an account: it cannot log in and its tokens stop working.
    DisableUser {
        /// The account's username or email.
        username: String,
    },
    /// Enable a disabled account again.
    EnableUser {
        /// The account's username or email.
        username: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Config)) {
        print!("{}", parley::config::settings_table());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parley: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => return serve(config).await,
        Command::Migrate => parley::app::migrate(&config)
            .await
            .map(|()| println!("migrations applied")),
        Command::Backup { path } => parley::app::backup(&config, &path)
            .await
            .map(|()| println!("backed up to {}", path.display())),
        Command::Admin(command) => admin(&config, command).await,
        Command::Config => unreachable!("answered before the configuration is read"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parley: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    return_large_allocations_to_the_os();
    init_logging(&config);
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

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

async fn admin(config: &Config, command: Admin) -> anyhow::Result<()> {
    let (admin, storage) = parley::app::admin(config).await?;
    let done = match command {
        Admin::CreateUser { username, email } => {
            let password = read_password()?;
            admin
                .create_user(&username, &email, &password)
                .await
                .map(|u| println!("created {} (id {})", u.username.as_str(), u.id))
        }
        Admin::ResetPassword { username } => {
            let password = read_password()?;
            admin
                .reset_password(&username, &password)
                .await
                .map(|u| println!("new password set for {}", u.username.as_str()))
        }
        Admin::ListUsers => admin.list_users().await.map(|users| print_users(&users)),
        Admin::DisableUser { username } => admin
            .disable_user(&username)
            .await
            .map(|u| println!("disabled {}", u.username.as_str())),
        Admin::EnableUser { username } => admin
            .enable_user(&username)
            .await
            .map(|u| println!("enabled {}", u.username.as_str())),
    };
    storage.close().await;
    Ok(done?)
}

/// A password from standard input: asked for twice without echo at a terminal, else its first
/// line.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !password.is_empty(),
        "no password on standard input (e.g. `printf '%s\\n' \"$PASSWORD\" | parley admin ...`)"
    );
    Ok(password.to_owned())
}

fn print_users(users: &[User]) {
    println!(
        "{:>6}  {:<32}  {:<40}  {:<8}  {:<20}  LAST SEEN",
        "ID", "USERNAME", "EMAIL", "STATUS", "CREATED"
    );
    for u in users {
        let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        println!(
            "{:>6}  {:<32}  {:<40}  {:<8}  {:<20}  {}",
            u.id,
            u.username.as_str(),
            u.email.as_str(),
            if u.disabled { "disabled" } else { "active" },
            time(u.created_at),
            u.last_seen.map_or_else(|| "-".to_owned(), time),
        );
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
