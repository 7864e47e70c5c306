use std::error::Error;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use roster::settings::{self, JwtSettings, Settings};
use roster::startup::Application;

/// Organizations, memberships and role-based access for multi-tenant SaaS.
#[derive(Parser)]
#[command(name = "roster", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the HTTP API on BIND_ADDR (the default command).
    Serve,
    /// Apply pending migrations from sql/migrations, creating the database if it is missing.
    Migrate,
    /// Print a signed token (HS256, JWT_SECRET) for a user, or with --service and --tenant for
    /// a service of a tenant (it may check, explain and look up access for the tenant's users,
    /// and register the tenant's permissions).
    Token {
        /// The user's id (the token's `sub`).
        #[arg(long, required_unless_present = "service", conflicts_with_all = ["service", "tenant"])]
        user: Option<Uuid>,
        /// A service's name (`sub` = `service:NAME`).
        #[arg(long, requires = "tenant")]
        service: Option<String>,
        /// The service's tenant (`tid`).
        #[arg(long, requires = "service")]
        tenant: Option<Uuid>,
        /// An organization id to record in a user's token (informational only).
        #[arg(long, conflicts_with = "service")]
        org: Option<Uuid>,
        /// Lifetime in seconds, at most JWT_MAX_LIFETIME_SECONDS [default: 3600, or that
        /// maximum if lower].
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Create a demo tenant, users and organization if the database has no tenant, and print a
    /// curl line to try the API with.
    Demo,
    /// Signing keys of Roster's access tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new Ed25519 private key (PKCS#8 PEM) for TOKEN_SIGNING_KEY. For RS256, make an
    /// RSA key with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`.
    Generate,
}

#[tokio::main]
async fn main() -> ExitCode {
    // tokio-postgres logs every server NOTICE (e.g. refinery's "already exists, skipping").
    // The Redis cluster client logs each failed attempt to reach a node down, hundreds a
    // second under load; the cache says so once per outage, with the cause.
    let filter = "info,tokio_postgres=warn,refinery_core=warn,redis=off";
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter)).init();
    let result = match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate => migrate().await,
        Command::Token {
            user,
            service,
            tenant,
            org,
            ttl,
        } => token(user, service.zip(tenant), org, ttl),
        Command::Demo => demo().await,
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            print!("{}", roster::tokens::generate_ed25519_pem());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", roster::error::cause_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn migrate() -> Result<(), Box<dyn Error>> {
    let applied = roster::migrate(&settings::database_url_from_env()?).await?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for migration in applied {
        println!("applied {migration}");
    }
    Ok(())
}

async fn serve() -> Result<(), Box<dyn Error>> {
    let settings = Settings::from_env()?;
    for migration in roster::migrate(&settings.database_url).await? {
        log::info!("applied migration {migration}");
    }
    let host = settings
        .bind_addr
        .rsplit_once(':')
        .map_or("", |(host, _)| host)
        .to_owned();
    let app = Application::build(settings).await?;
    log::info!("serving on {host}:{} (port {})", app.port(), app.port());
    app.run_until_stopped().await?;
    Ok(())
}

fn token(
    user: Option<Uuid>,
    service: Option<(String, Uuid)>,
    org: Option<Uuid>,
    ttl: Option<u64>,
) -> Result<(), Box<dyn Error>> {
    let settings = JwtSettings::from_env()?;
    let ttl = ttl.unwrap_or(settings.max_lifetime_seconds.min(3600));
    let token = match (user, service) {
        (Some(user), _) => roster::auth::issue_token(&settings, user, org, ttl)?,
        (None, Some((name, tenant))) => {
            roster::auth::issue_service_token(&settings, &name, tenant, ttl)?
        }
        (None, None) => return Err("give --user, or --service and --tenant".into()),
    };
    println!("{token}");
    Ok(())
}

async fn demo() -> Result<(), Box<dyn Error>> {
    let jwt: JwtSettings = JwtSettings::from_env()?;
    migrate().await?;
    let demo = roster::demo::seed(&settings::database_url_from_env()?).await?;
    let ttl = jwt.max_lifetime_seconds.min(24 * 3600);
    let token = roster::auth::issue_token(&jwt, demo.owner, Some(demo.organization), ttl)?;
    let bind_addr =
        std::env::var("BIND_ADDR").unwrap_or_else(|_| roster::settings::DEFAULT_BIND_ADDR.into());
    println!("{}", demo.describe());
    println!("Paste these into another shell (the token is Ada's, valid {ttl} s):");
    println!("  {}", demo.exports());
    println!("  export TOKEN={token}");
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" http://{bind_addr}/organizations/$ORG/members"
    );
    Ok(())
}
