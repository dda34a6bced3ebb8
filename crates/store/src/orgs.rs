//! Organizations and API keys. These are managed from the CLI; the HTTP layer only ever looks a
//! key up by its hash.

use sqlx::Row;
use uuid::Uuid;

use crate::{ApiKeyRecord, OrgId, Organization, Plan, Result, Store, StoreError, from_us, now, parse_id, to_us};

impl Store {
    /// Creates an organization.
    pub async fn create_organization(&self, name: &str, plan: Plan) -> Result<Organization> {
        let org = Organization { id: OrgId(Uuid::now_v7()), name: name.to_owned(), plan, created_at: now() };
        sqlx::query("INSERT INTO organizations (id, name, plan, created_us) VALUES ($1, $2, $3, $4)")
            .bind(org.id.0.to_string())
            .bind(&org.name)
            .bind(plan.as_str())
            .bind(to_us(org.created_at))
            .execute(&self.pool)
            .await?;
        Ok(org)
    }

    /// Reads an organization.
    pub async fn organization(&self, org: OrgId) -> Result<Option<Organization>> {
        let row = sqlx::query("SELECT id, name, plan, created_us FROM organizations WHERE id = $1")
            .bind(org.0.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let plan: String = row.try_get("plan")?;
            Ok(Organization {
                id: OrgId(parse_id(row.try_get("id")?)?),
                name: row.try_get("name")?,
                plan: Plan::parse(&plan).ok_or_else(|| StoreError::Corrupt(format!("plan {plan:?}")))?,
                created_at: from_us(row.try_get("created_us")?)?,
            })
        })
        .transpose()
    }

    /// Stores a new API key by its hash. Fails with `MissingReference` for an unknown org.
    pub async fn create_api_key(&self, org: OrgId, key_hash: &str, key_prefix: &str) -> Result<ApiKeyRecord> {
        if self.organization(org).await?.is_none() {
            return Err(StoreError::MissingReference(format!("organization {} does not exist", org.0)));
        }
        let record = ApiKeyRecord {
            id: Uuid::now_v7(),
            organization_id: org,
            key_prefix: key_prefix.to_owned(),
            created_at: now(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, organization_id, key_hash, key_prefix, created_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(record.id.to_string())
        .bind(org.0.to_string())
        .bind(key_hash)
        .bind(key_prefix)
        .bind(to_us(record.created_at))
        .execute(&self.pool)
        .await?;
        Ok(record)
    }

    /// Revokes the key with this hash; answers whether a live key was revoked.
    pub async fn revoke_api_key(&self, key_hash: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE api_keys SET revoked_us = $1 WHERE key_hash = $2 AND revoked_us IS NULL")
            .bind(to_us(now()))
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The organization a live (unrevoked) key with this hash opens.
    pub async fn organization_for_key(&self, key_hash: &str) -> Result<Option<OrgId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT organization_id FROM api_keys WHERE key_hash = $1 AND revoked_us IS NULL")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
        id.map(|id| parse_id(&id).map(OrgId)).transpose()
    }
}
