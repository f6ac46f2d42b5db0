-- The merchant dashboard (issue 8): people who log in for a merchant,
-- their sessions, and the login throttle.  lib/pv_dash_auth.c.
--
-- Passwords are scrypt strings from pv_crypto_password_hash().  A
-- session cookie carries a random token; only its SHA-256 is stored, so
-- a copy of this table logs nobody in.  Each session has its own CSRF
-- secret; forms carry HMAC(csrf_secret, "csrf") and a POST without it
-- is refused before its handler runs.

CREATE TABLE merchant_users (
    id            bigserial PRIMARY KEY,
    merchant_id   bigint NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    email         citext NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL CHECK (password_hash LIKE '$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX merchant_users_merchant ON merchant_users (merchant_id);

CREATE TABLE dashboard_sessions (
    id          bigserial PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id     bigint NOT NULL REFERENCES merchant_users (id) ON DELETE CASCADE,
    csrf_secret bytea NOT NULL CHECK (length(csrf_secret) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    remote_addr text NOT NULL DEFAULT '' CHECK (length(remote_addr) <= 64)
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id)
    WHERE revoked_at IS NULL;
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);

-- Failed logins per key ('email:<address>' or 'ip:<address>') in a
-- fixed window: past the limit, logins for that key are refused until
-- the window ends, whatever the password.
CREATE TABLE dashboard_login_failures (
    key          text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 300),
    window_start timestamptz NOT NULL,
    failures     integer NOT NULL CHECK (failures >= 0)
);

-- Minor units as major-unit text with the currency's exponent
-- (4800, 2 -> '48.00'): what pages and CSV exports show.
CREATE FUNCTION pv_money_text(minor bigint, exponent smallint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN round(minor::numeric / power(10::numeric, exponent), exponent)::text;

-- The ISO 4217 exponent for showing stored rules (pv_money.c has the
-- full table; orders store theirs).
CREATE FUNCTION pv_currency_exponent(currency text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN currency IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY',
        'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV', 'XAF',
        'XOF', 'XPF') THEN 0
    WHEN currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3
    ELSE 2 END::smallint;
