-- merchants.platform (migration 0006) says where a merchant's orders go
-- and its shipments come from: 'shopify' while a Shopify store is
-- connected, 'custom' otherwise.  Nothing kept it up to date, so a
-- merchant with a connected store still showed 'custom' to agents
-- (GET /agent/v1/merchants) and was offered the dashboard's "mark
-- shipped" form, which is for merchants without a store platform.  It
-- now follows merchant_shopify, in the same transaction as the connect
-- or disconnect (pivotactl, the dashboard, app/uninstalled).
CREATE FUNCTION merchant_platform_follows_store() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_merchant bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.merchant_id
                              ELSE NEW.merchant_id END;
BEGIN
    UPDATE merchants m
       SET platform = CASE WHEN EXISTS (
               SELECT 1 FROM merchant_shopify s
                WHERE s.merchant_id = m.id AND s.disconnected_at IS NULL)
           THEN 'shopify' ELSE 'custom' END
     WHERE m.id = v_merchant;
    RETURN NULL;
END $$;

CREATE TRIGGER merchant_shopify_platform
    AFTER INSERT OR DELETE OR UPDATE OF disconnected_at ON merchant_shopify
    FOR EACH ROW EXECUTE FUNCTION merchant_platform_follows_store();

UPDATE merchants m SET platform = 'shopify'
 WHERE EXISTS (SELECT 1 FROM merchant_shopify s
                WHERE s.merchant_id = m.id AND s.disconnected_at IS NULL);
