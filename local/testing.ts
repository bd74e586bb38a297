/**
 * The local hub with test hooks, for this repository's tests and benchmarks only (not an
 * export of the package): `startTestHub(options, { faultInjection: true })` gives a hub whose
 * `faults` cut DynamoDB or fail @connections posts on demand; `deliverModule` swaps the
 * deliver handler in the worker threads. The `@connections` emulator on its own, for handler
 * tests without sockets, is `startConnectionsEmulator` from local/gateway/connectionsApi.ts.
 */
import { startLocalHub, type LocalHub, type LocalHubOptions } from "./index";
import { fileTestHooks, type HubFaults, type LocalHubTestHooks } from "./testHooks";

export type { HubFaults, LocalHubTestHooks } from "./testHooks";
export { startConnectionsEmulator, type StandaloneConnectionsEmulator, type Fault } from "./gateway/connectionsApi";

export interface TestHub extends LocalHub {
  /** Present with `faultInjection: true`. */
  faults?: HubFaults;
}

export async function startTestHub(options: LocalHubOptions, hooks: LocalHubTestHooks): Promise<TestHub> {
  // A copy of the options is the key: the caller's object may be reused for another hub.
  const own = { ...options };
  const filed = fileTestHooks(own, hooks);
  const hub = await startLocalHub(own);
  return { ...hub, faults: filed.faults };
}
