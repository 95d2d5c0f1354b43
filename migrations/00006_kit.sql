-- +goose Up
-- What the joint-operation (联营) Kit interfaces sync to the seller (docs/koogallery.md, "Kit interfaces"): the
-- buyer's tenant, the application credential, the authorised users and the organisation units, each tied to the
-- instance they were synced for. Written by the Kit endpoints (api/kit) through internal/store.
--
-- There is no foreign key to instances: a delete must succeed whether or not the instance exists, and a call may
-- arrive while the instance is still only in koogallery_inbox. test_flag leads every key, so the marketplace's
-- test calls (testFlag 1, often without an instanceId) never touch production rows. synced_at is the call's
-- timeStamp (UTC+8 on the wire, stored as UTC); a row is only overwritten by a call at least as new.
CREATE TABLE kit_tenants (
    test_flag    boolean NOT NULL,
    instance_id  text NOT NULL,
    tenant_id    text NOT NULL,
    order_id     text NOT NULL DEFAULT '',
    tenant_code  text NOT NULL DEFAULT '',
    name         text NOT NULL DEFAULT '',
    domain_name  text NOT NULL DEFAULT '',
    synced_at    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (test_flag, instance_id, tenant_id)
);
CREATE INDEX kit_tenants_tenant_idx ON kit_tenants (tenant_id);

-- client_secret is the marketplace's ciphertext as received (RSA-OAEP under the seller's Kit key): it is
-- encrypted at rest by construction and decrypted only where it is used.
CREATE TABLE kit_applications (
    test_flag      boolean NOT NULL,
    instance_id    text NOT NULL,
    tenant_id      text NOT NULL,
    app_id         text NOT NULL,
    client_id      text NOT NULL DEFAULT '',
    client_secret  text NOT NULL DEFAULT '',
    synced_at      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (test_flag, instance_id, tenant_id, app_id)
);
CREATE INDEX kit_applications_tenant_idx ON kit_applications (tenant_id);

-- authorised is false once the marketplace cancelled the user's authorisation (authSync flag 3); enabled is the
-- user's own enable flag. detail is the user object as sent (mobile, email, … for the seller's systems).
CREATE TABLE kit_users (
    test_flag    boolean NOT NULL,
    instance_id  text NOT NULL,
    tenant_id    text NOT NULL,
    app_id       text NOT NULL,
    user_name    text NOT NULL,
    name         text NOT NULL DEFAULT '',
    org_code     text NOT NULL DEFAULT '',
    role         text NOT NULL DEFAULT '',
    enabled      boolean NOT NULL DEFAULT true,
    authorised   boolean NOT NULL DEFAULT true,
    detail       jsonb NOT NULL DEFAULT '{}',
    synced_at    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (test_flag, instance_id, tenant_id, app_id, user_name)
);

CREATE TABLE kit_orgs (
    test_flag    boolean NOT NULL,
    instance_id  text NOT NULL,
    tenant_id    text NOT NULL,
    org_code     text NOT NULL,
    org_name     text NOT NULL DEFAULT '',
    parent_code  text NOT NULL DEFAULT '',
    detail       jsonb NOT NULL DEFAULT '{}',
    synced_at    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (test_flag, instance_id, tenant_id, org_code)
);

-- Kit changes to deliver to the seller's systems through the provisioning webhook (docs/koogallery.md, "Delivery
-- to the seller"). A row is written before the change is applied and removed if the change turned out to change
-- nothing; handed_at is set once the instance's workflow accepted it (Update kitChange), delivered_at once the
-- webhook (or the built-in provisioner) took it. detail never holds the client secret.
CREATE TABLE kit_deliveries (
    delivery_id   bigserial PRIMARY KEY,
    instance_id   text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('tenant', 'application', 'users', 'org')),
    call          text NOT NULL,
    flag          text NOT NULL,
    tenant_id     text NOT NULL,
    detail        jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    handed_at     timestamptz,
    delivered_at  timestamptz
);
CREATE INDEX kit_deliveries_unhanded_idx ON kit_deliveries (instance_id, delivery_id) WHERE handed_at IS NULL;

-- +goose Down
DROP TABLE kit_deliveries;
DROP TABLE kit_orgs;
DROP TABLE kit_users;
DROP TABLE kit_applications;
DROP TABLE kit_tenants;
