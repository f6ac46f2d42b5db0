-- A refund the merchant starts from the dashboard's order page: source
-- 'merchant' (no agent), sent to the provider and mirrored to the store
-- exactly as an agent's refund is.
ALTER TABLE refunds DROP CONSTRAINT refunds_source_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_source_check
    CHECK (source IN ('agent', 'merchant', 'provider_dashboard', 'store'));
