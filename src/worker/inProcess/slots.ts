/**
 * The worker's job slots: how many jobs it holds leased, the claim loops waiting for a free
 * slot, and the stop() calls waiting for the last one to be settled.
 */
export class Slots {
  /** Jobs leased to this worker whose outcome is not recorded yet. */
  held = 0;
  /** Claim loops waiting for free slots. */
  private waiters: Array<() => void> = [];
  /** stop() calls waiting for the last lease to be settled. */
  private readonly drainWaiters: Array<() => void> = [];
  // Slots freed in one turn of the event loop (a completion statement settles many at once)
  // wake the claim loops once, so they claim them in one statement, not one each.
  private wakeQueued = false;
  private readonly wake = () => {
    this.wakeQueued = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  };

  constructor(readonly concurrency: number) {}

  get free(): number {
    return this.concurrency - this.held;
  }

  /** Reserved before a claim, so parallel claim loops never lease more than `concurrency`. */
  reserve(n: number): void {
    this.held += n;
  }

  release(): void {
    this.held--;
    if (!this.wakeQueued) {
      this.wakeQueued = true;
      setImmediate(this.wake);
    }
    if (this.held === 0) for (const d of this.drainWaiters.splice(0)) d();
  }

  /** Resolves when release() frees slots (or stop() wakes every loop). */
  freed(): Promise<void> {
    return new Promise<void>((r) => {
      this.waiters.push(r);
    });
  }

  /** stop(): the claim loops wake now and see that they are stopping. */
  wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when no job is held any more. */
  drained(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise<void>((r) => {
      this.drainWaiters.push(r);
    });
  }
}
