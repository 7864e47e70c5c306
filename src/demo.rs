//! Demo data for `make run`: a tenant, four users and an organization, created through the
//! same `roster.*` functions a DBA would call. Idempotent: reuses what already exists.

use std::fmt::Write as _;

use tokio_postgres::{GenericClient, NoTls};
use uuid::Uuid;

pub struct Demo {
    pub tenant: Uuid,
    pub organization: Uuid,
    pub owner: Uuid,
    pub owner_email: String,
    /// (email, id, role in the organization or None) for each demo user.
    pub users: Vec<(String, Uuid, Option<&'static str>)>,
}

const TENANT_SLUG: &str = "demo";
const ORG_SLUG: &str = "acme";
/// (email, display name, role in the demo organization, shell variable for its id)
const USERS: [(&str, &str, Option<&str>, &str); 4] = [
    ("ada@demo.test", "Ada (owner)", Some("owner"), "ADA"),
    ("grace@demo.test", "Grace (admin)", Some("admin"), "GRACE"),
    ("linus@demo.test", "Linus (member)", Some("member"), "LINUS"),
    (
        "barbara@demo.test",
        "Barbara (not yet a member)",
        None,
        "BARBARA",
    ),
];

pub async fn seed(database_url: &str) -> Result<Demo, tokio_postgres::Error> {
    let (mut client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let connection = tokio::spawn(connection);
    let transaction = client.transaction().await?;
    let demo = seed_in(&transaction).await?;
    transaction.commit().await?;
    drop(client);
    let _ = connection.await;
    Ok(demo)
}

async fn seed_in(client: &impl GenericClient) -> Result<Demo, tokio_postgres::Error> {
    let tenant: Uuid = match client
        .query_opt(
            "select id from roster.tenants where slug = $1",
            &[&TENANT_SLUG],
        )
        .await?
    {
        Some(row) => row.try_get("id")?,
        None => client
            .query_one(
                "select roster.create_tenant($1, 'Demo tenant') as id",
                &[&TENANT_SLUG],
            )
            .await?
            .try_get("id")?,
    };
    let mut users = Vec::new();
    for (email, name, role, _) in USERS {
        let existing = client
            .query_opt(
                "select id from roster.users where tenant_id = $1 and lower(email) = $2 and deleted_at is null",
                &[&tenant, &email],
            )
            .await?;
        let id: Uuid = match existing {
            Some(row) => row.try_get("id")?,
            None => client
                .query_one(
                    "select roster.create_user($1, $2, $3) as id",
                    &[&tenant, &email, &name],
                )
                .await?
                .try_get("id")?,
        };
        users.push((email.to_owned(), id, role));
    }
    let owner = users[0].1;
    let existing = client
        .query_opt(
            "select id from roster.organizations where tenant_id = $1 and slug = $2 and deleted_at is null",
            &[&tenant, &ORG_SLUG],
        )
        .await?;
    let organization: Uuid = match existing {
        Some(row) => row.try_get("id")?,
        None => {
            let id: Uuid = client
                .query_one(
                    "select id from roster.create_organization($1, 'Acme', $2, 'The demo organization')",
                    &[&owner, &ORG_SLUG],
                )
                .await?
                .try_get("id")?;
            for (_, user, role) in &users[1..] {
                if let Some(role) = role {
                    client
                        .execute(
                            "select roster.add_member($1, $2, $3, $4)",
                            &[&owner, &id, user, role],
                        )
                        .await?;
                }
            }
            id
        }
    };
    Ok(Demo {
        tenant,
        organization,
        owner,
        owner_email: users[0].0.clone(),
        users,
    })
}

impl Demo {
    /// `export ADA=... ORG=...`: the ids the README's curl examples use.
    pub fn exports(&self) -> String {
        let mut line = String::from("export");
        for ((_, id, _), (_, _, _, variable)) in self.users.iter().zip(USERS) {
            let _ = write!(line, " {variable}={id}");
        }
        let _ = write!(line, " ORG={}", self.organization);
        line
    }

    /// The demo users, their ids and roles.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "Demo tenant {}; organization acme = {}\n",
            self.tenant, self.organization
        );
        for (email, id, role) in &self.users {
            let _ = writeln!(
                text,
                "  {email:<20} {id}  {}",
                role.unwrap_or("not a member")
            );
        }
        text
    }
}
