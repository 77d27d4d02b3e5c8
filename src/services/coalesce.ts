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
   * One run for all. When it fails in a way `isolate` allows, it runs again in halves
   * (inHalves): a few statements, never more than one at a time, where re-running each
   * request at once would take the whole pool and, for submits, queue them on one
   * fairness row again.
   */
  async function runTogether(requests: I[]): Promise<Settled[]> {
    const parts = await inHalves(requests, run, o.isolate ?? (() => false));
    return parts.flatMap((p): Settled[] =>
      p.ok ? p.out.map((out) => ({ ok: true, out })) : p.items.map(() => ({ ok: false, err: p.error })),
    );
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

export type Part<T, R> = { items: T[] } & ({ ok: true; out: R } | { ok: false; error: unknown });

/**
 * Runs `items` in one call; when that fails in a way `isolate` accepts (a value the
 * database refuses), runs each half again, one after the other, down to the single items
 * at fault: about 2 log2 n calls. Returns each part that ran last, in order, with its
 * output or its error.
 */
export async function inHalves<T, R>(
  items: T[],
  run: (items: T[]) => Promise<R>,
  isolate: (e: unknown) => boolean,
): Promise<Part<T, R>[]> {
  try {
    return [{ items, ok: true, out: await run(items) }];
  } catch (error) {
    if (items.length <= 1 || !isolate(error)) return [{ items, ok: false, error }];
    const mid = Math.ceil(items.length / 2);
    return [...(await inHalves(items.slice(0, mid), run, isolate)), ...(await inHalves(items.slice(mid), run, isolate))];
  }
}
