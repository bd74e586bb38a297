/**
 * Keeps `npm test` output bounded on a busy machine: each distinct console line (numbers,
 * ids and times masked) prints at most three times; later repeats are counted, and the
 * summary reporter prints how many were hidden (it reads the same globalThis key). SUMMARY lines always pass.
 * State lives on globalThis: vitest bundles its config apart from the reporter's modules.
 */
interface FilterState {
  seen: Map<string, number>;
  hidden: number;
}

const KEY = "__notificationHubConsoleFilter";
const state: FilterState = ((globalThis as Record<string, unknown>)[KEY] ??= { seen: new Map(), hidden: 0 }) as FilterState;
const REPEATS_SHOWN = 3;

export function keepConsoleLog(text: string): boolean {
  if (text.includes("SUMMARY ")) return true;
  const key = text
    .replace(/[0-9a-f]{8,}(-[0-9a-f]+)*/gi, "#")
    .replace(/\d+/g, "#")
    .slice(0, 400);
  const count = (state.seen.get(key) ?? 0) + 1;
  state.seen.set(key, count);
  if (count <= REPEATS_SHOWN) return true;
  state.hidden++;
  return false;
}
