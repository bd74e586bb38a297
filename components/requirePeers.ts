/** Imported first by the component's entry point: its Pulumi peers must be installed (core/peers.ts). */
import { assertPeersInstalled } from "../core/peers";

assertPeersInstalled("the NotificationHub component", ["@pulumi/pulumi", "@pulumi/aws", "@pulumi/random"], __dirname);
