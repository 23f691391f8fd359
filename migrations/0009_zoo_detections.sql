-- Scene changes the zoo's detector saw on a stream's served frames inside a window: when it
-- saw one, when the scene really changed (NULL: it did not, a false alarm) and the zoo model
-- swapped in then (NULL: none fitted). Written in the window's transaction with the rest of
-- the zoo's rows (0007_zoo.sql).

CREATE TABLE zoo_detections (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window     INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    stream     TEXT NOT NULL,
    at         REAL NOT NULL,   -- seconds into the window
    changed_at REAL,            -- seconds into the window; NULL for a false alarm
    swapped_to TEXT,
    PRIMARY KEY (run_id, window, seq)
);
