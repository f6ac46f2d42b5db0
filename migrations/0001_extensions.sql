-- Extensions the schema relies on: trigram matching for typo-tolerant
-- product search, and case-insensitive text for emails.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS citext;
