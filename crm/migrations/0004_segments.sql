-- Segments: named rules over confirmed WhatsApp opt-ins (the segments
-- package owns these tables). A rule only ever narrows the view
-- whatsapp_optins; the engine joins it, so no stored rule can reach anyone
-- outside it.

CREATE TABLE segments (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    rule       TEXT NOT NULL, -- as the user wrote it; validated on save
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- segment_exports is the audit trail of every export: which rule was
-- evaluated when, how many rows left, and the SHA-256 of each file (the
-- same facts as the manifest written beside the export).
CREATE TABLE segment_exports (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES segments(id),
    rule       TEXT NOT NULL,
    format     TEXT NOT NULL,
    rows       INTEGER NOT NULL,
    files      TEXT NOT NULL DEFAULT '[]', -- JSON: [{name, rows, sha256}]
    at         TEXT NOT NULL
);
CREATE INDEX segment_exports_segment ON segment_exports(segment_id, id);

-- Evaluating a segment starts from the confirmed WhatsApp rows of
-- consent_current. Its primary key is (contact_id, channel), so without
-- this index every evaluation scans the whole projection (every channel of
-- every contact). With it the scan reads only the confirmed WhatsApp rows,
-- already in contact_id order (the export order), and covers the columns
-- the view needs.
CREATE INDEX consent_current_channel_action ON consent_current(channel, action, contact_id, event_id, at);

-- whatsapp_optins checks the phone suppression with
-- s.phone_hash = c.phone_hash AND c.phone_hash <> ''; the partial index
-- suppressions_phone (WHERE phone_hash <> '') cannot serve that condition,
-- so without this index every opt-in scans the whole suppression list.
CREATE INDEX suppressions_phone_channel ON suppressions(phone_hash, channel);
