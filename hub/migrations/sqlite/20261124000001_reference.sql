-- Reference data (基础数据) imported as data: each set (departments, categories, ownership)
-- is kept whole as a JSON array of its rows and replaced whole by an import.
CREATE TABLE reference_sets (
    kind        TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    rows        BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    imported_by TEXT NOT NULL
);

-- Every import, for the audit: who replaced which set when, from what (its SHA-256).
-- `revision` counts imports; an import names the one it replaces, and the key makes a
-- second import based on the same revision fail instead of undoing the first.
CREATE TABLE reference_imports (
    revision BIGINT PRIMARY KEY,
    kind     TEXT NOT NULL,
    rows     BIGINT NOT NULL,
    sha256   TEXT NOT NULL,
    source   TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at       BIGINT NOT NULL
);
