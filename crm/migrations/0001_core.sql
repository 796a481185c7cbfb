-- The core store: contacts, the consent ledger and its derived current state,
-- consent statements and the suppression list.

-- meta holds per-database values: the salt for suppression hashes and the
-- head of the consent chain (so that deleting the newest events is detected).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- contacts are keyed by the salted hash of the normalised email, so that an
-- erased contact (email NULL) still blocks a re-import of the same address.
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    email       TEXT, -- looked up by email_hash, so no index of its own
    email_hash  TEXT NOT NULL UNIQUE,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    phone_e164  TEXT NOT NULL DEFAULT '',
    phone_raw   TEXT NOT NULL DEFAULT '',
    phone_hash  TEXT NOT NULL DEFAULT '',
    country     TEXT NOT NULL DEFAULT '',
    language    TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
    attributes  TEXT NOT NULL DEFAULT '{}', -- JSON object of strings
    source      TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    erased_at   TEXT
);
CREATE INDEX contacts_phone_hash ON contacts(phone_hash) WHERE phone_hash <> '';

-- statements are the exact consent wording shown to people, once per
-- version and language, with the SHA-256 of the text.
CREATE TABLE statements (
    id         INTEGER PRIMARY KEY,
    channel    TEXT NOT NULL,
    version    TEXT NOT NULL,
    language   TEXT NOT NULL,
    text       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (channel, version, language)
);

-- consent_events is the append-only ledger. Each event carries the digest of
-- its content and the hash of the previous event; see crm/ledger.go.
CREATE TABLE consent_events (
    id                INTEGER PRIMARY KEY,
    contact_id        INTEGER NOT NULL REFERENCES contacts(id),
    channel           TEXT NOT NULL CHECK (channel IN ('email', 'whatsapp', 'sms')),
    action            TEXT NOT NULL CHECK (action IN ('granted', 'confirmed', 'declined', 'withdrawn', 'expired')),
    at                TEXT NOT NULL,
    recorded_at       TEXT NOT NULL,
    method            TEXT NOT NULL,
    ip                TEXT NOT NULL DEFAULT '',
    user_agent        TEXT NOT NULL DEFAULT '',
    campaign          TEXT NOT NULL DEFAULT '',
    invitation_id     INTEGER NOT NULL DEFAULT 0,
    evidence          TEXT NOT NULL DEFAULT '{}',
    statement_version TEXT NOT NULL DEFAULT '',
    statement_sha256  TEXT NOT NULL DEFAULT '',
    digest            TEXT NOT NULL,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL,
    redacted          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX consent_events_contact ON consent_events(contact_id, channel, id);

-- The ledger refuses deletes, and updates other than an erasure's redaction
-- of personal evidence (ip, user agent, evidence), which leaves the digest,
-- and so the chain, intact.
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only');
END;
CREATE TRIGGER consent_events_redact_only BEFORE UPDATE ON consent_events
WHEN OLD.redacted = 1 OR NEW.redacted <> 1
  OR NEW.id IS NOT OLD.id OR NEW.contact_id IS NOT OLD.contact_id
  OR NEW.channel IS NOT OLD.channel OR NEW.action IS NOT OLD.action
  OR NEW.at IS NOT OLD.at OR NEW.recorded_at IS NOT OLD.recorded_at
  OR NEW.method IS NOT OLD.method OR NEW.campaign IS NOT OLD.campaign
  OR NEW.invitation_id IS NOT OLD.invitation_id
  OR NEW.statement_version IS NOT OLD.statement_version
  OR NEW.statement_sha256 IS NOT OLD.statement_sha256
  OR NEW.digest IS NOT OLD.digest OR NEW.prev_hash IS NOT OLD.prev_hash
  OR NEW.hash IS NOT OLD.hash
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only');
END;

-- consent_current is a projection of the ledger (the newest event per
-- contact and channel), kept in the same transaction as each append so that
-- eligibility and segments need no scan of the ledger. consent verify checks
-- it against the ledger.
CREATE TABLE consent_current (
    contact_id INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    action     TEXT NOT NULL,
    event_id   INTEGER NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (contact_id, channel)
) WITHOUT ROWID;

-- suppressions hold salted hashes only (never an address in clear), so an
-- erased person stays suppressed. channel is all, email or whatsapp.
CREATE TABLE suppressions (
    id         INTEGER PRIMARY KEY,
    email_hash TEXT NOT NULL DEFAULT '',
    phone_hash TEXT NOT NULL DEFAULT '',
    channel    TEXT NOT NULL CHECK (channel IN ('all', 'email', 'whatsapp')),
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL,
    UNIQUE (email_hash, phone_hash, channel, reason)
);
CREATE INDEX suppressions_phone ON suppressions(phone_hash) WHERE phone_hash <> '';

-- contact_interests are the interests a person chose on the confirmation or
-- preference page.
CREATE TABLE contact_interests (
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    interest   TEXT NOT NULL,
    set_at     TEXT NOT NULL,
    PRIMARY KEY (contact_id, interest)
) WITHOUT ROWID;
CREATE INDEX contact_interests_interest ON contact_interests(interest, contact_id);

-- invite_eligible is the one definition of who may receive an invitation:
-- current email consent granted, not erased, not suppressed for email, and
-- no WhatsApp decision on record unless it has expired. Campaign-specific
-- conditions (already invited) are added by the invite package.
CREATE VIEW invite_eligible AS
SELECT c.id AS contact_id
FROM contacts c
JOIN consent_current e ON e.contact_id = c.id AND e.channel = 'email' AND e.action = 'granted'
LEFT JOIN consent_current w ON w.contact_id = c.id AND w.channel = 'whatsapp'
WHERE c.erased_at IS NULL
  AND (w.action IS NULL OR w.action = 'expired')
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE s.email_hash = c.email_hash AND s.channel IN ('all', 'email'));

-- whatsapp_optins is the one definition of who may be in a segment: current
-- WhatsApp consent confirmed, a valid E.164 number, not erased, and not
-- suppressed for WhatsApp or everywhere (an email-only suppression does not
-- remove someone who confirmed WhatsApp).
CREATE VIEW whatsapp_optins AS
SELECT c.id AS contact_id, w.event_id AS consent_event_id, w.at AS opted_in_at
FROM contacts c
JOIN consent_current w ON w.contact_id = c.id AND w.channel = 'whatsapp' AND w.action = 'confirmed'
WHERE c.erased_at IS NULL
  AND c.phone_e164 <> ''
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE s.email_hash = c.email_hash AND s.channel IN ('all', 'whatsapp'))
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE s.phone_hash = c.phone_hash AND c.phone_hash <> '' AND s.channel IN ('all', 'whatsapp'));
