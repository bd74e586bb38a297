/** The JWT signing secret: generated or given, kept in an SSM parameter under a KMS key of the hub's own. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PolicyStatement } from "../policies";
import { childName, type HubContext } from "./context";

export interface HubSecret {
  value: pulumi.Output<string>;
  parameter: aws.ssm.Parameter;
  key: aws.kms.Key;
}

/**
 * The signing secret as an SSM SecureString the authorizer reads at cold start, encrypted
 * with a KMS key of the hub's own. With the default `aws/ssm` key, anyone in the account
 * with `ssm:GetParameter` on it could read it; with this key they also need `kms:Decrypt` on
 * this key, which only the authorizer's role and the publisher policy grant (and account
 * administrators, who can grant themselves anything). Cost: 1 USD a month per key, plus
 * 0.03 USD per 10,000 requests (one Decrypt per cold authorizer: the secret is kept for the
 * container's life).
 */
export function buildSecret(ctx: HubContext, given: pulumi.Input<string> | undefined): HubSecret {
  const context = ctx.aws;
  const value = given
    ? pulumi.secret(given)
    : // Was "-jwt-secret", the parameter's name too.
      new random.RandomPassword(childName(ctx, "jwt-secret-value"), { length: 64, special: false }, { parent: ctx.parent, aliases: [{ name: childName(ctx, "jwt-secret") }] }).result;
  const root = pulumi.interpolate`arn:${context.partition}:iam::${context.accountId}:root`;
  const key = new aws.kms.Key(
    childName(ctx, "jwt-secret-key"),
    {
      description: "notification-hub: encrypts the JWT signing secret parameter",
      enableKeyRotation: true,
      deletionWindowInDays: 7,
      // The account root as principal hands decisions to IAM: a principal also needs an IAM
      // grant on this key. Administration stays with the account; use only through SSM.
      policy: pulumi.all([root, context.region, context.accountId, context.dnsSuffix]).apply(([account, region, accountId, dnsSuffix]) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "KeyAdministration",
              Effect: "Allow",
              Principal: { AWS: account },
              Action: ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"],
              Resource: "*",
            },
            {
              Sid: "UseThroughSsmOnly",
              Effect: "Allow",
              Principal: { AWS: account },
              Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
              Resource: "*",
              // SSM's endpoint name in this partition: ssm.cn-north-1.amazonaws.com.cn in aws-cn.
              Condition: { StringEquals: { "kms:ViaService": `ssm.${region}.${dnsSuffix}`, "kms:CallerAccount": accountId } },
            },
          ],
        }),
      ),
      tags: ctx.tags,
    },
    { parent: ctx.parent },
  );
  const parameter = new aws.ssm.Parameter(
    childName(ctx, "jwt-secret"),
    { type: "SecureString", value, keyId: key.arn, description: "notification-hub JWT signing secret (HS512)", tags: ctx.tags },
    { parent: ctx.parent },
  );
  return { value, parameter, key };
}

/** Reading the signing secret: the parameter, and its key only as SSM uses it. */
export function secretReadStatements(secret: HubSecret): PolicyStatement[] {
  return [
    { Action: ["ssm:GetParameter"], Resource: [secret.parameter.arn] },
    { Action: ["kms:Decrypt"], Resource: [secret.key.arn] },
  ];
}
