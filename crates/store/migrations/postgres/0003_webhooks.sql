-- Webhook endpoints. The signing secret is stored encrypted (the server secret's key,
-- XChaCha20-Poly1305); after a rotation the previous secret keeps signing until it expires.
CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY,
    organization_id            TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                        TEXT NOT NULL,
    description                TEXT NOT NULL,
    events                     TEXT NOT NULL,
    enabled                    BOOLEAN NOT NULL,
    secret_sealed              TEXT NOT NULL,
    previous_secret_sealed     TEXT,
    previous_secret_until_us   BIGINT,
    created_us                 BIGINT NOT NULL,
    updated_us                 BIGINT NOT NULL,
    deleted_us                 BIGINT
);
CREATE UNIQUE INDEX webhook_endpoints_org_url ON webhook_endpoints (organization_id, url) WHERE deleted_us IS NULL;
CREATE INDEX webhook_endpoints_org_id ON webhook_endpoints (organization_id, id);
