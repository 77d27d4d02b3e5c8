-- Every claim and every acknowledgement writes a new version of the job's row. On a full page
-- (the default fillfactor, 100) that version goes to another page, and PostgreSQL first writes
-- a lock record for the old one while it looks for room: four lock records per job instead of
-- two, and two heap pages dirtied per update. Half-full pages keep most new versions on their
-- own page (pruned on access once the old ones are dead). The updates are still not HOT (the
-- status, in the partial indexes' predicates, changes), so every index still gets its entry.
-- Applies to pages filled from now on; a ShareUpdateExclusive lock, so claims go on meanwhile.
ALTER TABLE "jobs" SET (fillfactor = 50);
