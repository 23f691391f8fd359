-- When a detection's zoo model was swapped in, seconds into the window: at the detection or
-- up to 30 s after it, once the newest objects are all the new scene's (engine::detect).
-- NULL where nothing was swapped in, and for rows written before this column existed (those
-- swapped at the detection, `at`).

ALTER TABLE zoo_detections ADD COLUMN swapped_at REAL;
