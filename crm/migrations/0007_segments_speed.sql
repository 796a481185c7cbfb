-- whatsapp_optins, as in 0001, with the same meaning and columns, made cheap
-- enough to evaluate for every opt-in of a large store (segments export;
-- see segments/bench_test.go), and with the E.164 shape check that the
-- segments engine used to add on top moved in here, so that the view stays
-- the one definition of who may be in a segment: current WhatsApp consent
-- confirmed, a valid E.164 number ('+', a non-zero first digit, 7 to 15
-- digits in all, nothing else), not erased, and not suppressed for WhatsApp
-- or everywhere by email hash or phone hash (an email-only suppression does
-- not remove someone who confirmed WhatsApp).
--
-- Why this shape:
-- * The digits check was substr(phone, 2) NOT GLOB '*[^0-9]*', a pattern
--   match that cost about 1 µs per row. Casting the digits to an integer
--   and back gives the same answer for 15 digits or fewer (they fit in 64
--   bits; any other character ends the number early; the GLOB before it
--   rules out a sign and a leading zero) at a fraction of the cost.
-- * The suppression checks were two correlated NOT EXISTS probes per
--   opt-in (three index seeks, even when the list is empty). Here the
--   contacts suppressed for WhatsApp or everywhere are collected once per
--   query, from the suppression list outwards (CROSS JOIN keeps that
--   order: the list is the small side), and each opt-in is one lookup in
--   that in-memory set. The set grows with the suppressions that apply,
--   never with the segment. sc.id is never NULL, so NOT IN cannot turn
--   into NULL. sc.phone_hash <> '' lets the partial index
--   contacts_phone_hash serve the phone side.
-- * contact_id is w.contact_id: it equals c.id, and a caller that joins
--   contacts on it can then look the contact up right from the consent
--   row.
DROP VIEW whatsapp_optins;
CREATE VIEW whatsapp_optins AS
SELECT w.contact_id AS contact_id, w.event_id AS consent_event_id, w.at AS opted_in_at
FROM consent_current w
JOIN contacts c ON c.id = w.contact_id
WHERE w.channel = 'whatsapp' AND w.action = 'confirmed'
  AND c.erased_at IS NULL
  AND length(c.phone_e164) BETWEEN 8 AND 16
  AND c.phone_e164 GLOB '+[1-9]*'
  AND '+' || CAST(substr(c.phone_e164, 2) AS INTEGER) = c.phone_e164
  AND c.id NOT IN (
        SELECT sc.id FROM suppressions s CROSS JOIN contacts sc ON sc.email_hash = s.email_hash
        WHERE s.channel IN ('all', 'whatsapp')
        UNION ALL
        SELECT sc.id FROM suppressions s CROSS JOIN contacts sc ON sc.phone_hash = s.phone_hash
        WHERE s.phone_hash <> '' AND sc.phone_hash <> '' AND s.channel IN ('all', 'whatsapp'));
