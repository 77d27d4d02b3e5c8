import { describe, expect, it } from "vitest";
import { DbUnavailableError, markSent } from "../../src/db/gate.js";
import { isConflictVictim, isDataError, isDbUnavailable, isOutcomeUnknown } from "../../src/db/errors.js";

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("isDbUnavailable: what a request meets while PostgreSQL is away or restarting (answered 503)", () => {
  it.each([
    ["postgres.js: connection closed", pgError("CONNECTION_CLOSED", "write CONNECTION_CLOSED 127.0.0.1:5432")],
    ["postgres.js: connection ended", pgError("CONNECTION_ENDED", "write CONNECTION_ENDED 127.0.0.1:5432")],
    ["postgres.js: connect timeout", pgError("CONNECT_TIMEOUT", "write CONNECT_TIMEOUT 127.0.0.1:5432")],
    ["refused", pgError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432")],
    ["reset", pgError("ECONNRESET", "read ECONNRESET")],
    ["a write to a socket PostgreSQL closed", pgError("EPIPE", "write EPIPE")],
    ["admin shutdown", pgError("57P01", "terminating connection due to administrator command")],
    ["crash shutdown", pgError("57P02", "terminating connection because of crash of another server process")],
    ["starting up", pgError("57P03", "the database system is starting up")],
    ["postgres.js: connection destroyed", pgError("CONNECTION_DESTROYED", "write CONNECTION_DESTROYED 127.0.0.1:5432")],
    ["not yet accepting connections", pgError("57P03", "the database system is not yet accepting connections")],
    ["connection failure (class 08)", pgError("08006", "connection failure")],
    ["too many connections", pgError("53300", "sorry, too many clients already")],
  ])("%s", (_, e) => {
    expect(isDbUnavailable(e)).toBe(true);
    expect(isDataError(e)).toBe(false);
  });

  it.each([
    ["a unique violation", pgError("23505", "duplicate key value violates unique constraint")],
    ["a refused value", pgError("22023", "invalid parameter value")],
    ["a syntax error (a bug, not an outage)", pgError("42601", "syntax error at or near")],
    ["a protocol violation (a bug: wrong number of parameters)", pgError("08P01", "bind message supplies 1 parameters, but prepared statement requires 2")],
    ["a commit whose outcome is unknown (a retry could duplicate)", pgError("08007", "transaction resolution unknown")],
    ["an operator's trigger whose message mentions a shutdown", pgError("P0001", "refused: the warehouse is shutting down")],
    ["a plain error", new Error("boom")],
    ["not an error", "text"],
    ["nothing", null],
  ])("not %s", (_, e) => {
    expect(isDbUnavailable(e)).toBe(false);
  });
});

describe("isConflictVictim: a statement PostgreSQL rolled back to break a conflict (answered 503, retry)", () => {
  it.each([
    ["deadlock detected", pgError("40P01", "deadlock detected"), true],
    ["serialization failure", pgError("40001", "could not serialize access due to concurrent update"), true],
    ["lock wait ran out (rerun inside inTx, not a victim answer)", pgError("55P03", "canceling statement due to lock timeout"), false],
    ["a unique violation", pgError("23505", "duplicate key value violates unique constraint"), false],
    ["a connection failure", pgError("08006", "connection failure"), false],
    ["no code", new Error("deadlock detected"), false],
  ])("%s", (_, e, victim) => {
    expect(isConflictVictim(e)).toBe(victim);
  });
});

describe("isOutcomeUnknown: a write whose connection died after it was sent (503 outcome_unknown, resend idempotently)", () => {
  const sent = (e: Error, s: boolean) => {
    markSent(e, s);
    return e;
  };
  it.each([
    ["connection closed while the statement ran", sent(pgError("CONNECTION_CLOSED", "write CONNECTION_CLOSED"), true), true],
    ["admin shutdown of the backend running it", sent(pgError("57P01", "terminating connection due to administrator command"), true), true],
    ["reset, not known whether sent", pgError("ECONNRESET", "read ECONNRESET"), true],
    ["transaction resolution unknown", pgError("08007", "transaction resolution unknown"), true],
    ["connection closed before the statement was sent", sent(pgError("CONNECTION_CLOSED", "write CONNECTION_CLOSED"), false), false],
    ["sent once is sent for good", sent(sent(pgError("CONNECTION_CLOSED", "x"), true), false), true],
    ["refused connection", pgError("ECONNREFUSED", "connect ECONNREFUSED"), false],
    ["connect timeout", pgError("CONNECT_TIMEOUT", "write CONNECT_TIMEOUT"), false],
    ["the gate's own refusal", new DbUnavailableError("database unavailable"), false],
    ["starting up", pgError("57P03", "the database system is starting up"), false],
    ["deadlock victim", pgError("40P01", "deadlock detected"), false],
    ["a refused value", pgError("22023", "invalid parameter value"), false],
  ])("%s", (_, e, unknown) => {
    expect(isOutcomeUnknown(e)).toBe(unknown);
  });
});
