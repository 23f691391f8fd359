-- tandem's history: every run, window, policy call, allocation, job, accuracy sample and
-- profiler prediction. Written window by window, each window in one transaction.

CREATE TABLE comparisons (
    id          INTEGER PRIMARY KEY,
    scenario    TEXT NOT NULL,
    policies    TEXT NOT NULL,            -- JSON array of policy labels
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    comparison_id   INTEGER REFERENCES comparisons(id) ON DELETE SET NULL,
    scenario        TEXT NOT NULL,
    scenario_toml   TEXT NOT NULL,        -- the scenario as run (JSON of the parsed file)
    policy          TEXT NOT NULL,
    policy_digest   TEXT NOT NULL,
    backend         TEXT NOT NULL,
    status          TEXT NOT NULL,        -- running | finished | failed | interrupted
    error           TEXT,
    windows_planned INTEGER NOT NULL,
    mean_accuracy   REAL,
    started_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    finished_at     TEXT
);
CREATE INDEX runs_by_policy ON runs(policy);
CREATE INDEX runs_by_scenario ON runs(scenario);

CREATE TABLE windows (
    run_id               INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window               INTEGER NOT NULL,
    mean_accuracy        REAL NOT NULL,
    gpu_utilization      REAL NOT NULL,
    profiler_gpu_seconds REAL NOT NULL,
    decision_at          REAL NOT NULL,
    recorded_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (run_id, window)
);

CREATE TABLE stream_windows (
    run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window           INTEGER NOT NULL,
    stream           TEXT NOT NULL,
    accuracy         REAL NOT NULL,
    start_accuracy   REAL NOT NULL,
    end_accuracy     REAL NOT NULL,
    infer_config     TEXT NOT NULL,
    infer_share      REAL NOT NULL,
    frames           INTEGER NOT NULL,
    frames_processed INTEGER NOT NULL,
    PRIMARY KEY (run_id, window, stream)
);

-- Served accuracy over time: 10 chunks per stream and window.
CREATE TABLE accuracy_samples (
    run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window   INTEGER NOT NULL,
    stream   TEXT NOT NULL,
    chunk    INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    PRIMARY KEY (run_id, window, stream, chunk)
);

CREATE TABLE policy_calls (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window  INTEGER NOT NULL,
    at      REAL NOT NULL,                -- seconds into the window
    plugin  TEXT NOT NULL,
    digest  TEXT NOT NULL,
    input   TEXT NOT NULL,                -- JSON
    output  TEXT,                         -- JSON; NULL when the call failed
    error   TEXT,                         -- why the fallback decided instead
    micros  INTEGER NOT NULL
);
CREATE INDEX policy_calls_by_run ON policy_calls(run_id, window);

CREATE TABLE allocations (
    run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    at             REAL NOT NULL,
    stream         TEXT NOT NULL,
    infer_share    REAL NOT NULL,
    retrain_share  REAL NOT NULL,
    infer_config   TEXT NOT NULL,
    retrain_config TEXT,
    PRIMARY KEY (run_id, window, seq)
);

CREATE TABLE jobs (
    run_id                INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window                INTEGER NOT NULL,
    stream                TEXT NOT NULL,
    config                TEXT NOT NULL,
    predicted_accuracy    REAL NOT NULL,
    actual_accuracy       REAL,
    predicted_gpu_seconds REAL NOT NULL,
    actual_gpu_seconds    REAL NOT NULL,
    started_at            REAL NOT NULL,
    finished_at           REAL,
    allocated_share       REAL NOT NULL,
    delivered_share       REAL NOT NULL,
    PRIMARY KEY (run_id, window, stream)
);

CREATE TABLE predictions (
    run_id                INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window                INTEGER NOT NULL,
    stream                TEXT NOT NULL,
    config                TEXT NOT NULL,
    predicted_accuracy    REAL NOT NULL,
    predicted_gpu_seconds REAL NOT NULL,
    actual_accuracy       REAL,
    actual_gpu_seconds    REAL,
    PRIMARY KEY (run_id, window, stream, config)
);
