-- The process that is writing a running run, so that opening the history from another process
-- does not mark a live run interrupted.
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
