-- whatsapp_audience: the people who may be in a segment, one row each, with
-- the fields segments filter on and export, kept by triggers in the same
-- transaction as every write that can change who is in it or what they look
-- like.
--
-- Why: evaluating the definition (whatsapp_optins as 0007 wrote it) for
-- every opt-in of a large store, then looking up each contact row (about
-- 800 bytes with the hashes, attributes and evidence around it) and its
-- consent event, cost about 4 µs of SQLite time per exported row. A
-- segment export of 200,000 rows out of 500,000 opt-ins took ~0.8 s of CPU
-- in SQLite alone; reading this narrow table instead takes ~0.2 s (see
-- segments/bench_test.go). Writes pay a few microseconds, and only when
-- they touch a WhatsApp opt-in.
--
-- The definition stays in one place: the view whatsapp_audience_rows below
-- computes the rows from the ledger projection (consent_current), the
-- contacts and the suppression list; the triggers only ever copy its
-- answer for the contacts a write touched; `consent verify` checks that the
-- table equals the view (crm/audience.go), and whatsapp_optins becomes a
-- view of the table, so every reader sees the same people.

CREATE TABLE whatsapp_audience (
    contact_id        INTEGER PRIMARY KEY,
    consent_event_id  INTEGER NOT NULL,
    opted_in_at       TEXT NOT NULL,
    statement_version TEXT NOT NULL,
    statement_sha256  TEXT NOT NULL,
    campaign          TEXT NOT NULL,
    phone_e164        TEXT NOT NULL,
    first_name        TEXT NOT NULL,
    last_name         TEXT NOT NULL,
    language          TEXT NOT NULL,
    country           TEXT NOT NULL,
    source            TEXT NOT NULL,
    tags              TEXT NOT NULL, -- JSON array, as in contacts
    interests         TEXT NOT NULL, -- in order, separated by char(31)
    -- interest_keys is interests folded to lower case (ASCII, as NOCASE
    -- and lower() fold) between separators, char(31) || 'offers' ||
    -- char(31) || 'recipes' || char(31): interest:offers is then one instr()
    -- on the row already read, half the cost of probing contact_interests
    -- per opt-in.
    interest_keys     TEXT NOT NULL
);

-- whatsapp_audience_rows is the definition: current WhatsApp consent
-- confirmed, a valid E.164 number ('+', a non-zero first digit, 7 to 15
-- digits in all, nothing else; see 0007 for the cast), not erased, and not
-- suppressed for WhatsApp or everywhere by email hash or phone hash (an
-- email-only suppression does not remove someone who confirmed WhatsApp).
-- The suppression checks are correlated probes, so that the view is cheap
-- for one contact (what the triggers ask).
CREATE VIEW whatsapp_audience_rows AS
SELECT w.contact_id AS contact_id, w.event_id AS consent_event_id, w.at AS opted_in_at,
       e.statement_version AS statement_version, e.statement_sha256 AS statement_sha256, e.campaign AS campaign,
       c.phone_e164 AS phone_e164, c.first_name AS first_name, c.last_name AS last_name,
       c.language AS language, c.country AS country, c.source AS source, c.tags AS tags,
       coalesce((SELECT group_concat(ci.interest, char(31)) FROM contact_interests ci
                 WHERE ci.contact_id = w.contact_id), '') AS interests,
       char(31) || lower(coalesce((SELECT group_concat(ci.interest, char(31)) FROM contact_interests ci
                 WHERE ci.contact_id = w.contact_id), '')) || char(31) AS interest_keys
FROM consent_current w
JOIN contacts c ON c.id = w.contact_id
JOIN consent_events e ON e.id = w.event_id
WHERE w.channel = 'whatsapp' AND w.action = 'confirmed'
  AND c.erased_at IS NULL
  AND length(c.phone_e164) BETWEEN 8 AND 16
  AND c.phone_e164 GLOB '+[1-9]*'
  AND '+' || CAST(substr(c.phone_e164, 2) AS INTEGER) = c.phone_e164
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE s.email_hash = c.email_hash AND s.channel IN ('all', 'whatsapp'))
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE c.phone_hash <> '' AND s.phone_hash = c.phone_hash AND s.channel IN ('all', 'whatsapp'));

INSERT INTO whatsapp_audience SELECT * FROM whatsapp_audience_rows;

DROP VIEW whatsapp_optins;
CREATE VIEW whatsapp_optins AS
SELECT contact_id, consent_event_id, opted_in_at FROM whatsapp_audience;

-- The WhatsApp consent of a contact changed (crm.Tx.AppendEvent upserts
-- consent_current: an insert, or an update on conflict).
CREATE TRIGGER whatsapp_audience_consent_insert AFTER INSERT ON consent_current
WHEN NEW.channel = 'whatsapp' BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id = NEW.contact_id;
    INSERT INTO whatsapp_audience SELECT * FROM whatsapp_audience_rows WHERE contact_id = NEW.contact_id;
END;
CREATE TRIGGER whatsapp_audience_consent_update AFTER UPDATE ON consent_current
WHEN NEW.channel = 'whatsapp' OR OLD.channel = 'whatsapp' BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id IN (OLD.contact_id, NEW.contact_id);
    INSERT INTO whatsapp_audience SELECT * FROM whatsapp_audience_rows WHERE contact_id IN (OLD.contact_id, NEW.contact_id);
END;
CREATE TRIGGER whatsapp_audience_consent_delete AFTER DELETE ON consent_current
WHEN OLD.channel = 'whatsapp' BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id = OLD.contact_id;
END;

-- A contact changed: a new phone, an erasure, a re-import with other
-- names, country, language, tags or source. Only a contact with a WhatsApp
-- confirmation on record can be in the audience before or after, so the
-- others (the bulk of a re-import) skip the work.
CREATE TRIGGER whatsapp_audience_contact_update AFTER UPDATE OF
    email_hash, first_name, last_name, phone_e164, phone_hash, country, language, tags, source, erased_at ON contacts
WHEN EXISTS (SELECT 1 FROM consent_current
             WHERE contact_id = NEW.id AND channel = 'whatsapp' AND action = 'confirmed') BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id = NEW.id;
    INSERT INTO whatsapp_audience SELECT * FROM whatsapp_audience_rows WHERE contact_id = NEW.id;
END;
CREATE TRIGGER whatsapp_audience_contact_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id = OLD.id;
END;

-- Interests changed (the confirmation and preference pages).
CREATE TRIGGER whatsapp_audience_interest_insert AFTER INSERT ON contact_interests BEGIN
    UPDATE whatsapp_audience SET (interests, interest_keys) = (
        SELECT v, char(31) || lower(v) || char(31) FROM (SELECT coalesce(group_concat(ci.interest, char(31)), '') AS v
            FROM contact_interests ci WHERE ci.contact_id = NEW.contact_id))
    WHERE contact_id = NEW.contact_id;
END;
CREATE TRIGGER whatsapp_audience_interest_delete AFTER DELETE ON contact_interests BEGIN
    UPDATE whatsapp_audience SET (interests, interest_keys) = (
        SELECT v, char(31) || lower(v) || char(31) FROM (SELECT coalesce(group_concat(ci.interest, char(31)), '') AS v
            FROM contact_interests ci WHERE ci.contact_id = OLD.contact_id))
    WHERE contact_id = OLD.contact_id;
END;
CREATE TRIGGER whatsapp_audience_interest_update AFTER UPDATE ON contact_interests BEGIN
    UPDATE whatsapp_audience SET (interests, interest_keys) = (
        SELECT v, char(31) || lower(v) || char(31) FROM (SELECT coalesce(group_concat(ci.interest, char(31)), '') AS v
            FROM contact_interests ci WHERE ci.contact_id = whatsapp_audience.contact_id))
    WHERE contact_id IN (OLD.contact_id, NEW.contact_id);
END;

-- A suppression for WhatsApp or everywhere removes every contact with that
-- email hash or phone hash; lifting one re-evaluates them.
CREATE TRIGGER whatsapp_audience_suppression_insert AFTER INSERT ON suppressions
WHEN NEW.channel IN ('all', 'whatsapp') BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id IN (
        SELECT id FROM contacts WHERE email_hash = NEW.email_hash
        UNION ALL
        SELECT id FROM contacts WHERE phone_hash = NEW.phone_hash AND phone_hash <> '');
END;
CREATE TRIGGER whatsapp_audience_suppression_delete AFTER DELETE ON suppressions
WHEN OLD.channel IN ('all', 'whatsapp') BEGIN
    INSERT OR REPLACE INTO whatsapp_audience SELECT * FROM whatsapp_audience_rows WHERE contact_id IN (
        SELECT id FROM contacts WHERE email_hash = OLD.email_hash
        UNION ALL
        SELECT id FROM contacts WHERE phone_hash = OLD.phone_hash AND phone_hash <> '');
END;
CREATE TRIGGER whatsapp_audience_suppression_update AFTER UPDATE ON suppressions BEGIN
    DELETE FROM whatsapp_audience WHERE contact_id IN (
        SELECT id FROM contacts WHERE email_hash IN (OLD.email_hash, NEW.email_hash)
        UNION ALL
        SELECT id FROM contacts WHERE phone_hash IN (OLD.phone_hash, NEW.phone_hash) AND phone_hash <> '');
    INSERT INTO whatsapp_audience SELECT * FROM whatsapp_audience_rows WHERE contact_id IN (
        SELECT id FROM contacts WHERE email_hash IN (OLD.email_hash, NEW.email_hash)
        UNION ALL
        SELECT id FROM contacts WHERE phone_hash IN (OLD.phone_hash, NEW.phone_hash) AND phone_hash <> '');
END;
