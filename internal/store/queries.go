package store

// queries holds every statement a Store runs, in its dialect's form. It is
// built once when the store opens, so that no query is rewritten per call.
// A field marked "SQLite" or "Postgres" is used by that dialect only (its
// algorithm differs: see Claim, Record, Release and Sync); it is empty for
// the other.
type queries struct {
	createMigrations, lockMigrations  string // lockMigrations: "" on SQLite
	serialize                         string // Postgres
	migrationApplied, insertMigration string
	schemaVersion                     string

	subscriberByKey, subscriberByID, subscriberPage, subscriberIDByKey string
	insertSubscriber, putSubscriber, updateSubscriber                  string
	unsubscribeByID, resubscribe, subscriberExists, setStatus          string
	countActive, deleteSubscriberLedger, deleteSubscriber              string
	syncLookup, syncInsert, syncUpdate                                 string // a batch on Postgres

	signupByID, signupByKey, signupPage, upsertSignup string
	deleteSignup, deleteSignupByKey                   string
	deleteSupersededSignups, purgeSignups             string

	getSetting, insertSettingNew string
	putSetting, deleteSetting    string
	retriesWaiting, nextRetry    string
	nthSentSince                 string

	issueByID, latestIssue, nextNumber, insertIssue, completeIssue string
	incompleteIssues                                               string
	deleteUnsentIssue                                              string
	recentIssues                                                   string

	issueExists, enqueue, recoverExpired     string
	pendingBatch, markSending, skipInactive  string // SQLite
	claim                                    string // Postgres
	record, bounceSubscriber, release        string // one row each on SQLite, a batch on Postgres
	counts, failures, sentSince              string
	renewRows, heldByOthers, ownerCounts     string
	liveRuns, issueRuns, insertRun, runLease string
	renewRun, countLiveRuns, endRun          string
	forgetOldRuns, releaseRunRows            string
	insertSeen, firstSeen, markSent          string
	setPrint, changed, markBacklog           string
	// insertSeenChunk inserts observeChunk stories at once, as insertSeen
	// does one; observedChunk reads what is known of observeChunk stories.
	insertSeenChunk, observedChunk string
	// sentIssueChunk is sentIssue for observeChunk articles.
	sentIssueChunk           string
	sourceSeen, insertSource string

	getDocument, putDocument               string
	sourceOK, sourceFailed, sourceFailures string
	buildLock, buildUnlock                 string // Postgres

	getLease, insertLease, takeLease, renewLease, releaseLease string
	issueContent, putIssueContent, issueIDs, endDeadRun        string
	aliveLock, aliveFree, dbNow                                string // Postgres
	getScheduleState, saveScheduleState                        string

	insertBounceEvent, bounceEventID, setBounceAction, softBounceDays string
	complainSubscriber, recentBounceEvents, bounceEventRaw            string
	forgetUnmatched, issueBounces, issueGone, bounceTotals            string
	forgetRaw, bounceRawKept                                          string
	latestSentIssue, wasSent, forgetBounceReader                      string
	foreignKeysOff, foreignKeysOn, foreignKeysState, foreignKeyCheck  string // SQLite
}

// newQueries binds the statements for d.
func newQueries(d dialect) *queries {
	b := d.bind
	q := &queries{
		createMigrations: sqlCreateMigrations,
		migrationApplied: b(sqlMigrationApplied),
		insertMigration:  b(sqlInsertMigration),
		schemaVersion:    b(sqlSchemaVersion),

		subscriberByKey:        b(sqlSubscriberByKey),
		subscriberByID:         b(sqlSubscriberByID),
		subscriberPage:         b(sqlSubscriberPage),
		subscriberIDByKey:      b(sqlSubscriberIDByKey),
		insertSubscriber:       b(sqlInsertSubscriber),
		putSubscriber:          b(sqlPutSubscriber),
		updateSubscriber:       b(sqlUpdateSubscriber),
		unsubscribeByID:        b(sqlUnsubscribeByID),
		resubscribe:            b(sqlResubscribe),
		subscriberExists:       b(sqlSubscriberExists),
		setStatus:              b(sqlSetStatus),
		countActive:            b(sqlCountActive),
		deleteSubscriberLedger: b(sqlDeleteSubscriberLedger),
		deleteSubscriber:       b(sqlDeleteSubscriber),
		syncLookup:             b(sqlSyncLookup),
		syncInsert:             b(sqlSyncInsert),
		syncUpdate:             b(sqlSyncFile),

		signupByID:              b(sqlSignupByID),
		signupByKey:             b(sqlSignupByKey),
		signupPage:              b(sqlSignupPage),
		upsertSignup:            b(sqlUpsertSignup),
		deleteSignup:            b(sqlDeleteSignup),
		deleteSignupByKey:       b(sqlDeleteSignupByKey),
		deleteSupersededSignups: b(sqlDeleteSupersededSignups),
		purgeSignups:            b(sqlPurgeSignups),

		getSetting:       b(sqlGetSetting),
		insertSettingNew: b(sqlInsertSettingNew),
		putSetting:       b(sqlPutSetting),
		deleteSetting:    b(sqlDeleteSetting),
		retriesWaiting:   b(sqlRetriesWaiting),
		nextRetry:        b(sqlNextRetry),
		nthSentSince:     b(sqlNthSentSince),

		issueByID:        b(sqlIssueByID),
		latestIssue:      b(sqlLatestIssue),
		incompleteIssues: b(sqlIncompleteIssues),
		nextNumber:       b(sqlNextNumber),
		insertIssue:      b(sqlInsertIssue),
		completeIssue:    b(sqlCompleteIssue),

		deleteUnsentIssue: b(sqlDeleteUnsentIssue),
		recentIssues:      b(sqlRecentIssues),

		issueExists:    b(sqlIssueExists),
		enqueue:        b(sqlEnqueue),
		recoverExpired: b(sqlRecoverExpired),
		counts:         b(sqlCounts),
		failures:       b(sqlFailures),
		sentSince:      b(sqlSentSince),
		renewRows:      b(sqlRenewRows),
		heldByOthers:   b(sqlHeldByOthers),
		ownerCounts:    b(sqlOwnerCounts),
		liveRuns:       b(sqlLiveRuns),
		issueRuns:      b(sqlIssueRuns),
		insertRun:      b(sqlInsertRun),
		runLease:       b(sqlRunLease),
		renewRun:       b(sqlRenewRun),
		countLiveRuns:  b(sqlCountLiveRuns),
		endRun:         b(sqlEndRun),
		forgetOldRuns:  b(sqlForgetOldRuns),
		releaseRunRows: b(sqlReleaseRunRows),

		insertSeen: b(sqlInsertSeen),
		firstSeen:  b(sqlFirstSeen),
		markSent:   b(sqlMarkSent),

		insertSeenChunk: b(sqlInsertSeenChunk(observeChunk)),
		observedChunk:   b(sqlObservedChunk(observeChunk)),
		sentIssueChunk:  b(sqlSentIssueChunk(observeChunk)),
		setPrint:        b(sqlSetPrint),
		changed:         b(sqlChanged),
		markBacklog:     b(sqlMarkBacklog),
		sourceSeen:      b(sqlSourceSeen),
		insertSource:    b(sqlInsertSource),

		getDocument:    b(sqlGetDocument),
		putDocument:    b(sqlPutDocument),
		sourceOK:       b(sqlSourceOK),
		sourceFailed:   b(sqlSourceFailed),
		sourceFailures: b(sqlSourceFailures),

		getLease:          b(sqlGetLease),
		insertLease:       b(sqlInsertLease),
		takeLease:         b(sqlTakeLease),
		renewLease:        b(sqlRenewLease),
		releaseLease:      b(sqlReleaseLease),
		getScheduleState:  b(sqlGetScheduleState),
		saveScheduleState: b(sqlSaveScheduleState),

		insertBounceEvent:  b(sqlInsertBounceEvent),
		bounceEventID:      b(sqlBounceEventID),
		setBounceAction:    b(sqlSetBounceAction),
		softBounceDays:     b(sqlSoftBounceDays),
		complainSubscriber: b(sqlComplainSubscriber),
		recentBounceEvents: b(sqlRecentBounceEvents),
		bounceEventRaw:     b(sqlBounceEventRaw),
		forgetUnmatched:    b(sqlForgetUnmatched),
		forgetRaw:          b(sqlForgetRaw),
		bounceRawKept:      b(sqlBounceRawKept),
		issueBounces:       b(sqlIssueBounces),
		issueGone:          b(sqlIssueGone),
		bounceTotals:       b(sqlBounceTotals),
		latestSentIssue:    b(sqlLatestSentIssue),
		wasSent:            b(sqlWasSent),
		forgetBounceReader: b(sqlForgetBounceReader),
		issueContent:       b(sqlIssueContent),
		putIssueContent:    b(sqlPutIssueContent),
		issueIDs:           b(sqlIssueIDs),
		endDeadRun:         b(sqlEndDeadRun),
	}
	switch d {
	case dialectPostgres:
		q.createMigrations = pgCreateMigrations
		q.lockMigrations = pgLockMigrations
		q.serialize = b(pgSerialize)
		q.syncLookup = b(pgSyncLookup)
		q.syncInsert = b(pgSyncInsert)
		q.syncUpdate = b(pgSyncUpdate)
		q.enqueue = b(pgEnqueue)
		q.recoverExpired = pgRecoverExpired // numbered parameters already
		q.claim = b(pgClaim)
		q.record = b(pgRecord)
		q.bounceSubscriber = b(pgBounce)
		q.release = b(pgRelease)
		q.renewRows = pgRenewRows
		q.buildLock = b(pgBuildLock)
		q.buildUnlock = b(pgBuildUnlock)
		q.aliveLock = b(pgAliveLock)
		q.aliveFree = b(pgAliveFree)
		q.dbNow = pgNow
	default:
		q.foreignKeysOff, q.foreignKeysOn = sqlForeignKeysOff, sqlForeignKeysOn
		q.foreignKeysState, q.foreignKeyCheck = sqlForeignKeysState, sqlForeignKeyCheck
		q.pendingBatch = sqlPendingBatch
		q.markSending = sqlMarkSending
		q.skipInactive = sqlSkipInactive
		q.record = sqlRecord
		q.bounceSubscriber = sqlBounceSubscriber
		q.release = sqlRelease
	}
	return q
}
