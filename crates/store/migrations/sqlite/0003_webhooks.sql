-- Webhook endpoints. The signing secret is stored encrypted (the server secret's key,
-- XChaCha20-Poly1305); after a rotation the previous secret keeps signing until it expires.
CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY,
    organization_id            TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                        TEXT NOT NULL,
    description                TEXT NOT NULL,
    events                     TEXT NOT NULL,
    enabled                    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    secret_sealed              TEXT NOT NULL,
    previous_secret_sealed     TEXT,
    previous_secret_until_us   INTEGER,
    created_us                 INTEGER NOT NULL,
    updated_us                 INTEGER NOT NULL,
    deleted_us                 INTEGER
);
CREATE UNIQUE INDEX webhook_endpoints_org_url ON webhook_endpoints (organization_id, url) WHERE deleted_us IS NULL;
CREATE INDEX webhook_endpoints_org_id ON webhook_endpoints (organization_id, id);
