/** The app-backend SDK pointed at a test's dynalite and @connections stand-ins (cheap bcrypt for speed). */
import { createNotifier, type Notifier, type NotifierOptions } from "../../server";
import type { StandaloneConnectionsEmulator } from "../../local/testing";
import type { Dynamo } from "./services";

export function testNotifier(dynamo: Dynamo, management: StandaloneConnectionsEmulator, secrets: { jwtSecret: string; passcode: string }): Notifier {
  return createNotifier(testNotifierOptions(dynamo, management, secrets));
}

export function testNotifierOptions(dynamo: Dynamo, management: StandaloneConnectionsEmulator, secrets: { jwtSecret: string; passcode: string }): NotifierOptions {
  return {
    authTableName: dynamo.authTable,
    connectionsTableName: dynamo.connectionsTable,
    managementEndpoint: management.endpoint,
    ...secrets,
    region: "us-east-1",
    endpoints: { dynamodb: dynamo.endpoint },
    bcryptCost: 4,
    revokeRecheckMs: 10,
  };
}
