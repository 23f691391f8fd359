-- Whether a finished job's model went on to serve (the host keeps the old model when the new one
-- validates worse, unless the scenario turns that off).
ALTER TABLE jobs ADD COLUMN deployed INTEGER NOT NULL DEFAULT 1;
