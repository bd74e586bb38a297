/** The app-backend SDK pointed at a test's dynalite and @connections stand-ins (cheap bcrypt for speed). */
import { createNotifier, type Notifier } from "../../server";
import type { StandaloneConnectionsEmulator } from "../../local/testing";
import type { Dynamo } from "./services";

export function testNotifier(dynamo: Dynamo, management: StandaloneConnectionsEmulator, secrets: { jwtSecret: string; passcode: string }): Notifier {
  return createNotifier({
    authTableName: dynamo.authTable,
    connectionsTableName: dynamo.connectionsTable,
    managementEndpoint: management.endpoint,
    ...secrets,
    region: "us-east-1",
    endpoints: { dynamodb: dynamo.endpoint },
    bcryptCost: 4,
    revokeRecheckMs: 10,
  });
}
