/** The region's API Gateway CloudWatch role setting, declared only where nobody holds it. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assumeRolePolicy, childName, type HubContext } from "./context";

/**
 * SST's way with the region's API Gateway CloudWatch role (one setting for every API of the
 * account in the region): read it; only when it is unset declare a role with the AWS managed
 * push-to-CloudWatch-Logs policy and the setting. Both are retained on delete: with
 * @pulumi/aws v7 deleting `aws.apigateway.Account` resets the setting, which would break
 * logging for every other API of the region.
 *
 * When any role is set, it is left alone, even one this stack created on an earlier run: a
 * role retained by `pulumi destroy` is still in IAM and still in the setting, and declaring it
 * again would ask IAM to create it a second time. So the run after the one that set it drops
 * the three from the stack's state ("delete (retained)": nothing changes in AWS), and from then
 * on the stack only reads the setting. The role is auto-named (a new suffix each create), so a
 * later create never meets a retained role of an earlier one.
 */
export function buildApiGatewayAccountIfUnset(ctx: HubContext): pulumi.Output<pulumi.Resource> {
  const context = ctx.aws;
  const current = aws.apigateway.Account.get(childName(ctx, "apigateway-account-lookup"), "api-gateway-account", undefined, { parent: ctx.parent });
  return pulumi.all([current.cloudwatchRoleArn, context.partition]).apply(([arn, partition]): pulumi.Resource => {
    if (arn) return current; // set already (by anyone, this stack included): leave it alone
    const retain = { parent: ctx.parent, retainOnDelete: true };
    const role = new aws.iam.Role(
      childName(ctx, "apigateway-cloudwatch-role"),
      // 22 characters + the provider's 26: within IAM's 64 whatever the component's name.
      { namePrefix: "apigateway-cloudwatch-", assumeRolePolicy: assumeRolePolicy("apigateway.amazonaws.com"), tags: ctx.tags },
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
