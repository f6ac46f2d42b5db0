-- The Shopify catalogue sync as a durable job (issue 4; lib/pv_sync.c,
-- docs/shopify.md).  merchant_shopify (0007) already keeps where a sync
-- got to; this adds what a resumable, one-at-a-time sync needs.
--
--   * sync_run numbers the sync requests of a merchant.  A request that
--     finds no live job bumps it and enqueues catalog.sync with the
--     dedup key 'catalog.sync:<merchant id>:<run>', under the row lock:
--     two requests never make two live jobs, and a job whose run is no
--     longer the current one knows it is stale and does nothing.
--   * sync_batch_id is the catalog batch (source shopify, replace) the
--     run stages into, page by page, each page in one transaction with
--     sync_cursor; it is applied in one transaction at the end and then
--     cleared.  A failed run drops its batch.
--   * 'queued' joins the states: requested, no page fetched yet.

ALTER TABLE merchant_shopify
    DROP CONSTRAINT merchant_shopify_sync_state_check,
    ADD CONSTRAINT merchant_shopify_sync_state_check
        CHECK (sync_state IN ('never', 'queued', 'running', 'done',
                              'failed')),
    ADD COLUMN sync_run      integer NOT NULL DEFAULT 0
                             CHECK (sync_run >= 0),
    ADD COLUMN sync_batch_id bigint REFERENCES catalog_batches (id)
                             ON DELETE SET NULL,
    -- Pages committed, and products Shopify sent that could not be
    -- taken (bad text, too many variants...), with the first problems.
    ADD COLUMN sync_pages    integer NOT NULL DEFAULT 0
                             CHECK (sync_pages >= 0),
    ADD COLUMN sync_skipped  integer NOT NULL DEFAULT 0
                             CHECK (sync_skipped >= 0),
    ADD COLUMN sync_problems text[] NOT NULL DEFAULT '{}'
                             CHECK (cardinality(sync_problems) <= 10),
    -- What applying the last finished run did:
    -- {"created", "updated", "unchanged", "archived", "words"}.
    ADD COLUMN sync_result   jsonb;

-- Connecting another shop (pv_shopify_connect resets sync_cursor and
-- the counters of 0007) also abandons the run's staged batch: its rows
-- came from the other shop.  BEFORE clears the reference, AFTER drops
-- the batch once nothing refers to it.
CREATE FUNCTION merchant_shopify_shop_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_WHEN = 'BEFORE' THEN
        NEW.sync_batch_id := NULL;
        NEW.sync_pages := 0;
        NEW.sync_skipped := 0;
        NEW.sync_problems := '{}';
        NEW.sync_result := NULL;
        RETURN NEW;
    END IF;
    DELETE FROM catalog_batches WHERE id = OLD.sync_batch_id
        AND state = 'staging';
    RETURN NULL;
END
$$;

CREATE TRIGGER merchant_shopify_shop_changed_before
    BEFORE UPDATE OF shop_domain ON merchant_shopify FOR EACH ROW
    WHEN (NEW.shop_domain IS DISTINCT FROM OLD.shop_domain)
    EXECUTE FUNCTION merchant_shopify_shop_changed();
CREATE TRIGGER merchant_shopify_shop_changed_after
    AFTER UPDATE OF shop_domain ON merchant_shopify FOR EACH ROW
    WHEN (NEW.shop_domain IS DISTINCT FROM OLD.shop_domain
          AND OLD.sync_batch_id IS NOT NULL)
    EXECUTE FUNCTION merchant_shopify_shop_changed();
