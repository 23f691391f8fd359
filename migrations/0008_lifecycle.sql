-- Serverless streams (issue 14): each window's lifecycle — the policy, the server's resident
-- memory, each stream's phases and what it lost, every wake-up — written in the window's
-- transaction. Absent for windows of scenarios whose streams never come and go.

CREATE TABLE lifecycle_windows (
    run_id              INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window              INTEGER NOT NULL,
    policy              TEXT NOT NULL,
    memory_budget_bytes INTEGER,
    memory_mean_bytes   REAL NOT NULL,
    memory_peak_bytes   INTEGER NOT NULL,
    calls               INTEGER NOT NULL,
    errors              TEXT,                 -- JSON array, NULL when none
    wake_costs          TEXT NOT NULL,        -- JSON: seconds by path and each path's steps
    PRIMARY KEY (run_id, window)
);

CREATE TABLE stream_lives (
    run_id              INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window              INTEGER NOT NULL,
    stream              TEXT NOT NULL,
    phases              TEXT NOT NULL,        -- JSON: [[seconds into the window, phase], ...]
    end_phase           TEXT NOT NULL,
    frames_lost         INTEGER NOT NULL,
    resident_bytes      INTEGER NOT NULL,
    resident_mean_bytes REAL NOT NULL,
    evictions           INTEGER NOT NULL,
    memory_wait_seconds INTEGER NOT NULL,
    PRIMARY KEY (run_id, window, stream)
);

CREATE TABLE cold_starts (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    stream  TEXT NOT NULL,
    at      REAL NOT NULL,
    path    TEXT NOT NULL,                    -- cold | preprocessed | prewarmed
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, window, seq)
);
