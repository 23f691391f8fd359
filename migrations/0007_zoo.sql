-- The model zoo, window by window: every zoo model checked for a stream and what it measured,
-- every zoo model that went on to serve (deployed as it is, or retrained from), the models the
-- zoo gained and lost, and its size at the window's end. Written in the window's transaction;
-- runs without a zoo have no rows here. Model ids are the zoo's (`pretrained`, `m1`, ...): a run
-- compared side by side works on its own copy of the zoo, so its ids name its own models.

CREATE TABLE zoo_windows (
    run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window            INTEGER NOT NULL,
    models            INTEGER NOT NULL,   -- models in the zoo at the window's end
    bytes             INTEGER NOT NULL,   -- their weights' total size
    check_gpu_seconds REAL NOT NULL,      -- modelled GPU-seconds of the checks, charged to the window
    errors            TEXT,               -- JSON array: why selector calls failed; NULL when none did
    PRIMARY KEY (run_id, window)
);

-- A zoo model measured on a stream's validation split. `seq` keeps the order of the report
-- (a model may be checked more than once for a stream in one window).
CREATE TABLE zoo_checks (
    run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window   INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    stream   TEXT NOT NULL,
    model    TEXT NOT NULL,
    accuracy REAL NOT NULL,
    PRIMARY KEY (run_id, window, seq)
);
CREATE INDEX zoo_checks_by_model ON zoo_checks(model);

-- A zoo model that went on to serve a stream: as it is (as_is = 1) or as the start of a
-- retraining (as_is = 0).
CREATE TABLE zoo_uses (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    stream TEXT NOT NULL,
    model  TEXT NOT NULL,
    as_is  INTEGER NOT NULL,
    PRIMARY KEY (run_id, window, seq)
);
CREATE INDEX zoo_uses_by_model ON zoo_uses(model);

-- Models the zoo gained (deployed after retraining) and lost (evicted to stay within bounds).
CREATE TABLE zoo_changes (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    window INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    model  TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('added', 'evicted')),
    PRIMARY KEY (run_id, window, seq)
);
CREATE INDEX zoo_changes_by_model ON zoo_changes(model);
