-- Auth service schema: users, refresh tokens (hashes only), RS256 signing keys.

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    password_hash text NOT NULL,
    name text NOT NULL,
    roles text[] NOT NULL DEFAULT ARRAY['customer']::text[],
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower_case CHECK (email = lower(email)),
    CONSTRAINT users_name_not_blank CHECK (btrim(name) <> '')
);

-- One row per issued refresh token; the token itself is never stored, only its
-- SHA-256. A login starts a family; each refresh rotates the presented token
-- (rotated_at) and inserts its child (parent_id) in the same family.
CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id uuid NOT NULL,
    parent_id uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    token_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz,
    revoked_at timestamptz,
    revoke_reason text,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_revoke_reason CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

-- RS256 signing keys. The private key (PKCS#8 DER) is stored sealed with
-- AES-256-GCM under a key derived from AUTH_KEY_ENCRYPTION_SECRET (nonce per key).
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    public_jwk jsonb NOT NULL,
    private_key_ciphertext bytea NOT NULL,
    nonce bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at timestamptz,
    CONSTRAINT signing_keys_retired_after_activation
        CHECK (retired_at IS NULL OR (activated_at IS NOT NULL AND retired_at >= activated_at))
);
-- At most one active key (activated, not retired).
CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys ((true))
    WHERE activated_at IS NOT NULL AND retired_at IS NULL;
