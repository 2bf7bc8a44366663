-- Limits and money. A user's roles as their token last named them (the turn, which has no
-- token, reads them here to apply the role's tool permissions); budgets the operator set for a
-- user and the cap the user set themselves; prepaid credit bought through Stripe, and every
-- Stripe event handled, so a redelivered event is recognised.
ALTER TABLE users ADD COLUMN roles jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(roles) = 'array');

CREATE TABLE budgets (
    user_id                uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- Whether an admin set this user's limit and period (else the deployment's defaults).
    operator_set           boolean NOT NULL DEFAULT false,
    -- The operator's limit; NULL with operator_set means none for this user.
    limit_micros           bigint CHECK (limit_micros >= 0),
    period                 text NOT NULL DEFAULT 'month' CHECK (period IN ('day', 'month')),
    personal_limit_micros  bigint CHECK (personal_limit_micros >= 0),
    updated_at             timestamptz NOT NULL
);

CREATE TABLE payments (
    -- The Stripe Checkout Session's id.
    id             text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount_micros  bigint NOT NULL CHECK (amount_micros > 0),
    status         text NOT NULL CHECK (status IN ('pending', 'paid')),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX payments_user_created ON payments (user_id, created_at DESC);

CREATE TABLE stripe_events (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    type         text NOT NULL,
    received_at  timestamptz NOT NULL
);
