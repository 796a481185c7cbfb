-- Campaigns and their invitations. The invite package owns these tables;
-- they live in the one store so that an invitation, its send result and the
-- consent event it leads to commit together.

CREATE TABLE campaigns (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    settings          TEXT NOT NULL DEFAULT '{}', -- JSON: subjects, wording, interests, templates (invite.Campaign)
    statement_version TEXT NOT NULL,
    expiry_seconds    INTEGER NOT NULL,
    reminder_count    INTEGER NOT NULL DEFAULT 1,
    reminder_after_seconds INTEGER NOT NULL DEFAULT 604800,
    created_at        TEXT NOT NULL
);

-- invitations: one per contact and campaign (the UNIQUE constraint is what
-- makes queueing idempotent). token_hash is the SHA-256 of the opaque token
-- in the links; the token itself is never stored.
CREATE TABLE invitations (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
    contact_id       INTEGER NOT NULL REFERENCES contacts(id),
    token_hash       TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'queued', -- queued sending sent failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL DEFAULT '',
    claimed_at       TEXT NOT NULL DEFAULT '',
    sent_at          TEXT NOT NULL DEFAULT '',
    message_id       TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    reminders_sent   INTEGER NOT NULL DEFAULT 0,
    last_reminder_at TEXT NOT NULL DEFAULT '',
    expires_at       TEXT NOT NULL,
    first_visit_at   TEXT NOT NULL DEFAULT '',
    visits           INTEGER NOT NULL DEFAULT 0,
    response         TEXT NOT NULL DEFAULT '', -- confirmed declined unsubscribed
    responded_at     TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX invitations_status ON invitations(campaign_id, status, id);
CREATE INDEX invitations_contact ON invitations(contact_id);

-- visits log every GET/HEAD of a page: a visit is never consent.
CREATE TABLE visits (
    id            INTEGER PRIMARY KEY,
    invitation_id INTEGER NOT NULL REFERENCES invitations(id),
    page          TEXT NOT NULL, -- confirm unsubscribe preferences
    method        TEXT NOT NULL,
    at            TEXT NOT NULL,
    user_agent    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX visits_invitation ON visits(invitation_id);
