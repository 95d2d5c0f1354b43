package store

// # Which writes wait for the disk
//
// A production-interface call writes up to three rows before it is answered: the nonce (replay cache), the
// inbox row (newInstance) and the message log entry. Only the last one is committed synchronously. The others
// are committed with synchronous_commit off, which returns as soon as the commit record is in PostgreSQL's WAL
// buffers instead of waiting for it to be flushed to disk.
//
// Nothing durable is lost by this, because PostgreSQL flushes the WAL in order: the message log's synchronous
// commit, which every call makes before it answers (api/gateway's finish, api/kit), flushes all WAL written
// before it, including the nonce and the inbox row of the same call. So when the marketplace reads an answer,
// every row behind it is on disk, exactly as if each had waited. If PostgreSQL crashes in between, no answer was
// sent, the rows may be lost, and the marketplace retries the call with a new nonce; newInstance is idempotent
// (the inbox row is keyed by the instance, the workflow start by its ID). What is saved is two disk flushes per
// call, which on a disk with ~2 ms fdatasync is most of the gateway's latency under load.
//
// The setting is changed for the statement's own transaction only (set_config's is_local), inside the statement,
// so it costs no extra round trip and never leaks to the next user of the pooled connection.

// relaxedCommit is a FROM item that switches the enclosing transaction to an asynchronous commit. Use it only for
// writes that a later synchronous commit on the same path makes durable before anyone relies on them.
const relaxedCommit = `(SELECT set_config('synchronous_commit', 'off', true)) AS relaxed_commit`
