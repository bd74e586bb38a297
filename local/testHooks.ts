/**
 * Test-only hooks of the local hub, kept out of the public `LocalHubOptions`: they reach
 * `startLocalHub` only through local/testing.ts (`startTestHub`), which files them here
 * against the options object it passes. Nothing here is exported from the package root.
 */
import type { DeliverWorkerConfig } from "./deliverWorker";
import type { LocalHubOptions } from "./index";

export interface LocalHubTestHooks {
  /**
   * Faults no real part produces on demand: a cuttable proxy between the handlers and
   * DynamoDB, and injected @connections errors. The hub's `faults`.
   */
  faultInjection?: boolean;
  /** With `deliverWorkers`: a module exporting `(deps, config) => handler` to run instead (benchmarks run the seed's algorithm). */
  deliverModule?: DeliverWorkerConfig["deliverModule"];
  /**
   * Connections whose `$disconnect` the emulator drops when they close (API Gateway's is
   * best-effort): given each closing connection's user, true drops it. Presence's sweep must
   * then find the connection dead (core/liveness.ts). Wins over the public `dropDisconnect`
   * share (LocalHubOptions), which drops at random rather than by connection.
   */
  dropDisconnect?: (connection: HookedConnection) => boolean;
  /**
   * Connections the emulator makes half-open, as a peer that vanished without a TCP close
   * (a laptop asleep, a mobile drop) is to API Gateway: asked at each client frame and at the
   * client's close, true from then on means the gateway no longer receives its frames nor sees
   * its close, `$disconnect` never runs, posts vanish, and `@connections` GET answers 200 until
   * the emulated idle timeout (or a DELETE) ends it. Presence's sweep must find it by its pings
   * (core/liveness.ts deadAfterMs), not by GET.
   */
  halfOpen?: (connection: HookedConnection) => boolean;
}

/** A connection as a hook sees it: its id and its token's user. */
export interface HookedConnection {
  connectionId: string;
  userId?: string;
}

/** The gateway's connection as the hooks see it. */
export function hookIdentity(connection: { id: string; authorizer: Record<string, unknown> }): HookedConnection {
  return { connectionId: connection.id, userId: typeof connection.authorizer.user_id === "string" ? connection.authorizer.user_id : undefined };
}

/** Faults a test hub injects on demand. */
export interface HubFaults {
  /** Cuts the handlers off DynamoDB (open connections reset, new ones refused). */
  cutDynamo(): void;
  restoreDynamo(): void;
  /** The next `times` @connections posts to this connection fail with `status`. */
  failPosts(connectionId: string, status: 429 | 500, times: number): void;
}

interface Filed extends LocalHubTestHooks {
  /** Filled in by the hub once started with `faultInjection`. */
  faults?: HubFaults;
}

const filed = new WeakMap<LocalHubOptions, Filed>();

export function fileTestHooks(options: LocalHubOptions, hooks: LocalHubTestHooks): Filed {
  const entry: Filed = { ...hooks };
  filed.set(options, entry);
  return entry;
}

/** The hooks filed for these options; none for any caller that did not go through local/testing.ts. */
export function testHooksOf(options: LocalHubOptions): Filed {
  return filed.get(options) ?? {};
}
