/**
 * Group commit without a timer. Calls that arrive while `inFlight` runs are
 * busy wait, and the next run takes all of them (up to `maxUnits`), so an idle
 * service runs each call at once and a busy one turns many one-row statements
 * into one many-row statement. Every call still gets its own answer: `run`
 * returns one output per request, in order. A failed run fails exactly the
 * requests it carried, unless `isolate` says the failure may be one request's
 * own doing (a value the database refuses): then the requests are run again in
 * halves until only the one at fault fails.
 */
export function coalescer<I, O>(
  run: (requests: I[]) => Promise<O[]>,
  o: {
    inFlight: number;
    maxUnits: number;
    units: (request: I) => number;
    /** True for an error that may belong to one request; the run must have changed nothing (one statement, or rolled back). */
    isolate?: (e: unknown) => boolean;
    /** Called when the last run ends with nothing waiting. */
    onIdle?: () => void;
  },
) {
  interface Pending {
    request: I;
    resolve: (out: O) => void;
    reject: (e: unknown) => void;
  }
  let waiting: Pending[] = [];
  let busy = 0;

  type Settled = { ok: true; out: O } | { ok: false; err: unknown };
  /**
   * One run for all. When it fails in a way `isolate` allows, each half runs again, one
   * after the other, down to the request at fault: a few statements (about 2 log2 n) and
   * never more than one at a time, where re-running each request at once would take the
   * whole pool and, for submits, queue them on one fairness row again.
   */
  async function runTogether(requests: I[]): Promise<Settled[]> {
    try {
      return (await run(requests)).map((out) => ({ ok: true, out }));
    } catch (e) {
      if (requests.length === 1 || !o.isolate?.(e)) return requests.map(() => ({ ok: false, err: e }));
      const mid = Math.ceil(requests.length / 2);
      return [...(await runTogether(requests.slice(0, mid))), ...(await runTogether(requests.slice(mid)))];
    }
  }
  const settleAll = (take: Pending[]) =>
    runTogether(take.map((p) => p.request)).then((results) => {
      for (const [i, p] of take.entries()) {
        const r = results[i]!;
        if (r.ok) p.resolve(r.out);
        else p.reject(r.err);
      }
    });

  function pump() {
    while (busy < o.inFlight && waiting.length > 0) {
      let units = 0;
      let n = 0;
      while (n < waiting.length && (n === 0 || units + o.units(waiting[n]!.request) <= o.maxUnits)) {
        units += o.units(waiting[n]!.request);
        n++;
      }
      const take = waiting.slice(0, n);
      waiting = waiting.slice(n);
      busy++;
      settleAll(take)
        .finally(() => {
          busy--;
          pump();
          if (busy === 0 && waiting.length === 0) o.onIdle?.();
        });
    }
  }

  return {
    call(request: I): Promise<O> {
      return new Promise<O>((resolve, reject) => {
        waiting.push({ request, resolve, reject });
        pump();
      });
    },
  };
}

/** One coalescer per key (requests can only share a statement when their filters match); idle keys are dropped. */
export function keyedCoalescer<K, I, O>(
  run: (key: K, requests: I[]) => Promise<O[]>,
  o: {
    inFlight: number;
    maxUnits: number;
    units: (request: I) => number;
    isolate?: (e: unknown) => boolean;
    keyOf: (key: K) => string;
  },
) {
  const byKey = new Map<string, ReturnType<typeof coalescer<I, O>>>();
  const call = (key: K, request: I): Promise<O> => {
    const k = o.keyOf(key);
    let c = byKey.get(k);
    if (!c) {
      const created = coalescer<I, O>((requests) => run(key, requests), {
        ...o,
        // Dropped from inside the coalescer, after its own bookkeeping: a caller's await
        // resumes before that, when the coalescer does not look idle yet.
        onIdle: () => {
          if (byKey.get(k) === created) byKey.delete(k);
        },
      });
      c = created;
      byKey.set(k, c);
    }
    return c.call(request);
  };
  /** Keys with work in flight or waiting (the others are dropped). */
  return Object.assign(call, { activeKeys: () => byKey.size });
}

/**
 * Runs `items` in one call; when it fails in a way `isolate` accepts (a value the database
 * refuses), runs each half again, one after the other, down to the items at fault. Returns
 * what the successful calls returned, and the items refused.
 */
export async function withoutRefused<T, R>(
  items: T[],
  run: (items: T[]) => Promise<R[]>,
  isolate: (e: unknown) => boolean,
): Promise<{ out: R[]; refused: T[] }> {
  try {
    return { out: await run(items), refused: [] };
  } catch (e) {
    if (items.length === 0 || !isolate(e)) throw e;
    if (items.length === 1) return { out: [], refused: items };
    const mid = Math.ceil(items.length / 2);
    const a = await withoutRefused(items.slice(0, mid), run, isolate);
    const b = await withoutRefused(items.slice(mid), run, isolate);
    return { out: [...a.out, ...b.out], refused: [...a.refused, ...b.refused] };
  }
}
