/**
 * `compute`, remembering its last `size` answers. For values that repeat in runs, such as
 * the timestamps of one claim's rows (one now() per statement): a miss costs a few
 * comparisons more than calling `compute` directly. A key that equals nothing (NaN) is
 * never remembered.
 */
export function rememberLast<K, V>(size: number, compute: (key: K) => V): (key: K) => V {
  const keys: Array<K | undefined> = Array(size).fill(undefined);
  const values: V[] = Array(size);
  let next = 0;
  return (key) => {
    for (let i = 0; i < size; i++) if (keys[i] === key) return values[i]!;
    const value = compute(key);
    keys[next] = key;
    values[next] = value;
    next = (next + 1) % size;
    return value;
  };
}
