-- whatsapp_audience gains the contact's tags as a list, as interests has
-- them: tag_list in order, separated by char(31) (what exports write) and
-- tag_keys folded to lower case between separators (what tag:x searches
-- with one instr()). Exports and rules read them instead of expanding the
-- JSON array with json_each for every tagged row, a virtual table opened
-- per row (BenchmarkExport1M: one contact in seven is tagged).
--
-- The definition (whatsapp_audience_rows) gets the two columns last, as
-- ALTER TABLE adds them last, so that the triggers' SELECT * and consent
-- verify's comparison line up; the triggers copy them like the rest.

ALTER TABLE whatsapp_audience ADD COLUMN tag_list TEXT NOT NULL DEFAULT '';
ALTER TABLE whatsapp_audience ADD COLUMN tag_keys TEXT NOT NULL DEFAULT '';

DROP VIEW whatsapp_audience_rows;
CREATE VIEW whatsapp_audience_rows AS
SELECT w.contact_id AS contact_id, w.event_id AS consent_event_id, w.at AS opted_in_at,
       e.statement_version AS statement_version, e.statement_sha256 AS statement_sha256, e.campaign AS campaign,
       c.phone_e164 AS phone_e164, c.first_name AS first_name, c.last_name AS last_name,
       c.language AS language, c.country AS country, c.source AS source, c.tags AS tags,
       coalesce((SELECT group_concat(ci.interest, char(31)) FROM contact_interests ci
                 WHERE ci.contact_id = w.contact_id), '') AS interests,
       char(31) || lower(coalesce((SELECT group_concat(ci.interest, char(31)) FROM contact_interests ci
                 WHERE ci.contact_id = w.contact_id), '')) || char(31) AS interest_keys,
       CASE WHEN c.tags = '[]' THEN '' ELSE
           coalesce((SELECT group_concat(t.value, char(31)) FROM json_each(c.tags) t), '') END AS tag_list,
       char(31) || lower(CASE WHEN c.tags = '[]' THEN '' ELSE
           coalesce((SELECT group_concat(t.value, char(31)) FROM json_each(c.tags) t), '') END) || char(31) AS tag_keys
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
                  WHERE c.phone_hash <> '' AND s.phone_hash = c.phone_hash AND s.channel IN ('all', 'whatsapp'));;

UPDATE whatsapp_audience SET (tag_list, tag_keys) = (
    SELECT r.tag_list, r.tag_keys FROM whatsapp_audience_rows r WHERE r.contact_id = whatsapp_audience.contact_id)
WHERE contact_id IN (SELECT contact_id FROM whatsapp_audience_rows);
