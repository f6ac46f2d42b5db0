-- A merchant's Shopify store (issues 4 and 6): where it is, the Admin
-- API token that reaches it, what the shop query said on connect, and
-- where the catalogue sync got to.  Written by pv_shopify.c.
--
-- Secrets are sealed by pv_crypto_seal() under PIVOTA_MASTER_KEY
-- ("v1." + base64 of AES-256-GCM): the token with the merchant's public
-- id as additional data, the webhook secret with the public id plus
-- "/shopify_webhook_secret", so a sealed value copied to another
-- merchant or column does not open.  Disconnecting keeps the row (for
-- the record) but destroys both secrets.

CREATE TABLE merchant_shopify (
    merchant_id      bigint PRIMARY KEY
                     REFERENCES merchants (id) ON DELETE CASCADE,
    -- "name.myshopify.com", or a loopback host for a fake outside prod.
    shop_domain      text NOT NULL
                     CHECK (shop_domain ~ '^[a-z0-9.:\[\]-]{1,255}$'),
    token_sealed     text CHECK (token_sealed LIKE 'v1.%'),
    -- Base URL used instead of https://{shop_domain} (tests, proxies).
    api_base         text CHECK (length(api_base) BETWEEN 1 AND 500),
    shop_name        text NOT NULL,
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- The version Shopify served when the token was verified.
    api_version      text NOT NULL,
    webhook_secret_sealed text CHECK (webhook_secret_sealed LIKE 'v1.%'),
    connected_at     timestamptz NOT NULL DEFAULT now(),
    disconnected_at  timestamptz,
    -- Catalogue sync progress, owned by the sync job: sync_cursor is the
    -- end cursor of the last page committed (NULL = start over), so a
    -- run that died resumes after it.  Reset when the shop changes.
    sync_state       text NOT NULL DEFAULT 'never'
                     CHECK (sync_state IN ('never', 'running', 'done',
                                           'failed')),
    sync_cursor      text CHECK (length(sync_cursor) BETWEEN 1 AND 1023),
    sync_products    integer NOT NULL DEFAULT 0 CHECK (sync_products >= 0),
    sync_started_at  timestamptz,
    sync_finished_at timestamptz,
    sync_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((disconnected_at IS NULL) = (token_sealed IS NOT NULL)),
    CHECK (disconnected_at IS NULL OR webhook_secret_sealed IS NULL)
);

-- One live connection per store: webhooks name the shop, and two
-- merchants selling one store's stock would oversell it.
CREATE UNIQUE INDEX merchant_shopify_shop ON merchant_shopify (shop_domain)
    WHERE disconnected_at IS NULL;
