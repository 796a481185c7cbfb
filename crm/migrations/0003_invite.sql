-- Columns the invitation sender needs beyond 0002.

-- reminder_status tracks a reminder through the same queue → sending → done
-- cycle as the invitation itself ('' none due, queued, sending, failed), so
-- that a crash while reminding re-sends at most the reminders in flight.
ALTER TABLE invitations ADD COLUMN reminder_status TEXT NOT NULL DEFAULT '';

-- expired_at is set by invite.Expire when an unanswered invitation passes
-- expires_at; the funnel counts it and reminders stop.
ALTER TABLE invitations ADD COLUMN expired_at TEXT NOT NULL DEFAULT '';

-- Claiming reminders scans only the few rows that have one due.
CREATE INDEX invitations_reminder ON invitations(campaign_id, reminder_status, id) WHERE reminder_status <> '';
