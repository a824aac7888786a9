-- Nonces of accepted signed requests, so that a replay is refused also after a restart.
-- nonce_hash is a 16-byte hash of the nonce; expires_at (Unix ms) is when the request's timestamp
-- leaves the signature window, after which the row may go.
CREATE TABLE nonces (
    user_name  TEXT    NOT NULL,
    nonce_hash BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, nonce_hash)
);

CREATE INDEX nonces_expires ON nonces (expires_at);
