/** The region's API Gateway CloudWatch role setting, declared only where nobody holds it. */
import * as crypto from "crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assumeRolePolicy, childName, type HubContext } from "./context";

/**
 * SST's way with the region's API Gateway CloudWatch role (one setting for every API of the
 * account in the region): read it; only when it is unset (or is the role this stack set
 * earlier) declare a role with the AWS managed push-to-CloudWatch-Logs policy and the
 * setting. Both are retained on delete: with @pulumi/aws v7 deleting `aws.apigateway.Account`
 * resets the setting, which would break logging for every other API of the region.
 */
export function buildApiGatewayAccountIfUnset(ctx: HubContext): pulumi.Output<pulumi.Resource> {
  const context = ctx.aws;
  const current = aws.apigateway.Account.get(childName(ctx, "apigateway-account-lookup"), "api-gateway-account", undefined, { parent: ctx.parent });
  // Deterministic, so a later run recognises its own role and keeps declaring it.
  const roleName = `apigateway-cloudwatch-${crypto.createHash("sha256").update(`${pulumi.getProject()}/${pulumi.getStack()}/${ctx.name}`).digest("hex").slice(0, 16)}`;
  return pulumi.all([current.cloudwatchRoleArn, context.partition]).apply(([arn, partition]): pulumi.Resource => {
    if (arn && !arn.endsWith(`:role/${roleName}`)) return current; // someone else's: leave it alone
    const retain = { parent: ctx.parent, retainOnDelete: true };
    const role = new aws.iam.Role(
      childName(ctx, "apigateway-cloudwatch-role"),
      { name: roleName, assumeRolePolicy: assumeRolePolicy("apigateway.amazonaws.com"), tags: ctx.tags },
      retain,
    );
    const attachment = new aws.iam.RolePolicyAttachment(
      childName(ctx, "apigateway-cloudwatch-policy"),
      { role: role.name, policyArn: `arn:${partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs` },
      retain,
    );
    return new aws.apigateway.Account(childName(ctx, "apigateway-account"), { cloudwatchRoleArn: role.arn }, { ...retain, dependsOn: [attachment] });
  });
}
