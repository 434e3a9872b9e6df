package store

import "strings"

// The SQL of the package is here and, for what Postgres must do otherwise,
// in sql_postgres.go. The statements below are written once for both
// engines, with "?" placeholders that a Postgres store rebinds to "$n" once
// when it opens (see [dialect.bind] and queries.go). They stick to what both
// accept: ON CONFLICT, INSERT … SELECT, CASE, COALESCE; times are bound from
// Go (never CURRENT_TIMESTAMP) so that an injected clock governs them, and a
// placeholder's type must follow from its context (a column it is compared
// with or assigned to). What differs has a Postgres variant: the schema
// (identity columns, TIMESTAMPTZ, BYTEA), GREATEST for scalar MAX, LIMIT NULL
// for LIMIT -1, and the batch statements over arrays that save round trips
// (claims with FOR UPDATE SKIP LOCKED, outcomes, imports).

// sqliteMigrations returns the SQLite schema changes in order; version n is
// element n-1. Never edit an applied migration: append a new one, here and in
// postgresMigrations.
func sqliteMigrations() []string {
	return []string{
		// 1: initial schema.
		`CREATE TABLE subscribers (
			id              INTEGER PRIMARY KEY,
			email           TEXT NOT NULL,
			email_key       TEXT NOT NULL UNIQUE,
			name            TEXT NOT NULL DEFAULT '',
			status          TEXT NOT NULL DEFAULT 'active'
			                CHECK (status IN ('active', 'unsubscribed', 'bounced')),
			created_at      TIMESTAMP NOT NULL,
			updated_at      TIMESTAMP NOT NULL,
			unsubscribed_at TIMESTAMP
		);
		CREATE INDEX subscribers_status ON subscribers (status, id);

		CREATE TABLE issues (
			id            TEXT PRIMARY KEY,
			number        INTEGER NOT NULL UNIQUE,
			subject       TEXT NOT NULL DEFAULT '',
			built_at      TIMESTAMP NOT NULL,
			article_count INTEGER NOT NULL DEFAULT 0,
			completed_at  TIMESTAMP
		);

		CREATE TABLE deliveries (
			issue_id      TEXT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
			subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
			status        TEXT NOT NULL DEFAULT 'pending'
			              CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
			attempts      INTEGER NOT NULL DEFAULT 0,
			last_code     INTEGER NOT NULL DEFAULT 0,
			last_enhanced TEXT NOT NULL DEFAULT '',
			last_reply    TEXT NOT NULL DEFAULT '',
			created_at    TIMESTAMP NOT NULL,
			updated_at    TIMESTAMP NOT NULL,
			sent_at       TIMESTAMP,
			PRIMARY KEY (issue_id, subscriber_id)
		);
		-- (issue_id, status) for counts and claims; subscriber_id last so a
		-- claim reads pending rows already in subscriber order.
		CREATE INDEX deliveries_issue_status ON deliveries (issue_id, status, subscriber_id);
		CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

		CREATE TABLE articles_seen (
			article_id TEXT PRIMARY KEY,
			first_seen TIMESTAMP NOT NULL,
			issue_id   TEXT,
			sent_at    TIMESTAMP
		);

		CREATE TABLE settings (
			key   TEXT PRIMARY KEY,
			value TEXT NOT NULL
		);`,

		// 2: the last good copy of each fetched document (conditional GET,
		// stale fallback) and each source's run of failures.
		`CREATE TABLE documents (
			key           TEXT PRIMARY KEY,
			etag          TEXT NOT NULL DEFAULT '',
			last_modified TEXT NOT NULL DEFAULT '',
			url           TEXT NOT NULL DEFAULT '',
			content_type  TEXT NOT NULL DEFAULT '',
			body          BLOB NOT NULL,
			fetched_at    TIMESTAMP NOT NULL
		);

		CREATE TABLE source_runs (
			name           TEXT PRIMARY KEY,
			failures       INTEGER NOT NULL DEFAULT 0,
			last_error     TEXT NOT NULL DEFAULT '',
			last_ok_at     TIMESTAMP,
			last_failed_at TIMESTAMP
		);`,

		// 3: claimed rows carry their owner (a run) and a lease; a skipped
		// status for readers whose topics the issue does not cover; the
		// runs that deliver; readers' topics. SQLite cannot change a CHECK
		// constraint, so deliveries is rebuilt (nothing references it).
		// Rows left in sending by an older version get no lease: the next
		// claim takes them back.
		`CREATE TABLE deliveries_v3 (
			issue_id      TEXT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
			subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
			status        TEXT NOT NULL DEFAULT 'pending'
			              CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
			attempts      INTEGER NOT NULL DEFAULT 0,
			last_code     INTEGER NOT NULL DEFAULT 0,
			last_enhanced TEXT NOT NULL DEFAULT '',
			last_reply    TEXT NOT NULL DEFAULT '',
			created_at    TIMESTAMP NOT NULL,
			updated_at    TIMESTAMP NOT NULL,
			sent_at       TIMESTAMP,
			owner         TEXT NOT NULL DEFAULT '',
			lease_until   TIMESTAMP,
			PRIMARY KEY (issue_id, subscriber_id)
		);
		INSERT INTO deliveries_v3 (issue_id, subscriber_id, status, attempts, last_code, last_enhanced,
			last_reply, created_at, updated_at, sent_at)
			SELECT issue_id, subscriber_id, status, attempts, last_code, last_enhanced,
				last_reply, created_at, updated_at, sent_at FROM deliveries;
		DROP TABLE deliveries;
		ALTER TABLE deliveries_v3 RENAME TO deliveries;
		CREATE INDEX deliveries_issue_status ON deliveries (issue_id, status, subscriber_id);
		CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
		CREATE INDEX deliveries_owner ON deliveries (owner, status);

		ALTER TABLE subscribers ADD COLUMN topics TEXT NOT NULL DEFAULT '';

		CREATE TABLE runs (
			id          TEXT PRIMARY KEY,
			host        TEXT NOT NULL,
			pid         INTEGER NOT NULL,
			issue_id    TEXT NOT NULL,
			worker      BOOLEAN NOT NULL DEFAULT FALSE,
			started_at  TIMESTAMP NOT NULL,
			seen_at     TIMESTAMP NOT NULL,
			lease_until TIMESTAMP NOT NULL
		);`,

		// 4: sign-ups from the web form waiting for their address to be
		// confirmed (double opt-in). They live apart from subscribers so
		// that delivery never sees them, and so that a sign-up for an
		// address that unsubscribed leaves that record as it is until the
		// address is confirmed. Purged after a week unconfirmed.
		`CREATE TABLE signups (
			id         INTEGER PRIMARY KEY,
			email      TEXT NOT NULL,
			email_key  TEXT NOT NULL UNIQUE,
			name       TEXT NOT NULL DEFAULT '',
			topics     TEXT NOT NULL DEFAULT '',
			created_at TIMESTAMP NOT NULL
		);
		CREATE INDEX signups_created ON signups (created_at);`,

		// 5: SentSince (the relay quotas, checked every few seconds by
		// every sending run) counts the sent rows of all issues since a
		// time: without this index that is a scan of the whole ledger.
		`CREATE INDEX deliveries_sent_at ON deliveries (sent_at) WHERE status = 'sent';`,

		// 6: named leases (one active daemon per database) and the
		// daemon's schedule state.
		`CREATE TABLE leases (
			name       TEXT PRIMARY KEY,
			holder_id  TEXT NOT NULL,
			host       TEXT NOT NULL,
			pid        INTEGER NOT NULL,
			since      TIMESTAMP NOT NULL,
			renewed_at TIMESTAMP NOT NULL,
			expires_at TIMESTAMP NOT NULL
		);

		CREATE TABLE schedule_state (
			name         TEXT PRIMARY KEY,
			scheduled_at TIMESTAMP NOT NULL,
			outcome      TEXT NOT NULL,
			detail       TEXT NOT NULL DEFAULT '',
			updated_at   TIMESTAMP NOT NULL
		);`,

		// 7: the selection's memory of stories and sources (settle,
		// backfill): what each story looked like when last seen and when
		// that last changed, whether it is a new source's backlog (never
		// sent), and when each source was first seen.
		`ALTER TABLE articles_seen ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
		ALTER TABLE articles_seen ADD COLUMN changed_at TIMESTAMP;
		ALTER TABLE articles_seen ADD COLUMN backlog BOOLEAN NOT NULL DEFAULT FALSE;

		CREATE TABLE sources_seen (
			name       TEXT PRIMARY KEY,
			first_seen TIMESTAMP NOT NULL
		);`,

		// 8: subscribers file ownership. What the subscribers file said
		// of each reader's name and topics at the last sync or import
		// (NULL: it never said), so that a sync applies a field only when
		// the file changed it: a reader's own choice on the preferences
		// page stands until then.
		`ALTER TABLE subscribers ADD COLUMN file_name TEXT;
		ALTER TABLE subscribers ADD COLUMN file_topics TEXT;`,

		// 9 (retry times): a reader's temporary failure puts the row back
		// to pending with the time of its next attempt; a claim skips rows
		// not yet due. NULL (rows written before) means due now.
		`ALTER TABLE deliveries ADD COLUMN retry_at TIMESTAMP;`,

		// 10 (bounces): the complained status, and the bounce events
		// (returned mail, complaints, ESP events) with what each did.
		// SQLite cannot change a CHECK constraint, so subscribers is
		// rebuilt; deliveries references it, so this migration runs with
		// foreign keys off (see migrateWithoutForeignKeys).
		noForeignKeysMarker + `
		CREATE TABLE subscribers_v10 (
			id              INTEGER PRIMARY KEY,
			email           TEXT NOT NULL,
			email_key       TEXT NOT NULL UNIQUE,
			name            TEXT NOT NULL DEFAULT '',
			status          TEXT NOT NULL DEFAULT 'active'
			                CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
			created_at      TIMESTAMP NOT NULL,
			updated_at      TIMESTAMP NOT NULL,
			unsubscribed_at TIMESTAMP,
			topics          TEXT NOT NULL DEFAULT '',
			file_name       TEXT,
			file_topics     TEXT
		);
		INSERT INTO subscribers_v10 (id, email, email_key, name, status, created_at, updated_at, unsubscribed_at, topics, file_name, file_topics)
			SELECT id, email, email_key, name, status, created_at, updated_at, unsubscribed_at, topics, file_name, file_topics FROM subscribers;
		DROP TABLE subscribers;
		ALTER TABLE subscribers_v10 RENAME TO subscribers;
		CREATE INDEX subscribers_status ON subscribers (status, id);

		CREATE TABLE bounce_events (
			id            INTEGER PRIMARY KEY,
			fingerprint   TEXT NOT NULL UNIQUE,
			received_at   TIMESTAMP NOT NULL,
			day           TEXT NOT NULL,
			source        TEXT NOT NULL,
			kind          TEXT NOT NULL,
			status        TEXT NOT NULL DEFAULT '',
			diagnostic    TEXT NOT NULL DEFAULT '',
			recipient     TEXT NOT NULL DEFAULT '',
			format        TEXT NOT NULL DEFAULT '',
			reason        TEXT NOT NULL DEFAULT '',
			subscriber_id INTEGER,
			issue_id      TEXT NOT NULL DEFAULT '',
			via           TEXT NOT NULL DEFAULT '',
			action        TEXT NOT NULL DEFAULT '',
			raw           BLOB
		);
		CREATE INDEX bounce_events_subscriber ON bounce_events (subscriber_id, kind, received_at);
		CREATE INDEX bounce_events_received ON bounce_events (received_at);
		CREATE INDEX bounce_events_issue ON bounce_events (issue_id, kind);`,

		// 11: built issues held in the store, so that any process with
		// the database and the config can deliver, resume or publish one
		// (the archive folder is written from here); and the liveness key
		// of each run's and lease's process, whose death the store can
		// tell (an advisory lock on Postgres) before the lease expires.
		`CREATE TABLE issue_contents (
			issue_id  TEXT PRIMARY KEY REFERENCES issues (id) ON DELETE CASCADE,
			issue     TEXT NOT NULL,
			templates TEXT NOT NULL,
			topics    TEXT NOT NULL
		);
		ALTER TABLE runs ADD COLUMN alive_key TEXT NOT NULL DEFAULT '';
		ALTER TABLE leases ADD COLUMN alive_key TEXT NOT NULL DEFAULT '';`,
	}
}

// noForeignKeysMarker starts a SQLite migration that must run with foreign
// keys off: one that rebuilds a table that others reference, where the
// DROP of the old table would otherwise cascade to their rows.
const noForeignKeysMarker = "-- foreign keys off\n"

// What migrateWithoutForeignKeys runs around such a migration (SQLite).
const (
	sqlForeignKeysOff   = `PRAGMA foreign_keys = OFF`
	sqlForeignKeysOn    = `PRAGMA foreign_keys = ON`
	sqlForeignKeysState = `PRAGMA foreign_keys`
	sqlForeignKeyCheck  = `PRAGMA foreign_key_check`
)

const (
	sqlCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL
	)`
	sqlMigrationApplied = `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`
	sqlInsertMigration  = `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`
	sqlSchemaVersion    = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`
)

// Subscribers.
const (
	subscriberColumns = `id, email, name, status, topics, created_at, updated_at`

	sqlSubscriberByKey  = `SELECT ` + subscriberColumns + ` FROM subscribers WHERE email_key = ?`
	sqlSubscriberByID   = `SELECT ` + subscriberColumns + ` FROM subscribers WHERE id = ?`
	sqlSubscriberPage   = `SELECT ` + subscriberColumns + ` FROM subscribers WHERE id > ? ORDER BY id LIMIT ?`
	sqlInsertSubscriber = `INSERT INTO subscribers (email, email_key, name, status, topics, created_at, updated_at, unsubscribed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	// sqlPutSubscriber is the operator's add of a known address: the new
	// spelling, name and topics, and active again, unless the reader
	// complained (never mailed again).
	sqlPutSubscriber = `UPDATE subscribers
		SET email = ?, name = ?, topics = ?,
		    status = CASE WHEN status = 'complained' THEN status ELSE 'active' END,
		    unsubscribed_at = CASE WHEN status = 'complained' THEN unsubscribed_at ELSE NULL END, updated_at = ?
		WHERE id = ?`
	sqlUpdateSubscriber = `UPDATE subscribers SET name = ?, topics = ?, updated_at = ? WHERE id = ?`
	// sqlSyncFile is a sync's update of a known reader: the name and
	// topics now, and what the file says of them.
	sqlSyncFile = `UPDATE subscribers SET name = ?, topics = ?, file_name = ?, file_topics = ?, updated_at = ? WHERE id = ?`
	// sqlSyncLookup reads what a sync needs of a known reader.
	sqlSyncLookup = `SELECT id, name, topics, file_name, file_topics FROM subscribers WHERE email_key = ?`
	// sqlSyncInsert is a sync's addition: insertSubscriber with what the
	// file said.
	sqlSyncInsert = `INSERT INTO subscribers (email, email_key, name, status, topics, created_at, updated_at, unsubscribed_at,
			file_name, file_topics)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlUnsubscribeByID = `UPDATE subscribers
		SET status = 'unsubscribed', unsubscribed_at = COALESCE(unsubscribed_at, ?), updated_at = ?
		WHERE id = ? AND status <> 'unsubscribed'`
	sqlResubscribe = `UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'unsubscribed'`
	sqlSubscriberExists = `SELECT COUNT(*) FROM subscribers WHERE id = ?`
	sqlSetStatus        = `UPDATE subscribers
		SET status = ?,
		    unsubscribed_at = CASE
		        WHEN ? = 'unsubscribed' THEN COALESCE(unsubscribed_at, ?)
		        WHEN ? = 'active' THEN NULL
		        ELSE unsubscribed_at END,
		    updated_at = ?
		WHERE id = ?`
	sqlBounceSubscriber = `UPDATE subscribers SET status = 'bounced', updated_at = ?
		WHERE id = ? AND status = 'active'`
	sqlSubscriberIDByKey      = `SELECT id FROM subscribers WHERE email_key = ?`
	sqlDeleteSubscriberLedger = `DELETE FROM deliveries WHERE subscriber_id = ?`
	sqlDeleteSubscriber       = `DELETE FROM subscribers WHERE id = ?`
	sqlCountActive            = `SELECT COUNT(*) FROM subscribers WHERE status = 'active'`
)

// Sign-ups.
const (
	signupColumns   = `id, email, name, topics, created_at`
	sqlSignupByID   = `SELECT ` + signupColumns + ` FROM signups WHERE id = ?`
	sqlSignupByKey  = `SELECT ` + signupColumns + ` FROM signups WHERE email_key = ?`
	sqlSignupPage   = `SELECT ` + signupColumns + ` FROM signups WHERE id > ? ORDER BY id LIMIT ?`
	sqlUpsertSignup = `INSERT INTO signups (email, email_key, name, topics, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (email_key) DO UPDATE SET email = excluded.email, name = excluded.name,
			topics = excluded.topics, created_at = excluded.created_at`
	sqlDeleteSignup      = `DELETE FROM signups WHERE id = ?`
	sqlDeleteSignupByKey = `DELETE FROM signups WHERE email_key = ?`
	// Subscribers added by an operator or an import supersede their
	// pending sign-ups.
	sqlDeleteSupersededSignups = `DELETE FROM signups WHERE email_key IN (SELECT email_key FROM subscribers)`
	sqlPurgeSignups            = `DELETE FROM signups WHERE created_at < ?`
)

// Settings.
const (
	sqlGetSetting       = `SELECT value FROM settings WHERE key = ?`
	sqlInsertSettingNew = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
	sqlPutSetting       = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	sqlDeleteSetting    = `DELETE FROM settings WHERE key = ?`
)

// Issues.
const (
	// issues.subject (migration 1) is neither written nor read: the subject
	// is rendered after the number is given, and the stored content renders
	// it again. The column stays, so that an older version sharing the
	// database keeps working.
	issueColumns   = `id, number, built_at, article_count, completed_at`
	sqlIssueByID   = `SELECT ` + issueColumns + ` FROM issues WHERE id = ?`
	sqlLatestIssue = `SELECT ` + issueColumns + ` FROM issues ORDER BY number DESC LIMIT 1`
	// sqlIncompleteIssues lists the issues whose delivery is not complete
	// (or never started), the latest first.
	sqlIncompleteIssues = `SELECT id FROM issues WHERE completed_at IS NULL ORDER BY number DESC LIMIT ?`
	sqlNextNumber       = `SELECT COALESCE(MAX(number), 0) + 1 FROM issues`
	sqlInsertIssue      = `INSERT INTO issues (id, number, built_at, article_count, completed_at)
		VALUES (?, ?, ?, ?, ?)`
	sqlCompleteIssue = `UPDATE issues SET completed_at = COALESCE(completed_at, ?) WHERE id = ?`
	// An issue is deleted only while its delivery has not started.
	sqlDeleteUnsentIssue = `DELETE FROM issues WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = issues.id)`
	// Ids sort in the order of the times they name, whatever their form.
	sqlRecentIssues = `SELECT ` + issueColumns + ` FROM issues ORDER BY id DESC LIMIT ?`
)

// Ledger. Lease times are compared with the store's lease clock (real
// time), never the injected clock of --now.
const (
	sqlIssueExists = `SELECT COUNT(*) FROM issues WHERE id = ?`
	sqlEnqueue     = `INSERT INTO deliveries (issue_id, subscriber_id, status, created_at, updated_at)
		SELECT ?, id, 'pending', ?, ? FROM subscribers WHERE status = 'active'
		ON CONFLICT (issue_id, subscriber_id) DO NOTHING`
	// sqlRecoverExpired puts rows whose owner's lease ran out back in the
	// queue: the owner died or stalled, and nobody else holds them.
	sqlRecoverExpired = `UPDATE deliveries SET status = 'pending', owner = '', lease_until = NULL, updated_at = ?
		WHERE issue_id = ? AND status = 'sending' AND (lease_until IS NULL OR lease_until <= ?)`
	sqlPendingBatch = `SELECT d.subscriber_id, s.email, s.name, s.status, s.topics, d.attempts
		FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
		WHERE d.issue_id = ? AND d.status = 'pending' AND d.subscriber_id > ?
		  AND (d.retry_at IS NULL OR d.retry_at <= ?)
		ORDER BY d.subscriber_id LIMIT ?`
	sqlMarkSending = `UPDATE deliveries SET status = 'sending', owner = ?, lease_until = ?, updated_at = ?
		WHERE issue_id = ? AND subscriber_id = ? AND status = 'pending'`
	sqlSkipInactive = `UPDATE deliveries
		SET status = 'skipped', last_code = 0, last_enhanced = '', last_reply = ?, updated_at = ?
		WHERE issue_id = ? AND subscriber_id = ? AND status = 'pending'`
	// sqlRecord never touches a row that is already settled (sent, failed,
	// skipped): a late or repeated outcome must not undo it. A sent outcome
	// is recorded whoever holds the row now (the message was accepted: that
	// is a fact, even from a run whose lease ran out); any other outcome
	// only by the row's owner, so a stale run cannot take back a row that
	// another run claimed. A row that leaves sending loses its lease; the
	// owner stays on settled rows (who sent it) and is cleared on pending.
	sqlRecord = `UPDATE deliveries
		SET status = ?,
		    attempts = MAX(attempts + 1, ?),
		    last_code = ?, last_enhanced = ?, last_reply = ?,
		    updated_at = ?,
		    sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,
		    owner = CASE WHEN ? = 'pending' THEN '' ELSE ? END,
		    lease_until = NULL, retry_at = ?
		WHERE issue_id = ? AND subscriber_id = ?
		  AND ((status = 'sending' AND owner = ?) OR (? = 'sent' AND status IN ('pending', 'sending')))`
	sqlRelease = `UPDATE deliveries SET status = 'pending', owner = '', lease_until = NULL, updated_at = ?
		WHERE issue_id = ? AND subscriber_id = ? AND status = 'sending' AND owner = ?`
	sqlRenewRows = `UPDATE deliveries SET lease_until = ?
		WHERE owner = ? AND status = 'sending'`
	sqlHeldByOthers = `SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND status = 'sending' AND owner <> ?`
	sqlCounts       = `SELECT status, COUNT(*) FROM deliveries WHERE issue_id = ? GROUP BY status`
	// Pending rows whose next attempt is later than the bound time.
	sqlRetriesWaiting = `SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND status = 'pending' AND retry_at > ?`
	sqlNextRetry      = `SELECT retry_at FROM deliveries WHERE issue_id = ? AND status = 'pending' AND retry_at > ?
		ORDER BY retry_at LIMIT 1`
	sqlOwnerCounts = `SELECT owner, status, COUNT(*) FROM deliveries
		WHERE issue_id = ? AND owner <> '' AND status IN ('sending', 'sent') GROUP BY owner, status`
	sqlFailures = `SELECT s.email, d.attempts, d.last_code, d.last_enhanced, d.last_reply
		FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
		WHERE d.issue_id = ? AND d.status = 'failed'
		ORDER BY d.subscriber_id LIMIT ?`
)

// Runs. (On Postgres, BeginRun's check-then-insert must hold a lock that
// serializes registrations: here the immediate transaction does.)
const (
	runColumns        = `id, host, pid, issue_id, worker, started_at, seen_at, lease_until, alive_key`
	sqlLiveRuns       = `SELECT ` + runColumns + ` FROM runs WHERE lease_until > ? ORDER BY started_at, id`
	sqlIssueRuns      = `SELECT ` + runColumns + ` FROM runs WHERE issue_id = ? ORDER BY started_at, id`
	sqlInsertRun      = `INSERT INTO runs (` + runColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlRunLease       = `SELECT lease_until FROM runs WHERE id = ?`
	sqlRenewRun       = `UPDATE runs SET seen_at = ?, lease_until = ? WHERE id = ?`
	sqlCountLiveRuns  = `SELECT COUNT(*) FROM runs WHERE lease_until > ?`
	sqlEndRun         = `UPDATE runs SET seen_at = ?, lease_until = ? WHERE id = ?`
	sqlForgetOldRuns  = `DELETE FROM runs WHERE lease_until < ?`
	sqlReleaseRunRows = `UPDATE deliveries SET status = 'pending', owner = '', lease_until = NULL, updated_at = ?
		WHERE owner = ? AND status = 'sending'`
)

// Seen articles.
const (
	sqlInsertSeen = `INSERT INTO articles_seen (article_id, first_seen) VALUES (?, ?)
		ON CONFLICT (article_id) DO NOTHING`
	sqlFirstSeen = `SELECT first_seen FROM articles_seen WHERE article_id = ?`
	// The first issue that carried an article keeps it.
	sqlMarkSent = `INSERT INTO articles_seen (article_id, first_seen, issue_id, sent_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (article_id) DO UPDATE SET issue_id = excluded.issue_id, sent_at = excluded.sent_at
		WHERE articles_seen.sent_at IS NULL`
)

// sqlInsertSeenChunk is sqlInsertSeen for n stories (a story twice in it is
// inserted once).
func sqlInsertSeenChunk(n int) string {
	return `INSERT INTO articles_seen (article_id, first_seen) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + ` ON CONFLICT (article_id) DO NOTHING`
}

// sqlSentIssueChunk gives, of n articles, those that an issue other than
// the last argument carried, and that issue.
func sqlSentIssueChunk(n int) string {
	return `SELECT article_id, issue_id FROM articles_seen WHERE article_id IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `) AND sent_at IS NOT NULL AND issue_id IS NOT NULL AND issue_id <> ?`
}

// sqlObservedChunk reads what is known of n stories, each row named.
func sqlObservedChunk(n int) string {
	return `SELECT article_id, first_seen, fingerprint, changed_at, backlog FROM articles_seen WHERE article_id IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
}

// Stories' changes and sources' first sight (settle, backfill). A
// fingerprint is recorded without a change the first time (and over the
// empty one of rows older than migration 7); a different one is a change.
const (
	sqlSetPrint     = `UPDATE articles_seen SET fingerprint = ? WHERE article_id = ?`
	sqlChanged      = `UPDATE articles_seen SET fingerprint = ?, changed_at = ? WHERE article_id = ?`
	sqlSourceSeen   = `SELECT first_seen FROM sources_seen WHERE name = ?`
	sqlInsertSource = `INSERT INTO sources_seen (name, first_seen) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`
	// A story already sent is not made backlog.
	sqlMarkBacklog = `UPDATE articles_seen SET backlog = TRUE WHERE article_id = ? AND sent_at IS NULL`
)

// Documents and source runs.
const (
	sqlGetDocument = `SELECT etag, last_modified, url, content_type, body, fetched_at
		FROM documents WHERE key = ?`
	sqlPutDocument = `INSERT INTO documents (key, etag, last_modified, url, content_type, body, fetched_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
			url = excluded.url, content_type = excluded.content_type, body = excluded.body,
			fetched_at = excluded.fetched_at`
	sqlSourceOK = `INSERT INTO source_runs (name, failures, last_error, last_ok_at) VALUES (?, 0, '', ?)
		ON CONFLICT (name) DO UPDATE SET failures = 0, last_error = '', last_ok_at = excluded.last_ok_at`
	sqlSourceFailed = `INSERT INTO source_runs (name, failures, last_error, last_failed_at) VALUES (?, 1, ?, ?)
		ON CONFLICT (name) DO UPDATE SET failures = source_runs.failures + 1,
			last_error = excluded.last_error, last_failed_at = excluded.last_failed_at`
	sqlSourceFailures = `SELECT failures FROM source_runs WHERE name = ?`
)

// Quotas.
const (
	sqlSentSince = `SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND sent_at >= ?`
	// When the OFFSET-th (from 0) oldest message sent since the bound
	// time was sent: when a cap frees its next slot.
	sqlNthSentSince = `SELECT sent_at FROM deliveries WHERE status = 'sent' AND sent_at >= ?
		ORDER BY sent_at LIMIT 1 OFFSET ?`
)

// Leases. Taking an expired lease re-checks, in the UPDATE itself, that it
// is still held by the same process and still expired: on Postgres the
// UPDATE waits for a concurrent taker's commit and then finds nothing to
// change, so two processes never both succeed.
const (
	leaseColumns   = `name, holder_id, host, pid, since, renewed_at, expires_at, alive_key`
	sqlGetLease    = `SELECT ` + leaseColumns + ` FROM leases WHERE name = ?`
	sqlInsertLease = `INSERT INTO leases (` + leaseColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`
	sqlTakeLease   = `UPDATE leases SET holder_id = ?, host = ?, pid = ?, since = ?, renewed_at = ?, expires_at = ?, alive_key = ?
		WHERE name = ? AND holder_id = ? AND expires_at <= ?`
	sqlRenewLease   = `UPDATE leases SET renewed_at = ?, expires_at = ? WHERE name = ? AND holder_id = ?`
	sqlReleaseLease = `DELETE FROM leases WHERE name = ? AND holder_id = ?`
)

// Built issues' contents: what delivery renders each message from.
const (
	sqlIssueContent    = `SELECT issue, templates, topics FROM issue_contents WHERE issue_id = ?`
	sqlPutIssueContent = `INSERT INTO issue_contents (issue_id, issue, templates, topics) VALUES (?, ?, ?, ?)
		ON CONFLICT (issue_id) DO UPDATE SET issue = excluded.issue, templates = excluded.templates, topics = excluded.topics`
	sqlIssueIDs = `SELECT id FROM issues ORDER BY number`
)

// Liveness: a dead owner's run ends now and its rows go back to pending
// (sqlReleaseRunRows).
const sqlEndDeadRun = `UPDATE runs SET lease_until = ? WHERE id = ? AND lease_until > ?`

// Schedule state. A save never moves the state back to an earlier scheduled
// time (a slow run finishing after a later time was skipped).
const (
	sqlGetScheduleState  = `SELECT scheduled_at, outcome, detail, updated_at FROM schedule_state WHERE name = ?`
	sqlSaveScheduleState = `INSERT INTO schedule_state (name, scheduled_at, outcome, detail, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET scheduled_at = excluded.scheduled_at, outcome = excluded.outcome,
			detail = excluded.detail, updated_at = excluded.updated_at
		WHERE excluded.scheduled_at >= schedule_state.scheduled_at`
)

// Bounces (see bounces.go). An event's fingerprint makes a replay a no-op;
// the soft score counts distinct days since the reader's last delivery
// event.
const (
	bounceEventColumns = `id, received_at, source, kind, status, diagnostic, recipient, format, reason,
		COALESCE(subscriber_id, 0), issue_id, via, action`
	sqlInsertBounceEvent = `INSERT INTO bounce_events (fingerprint, received_at, day, source, kind, status, diagnostic,
			recipient, format, reason, subscriber_id, issue_id, via, raw)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING`
	sqlBounceEventID   = `SELECT id FROM bounce_events WHERE fingerprint = ?`
	sqlSetBounceAction = `UPDATE bounce_events SET action = ? WHERE id = ?`
	sqlSoftBounceDays  = `SELECT COUNT(DISTINCT day) FROM bounce_events
		WHERE subscriber_id = ? AND kind = 'soft' AND received_at >= ?
		  AND received_at > COALESCE((SELECT MAX(received_at) FROM bounce_events
		                              WHERE subscriber_id = ? AND kind = 'delivered'), ?)`
	sqlComplainSubscriber = `UPDATE subscribers SET status = 'complained', updated_at = ?
		WHERE id = ? AND status <> 'complained'`
	sqlRecentBounceEvents = `SELECT ` + bounceEventColumns + ` FROM bounce_events ORDER BY received_at DESC, id DESC LIMIT ?`
	sqlBounceEventRaw     = `SELECT raw FROM bounce_events WHERE id = ?`
	// sqlForgetUnmatched drops, past UnmatchedKeep, the events that never
	// change anyone later: unmatched ones, and the delays, deliveries and
	// auto-replies that an ESP may report for every message.
	sqlForgetUnmatched = `DELETE FROM bounce_events
		WHERE kind IN ('unmatched', 'delivered', 'delayed', 'auto-reply') AND received_at < ?`
	// sqlForgetRaw drops, past UnmatchedKeep, the copies of the events
	// that stay (a hard bounce that named no reader, say).
	sqlForgetRaw = `UPDATE bounce_events SET raw = NULL WHERE raw IS NOT NULL AND received_at < ?`
	// sqlBounceRawKept is the size of the copies kept (RawBudget).
	sqlBounceRawKept = `SELECT COALESCE(SUM(LENGTH(raw)), 0) FROM bounce_events WHERE raw IS NOT NULL`
	sqlIssueBounces  = `SELECT kind, COUNT(DISTINCT subscriber_id) FROM bounce_events
		WHERE issue_id = ? AND subscriber_id IS NOT NULL GROUP BY kind`
	sqlIssueGone = `SELECT s.status, COUNT(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
		WHERE d.issue_id = ? AND d.status = 'sent' AND s.status <> 'active' GROUP BY s.status`
	sqlBounceTotals = `SELECT kind, source, COUNT(*) FROM bounce_events GROUP BY kind, source`
	// sqlLatestSentIssue attributes an event that names its reader but
	// not the issue (an ESP event by address) to the last issue sent.
	sqlLatestSentIssue = `SELECT issue_id FROM deliveries WHERE subscriber_id = ? AND status = 'sent'
		ORDER BY sent_at DESC LIMIT 1`
	sqlForgetBounceReader = `UPDATE bounce_events SET subscriber_id = NULL WHERE subscriber_id = ?`
	sqlWasSent            = `SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND subscriber_id = ? AND status = 'sent'`
)
