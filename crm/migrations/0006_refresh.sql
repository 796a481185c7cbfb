-- Consent refresh: WhatsApp consent older than the refresh period is asked
-- for again. consent_refresh flags the confirmation being refreshed; while
-- it is still the contact's current WhatsApp state the contact may be
-- invited again, by the refresh campaign named here only. If they do not
-- confirm again by the deadline, `expired` is recorded and they leave every
-- segment.
CREATE TABLE consent_refresh (
    contact_id  INTEGER PRIMARY KEY REFERENCES contacts(id),
    event_id    INTEGER NOT NULL, -- the WhatsApp confirmation being refreshed
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    deadline    TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- invite_eligible, as in 0001, plus the contacts whose WhatsApp
-- confirmation is flagged for refresh; refresh_campaign_id says which
-- campaign may invite them (NULL: any ordinary campaign).
DROP VIEW invite_eligible;
CREATE VIEW invite_eligible AS
SELECT c.id AS contact_id, r.campaign_id AS refresh_campaign_id
FROM contacts c
JOIN consent_current e ON e.contact_id = c.id AND e.channel = 'email' AND e.action = 'granted'
LEFT JOIN consent_current w ON w.contact_id = c.id AND w.channel = 'whatsapp'
LEFT JOIN consent_refresh r ON r.contact_id = c.id AND r.event_id = w.event_id AND w.action = 'confirmed'
WHERE c.erased_at IS NULL
  AND (w.action IS NULL OR w.action = 'expired' OR r.contact_id IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM suppressions s
                  WHERE s.email_hash = c.email_hash AND s.channel IN ('all', 'email'));
