//! The command line: `civicmap serve | migrate | demo | token | districts | addresses | import |
//! export | retention | db | backup | restore`, one file per command group.

mod addresses;
mod database;
mod demo;
mod districts;
mod export;
mod import;
mod release;
mod retention;
mod serve;
mod tokens;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use addresses::AddressesCommand;
use database::{BackupArgs, DbArgs, DbCommand, RestoreArgs};
use demo::DemoArgs;
use districts::DistrictsCommand;
use export::ExportArgs;
use import::ImportArgs;
use retention::RetentionCommand;
use serve::ServeArgs;
use tokens::TokenCommand;

/// civicmap: an embeddable collaborative map for cities.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CIVICMAP_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API, the tiles and the widget.
    Serve(ServeArgs),
    /// Apply pending database migrations.
    Migrate(DbArgs),
    /// Load the demo campaign "fibre-pour-tous" (Nanterre) if it is not there yet.
    Demo(DemoArgs),
    /// Staff API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// A campaign's districts.
    #[command(subcommand)]
    Districts(DistrictsCommand),
    /// The national address file (Base Adresse Nationale) for the address search.
    #[command(subcommand)]
    Addresses(AddressesCommand),
    /// Import paper forms or legacy data (CSV or GeoJSON) into a campaign: every row is
    /// checked like the API checks a submission, and nothing is stored unless all are accepted.
    Import(ImportArgs),
    /// Write a campaign's aggregates (or, with --raw, every published submission) as the API
    /// serves them.
    Export(ExportArgs),
    /// Coarsen the exact data of campaigns past their retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Release a campaign's figures finer than a district now (without a campaign: every
    /// release due, as `serve` does every minute).
    Release(release::ReleaseArgs),
    /// The embedded PostgreSQL cluster (used when DATABASE_URL is not set).
    #[command(subcommand)]
    Db(DbCommand),
    /// Write the whole database to FILE with pg_dump (custom format). The file holds exact
    /// points: keep it as safely as the database, and rotate it within the campaigns'
    /// retention.
    Backup(BackupArgs),
    /// Replace the database's content with a backup made by `civicmap backup`, in one
    /// transaction, then apply this version's migrations. Stop the civicmap servers first.
    Restore(RestoreArgs),
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("civicmap=info,tower_http=info,sqlx=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Migrate(db) => database::migrate(db).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Token(command) => tokens::run(command).await,
        Command::Districts(command) => districts::run(command).await,
        Command::Addresses(command) => addresses::run(command).await,
        Command::Import(args) => import::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Retention(command) => retention::run(command).await,
        Command::Release(args) => release::run(args).await,
        Command::Db(command) => database::run(command).await,
        Command::Backup(args) => database::backup(args).await,
        Command::Restore(args) => database::restore(args).await,
    }
}
