import postgres from "postgres";

/**
 * Load for backend kills (issue 31.4), shared by test/integration/backend-kills.test.ts and
 * bench/backend-kills.ts: producers submit with an Idempotency-Key and resend the same request
 * on a 503 until it is acknowledged; HTTP workers poll and complete, resending a complete on a
 * 503 (it is fenced by the lease token). Every complete's latency, resends included, is kept
 * with the phase it started in.
 */
export interface KillLoad {
  /** Logical submits acknowledged (one per key). */
  acked: Set<string>;
  /** Per job id, the lease tokens whose complete was answered 200. */
  completedBy: Map<string, Set<string>>;
  completeMs: { clean: number[]; kills: number[] };
  status: Map<string, number>;
  phase: "clean" | "kills";
  /** Stops submitting (workers go on). */
  stopProducers: () => Promise<void>;
  stop: () => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startKillLoad(base: string, keys: { client: string; worker: string }, o = { producers: 4, workers: 8, leaseSeconds: 5 }): KillLoad {
  let running = true;
  let producing = true;
  const load: KillLoad = {
    acked: new Set(),
    completedBy: new Map(),
    completeMs: { clean: [], kills: [] },
    status: new Map(),
    phase: "clean",
    stopProducers: async () => {
      producing = false;
      await Promise.all(producers);
    },
    stop: async () => {
      producing = false;
      running = false;
      await Promise.all([...producers, ...workers]);
    },
  };
  const call = async (key: string, path: string, body: unknown, headers: Record<string, string> = {}) => {
    try {
      const r = await fetch(base + path, {
        method: "POST",
        headers: { authorization: key, "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const json = (await r.json().catch(() => null)) as { code?: string } | null;
      const k = `${path.replace(/[0-9a-f-]{36}/, "{id}")} ${r.status}${r.status >= 400 ? ` ${json?.code}` : ""}`;
      load.status.set(k, (load.status.get(k) ?? 0) + 1);
      return { status: r.status, body: json as never };
    } catch {
      return { status: -1, body: null as never };
    }
  };
  const producer = async (p: number) => {
    for (let n = 0; producing; n++) {
      const key = `p${p}-${n}`;
      for (;;) {
        const r = await call(keys.client, "/v1/jobs", { queue: "kills", kind: "k", payload: { key } }, { "idempotency-key": key });
        if (r.status === 200 || r.status === 201) break;
        await sleep(50);
      }
      load.acked.add(key);
      await sleep(5);
    }
  };
  const worker = async (w: number) => {
    while (running) {
      const r = await call(keys.worker, "/v1/process-next", { queues: ["kills"], workerId: `w${w}`, max: 5, leaseSeconds: o.leaseSeconds, waitMs: 500 });
      if (r.status !== 200) {
        await sleep(50);
        continue;
      }
      for (const j of (r.body as { jobs: Array<{ id: string; leaseToken: string }> }).jobs) {
        const phase = load.phase;
        const t0 = performance.now();
        for (;;) {
          const c = await call(keys.worker, `/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken, result: { w } });
          if (c.status === 200) {
            const by = load.completedBy.get(j.id) ?? new Set<string>();
            by.add(j.leaseToken);
            load.completedBy.set(j.id, by);
          }
          if (c.status !== 503 && c.status !== -1) break;
          await sleep(50);
        }
        load.completeMs[phase].push(performance.now() - t0);
      }
    }
  };
  const producers = Array.from({ length: o.producers }, (_, p) => producer(p));
  const workers = Array.from({ length: o.workers }, (_, w) => worker(w));
  return load;
}

/** Terminates one random client backend of `database` every `everyMs` until stopped; returns the count. */
export function startBackendKiller(adminUrl: string, database: string, everyMs = 500) {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  let running = true;
  let kills = 0;
  const loop = (async () => {
    while (running) {
      await sleep(everyMs);
      const r = await admin<{ ok: boolean }[]>`
        SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = ${database} AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        ORDER BY random() LIMIT 1`.catch(() => []);
      if (r[0]?.ok) kills++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      await admin.end();
      return kills;
    },
  };
}

export const p = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : Number.NaN;
};
