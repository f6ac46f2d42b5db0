-- Indexes for the merchant dashboard of a merchant with many orders
-- (issue 8: every page in 20 ms of server time or less with 10,000
-- orders; measured by `make bench`, docs/performance.md "Dashboard with
-- 10,000 orders").  Each serves a query of lib/pv_dash_pages.c,
-- pv_dash_agents.c or pv_dash_products.c that otherwise read every
-- order (or product) of the merchant, and its heap rows:
--
-- The overview: one pass over the window's orders, grouped by day,
-- agent and currency (OVERVIEW_SQL); every column it reads is in the
-- index, so the pass is an index-only scan of the window.  Also the
-- orders list's date filters.
CREATE INDEX orders_merchant_created ON orders (merchant_id, created_at)
    INCLUDE (agent_id, currency, currency_exponent, paid_at, total_minor,
             refunded_minor);
-- The orders list filtered by status: its newest 50 and its count.
CREATE INDEX orders_merchant_status ON orders (merchant_id, status, id DESC);
-- Searching the orders list by e-mail (citext: equality ignores case).
CREATE INDEX orders_merchant_email ON orders (merchant_id, customer_email);
-- The orders list filtered by agent (newest first), its agent choices
-- (a skip scan: one probe per agent) and the agents page's totals per
-- agent and currency, index-only.
CREATE INDEX orders_merchant_agent ON orders (merchant_id, agent_id, id)
    INCLUDE (currency, currency_exponent, paid_at, total_minor, created_at);
-- The products page: a page of the catalog in title order.
CREATE INDEX products_merchant_title ON products (merchant_id, title, id);
