/**
 * An app's Pulumi program using the published component: `npm install notification-hub`,
 * then one `new NotificationHub(...)` next to the app's own resources.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { NotificationHub } from "notification-hub";

const hub = new NotificationHub("notifications", {
  stage: pulumi.getStack(),
  allowClientMessages: false,
  queue: { maximumConcurrency: 20 },
});

// The app backend's role gets exactly the hub's publisher policy.
const backendRole = new aws.iam.Role("app-backend", {
  assumeRolePolicy: JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }],
  }),
});
new aws.iam.RolePolicyAttachment("app-backend-publisher", { role: backendRole.name, policyArn: hub.publisherPolicyArn });

export const websocketUrl = hub.websocketUrl;
export const queueUrl = hub.queueUrl;
export const jwtSecret = hub.jwtSecret;
