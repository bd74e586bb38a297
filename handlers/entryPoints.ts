/**
 * Each handler's entry point, by manifest name: called with no argument on Lambda (it reads
 * process.env), with a HandlerSource by the local hub. The `satisfies` makes a manifest
 * entry without an entry point (or the reverse) a type error.
 */
import { authorizerFromEnvironment } from "./authorizer";
import { connectFromEnvironment } from "./connect";
import { defaultFromEnvironment } from "./default";
import type { HandlerSource } from "./dependencies";
import { deliverFromEnvironment } from "./deliver";
import { disconnectFromEnvironment } from "./disconnect";
import type { HandlerName } from "./manifest";
import { resumeFromEnvironment } from "./resume";
import { sendMessageFromEnvironment } from "./sendMessage";

export type EntryPoint = (source?: HandlerSource) => (event: never) => Promise<unknown>;

export const ENTRY_POINTS = {
  authorizer: authorizerFromEnvironment,
  connect: connectFromEnvironment,
  disconnect: disconnectFromEnvironment,
  default: defaultFromEnvironment,
  deliver: deliverFromEnvironment,
  sendMessage: sendMessageFromEnvironment,
  resume: resumeFromEnvironment,
} satisfies Record<HandlerName, EntryPoint>;
