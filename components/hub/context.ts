/**
 * What every part of the NotificationHub is built with: the component (parent), its name,
 * its validated settings, tags, the stack's AWS context and the user's transforms. Children
 * are named `${name}-${key}` (see childName); a child whose name changed keeps its former
 * name as an alias, so deployed stacks update it in place.
 */
import * as crypto from "crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Settings } from "./settings";

/**
 * Changes a child's arguments before it is created (SST's `transform`): mutate `args` (and
 * `opts`) in place, or return new args. `name` is the child's logical name.
 */
export type Transform<Args> = (args: Args, opts: pulumi.CustomResourceOptions, name: string) => Args | void;

/** One transform per kind of child. */
export interface HubTransforms {
  table?: Transform<aws.dynamodb.TableArgs>;
  queue?: Transform<aws.sqs.QueueArgs>;
  function?: Transform<aws.lambda.CallbackFunctionArgs<unknown, unknown>>;
  /** The AWS SDK layer every function uses. */
  layer?: Transform<aws.lambda.LayerVersionArgs>;
  role?: Transform<aws.iam.RoleArgs>;
  rolePolicy?: Transform<aws.iam.RolePolicyArgs>;
  logGroup?: Transform<aws.cloudwatch.LogGroupArgs>;
  api?: Transform<aws.apigatewayv2.ApiArgs>;
  authorizer?: Transform<aws.apigatewayv2.AuthorizerArgs>;
  integration?: Transform<aws.apigatewayv2.IntegrationArgs>;
  route?: Transform<aws.apigatewayv2.RouteArgs>;
  permission?: Transform<aws.lambda.PermissionArgs>;
  stage?: Transform<aws.apigatewayv2.StageArgs>;
  eventSourceMapping?: Transform<aws.lambda.EventSourceMappingArgs>;
  publisherPolicy?: Transform<aws.iam.PolicyArgs>;
  alarm?: Transform<aws.cloudwatch.MetricAlarmArgs>;
  /** The bus of lifecycle events (with `presence` on). */
  eventBus?: Transform<aws.cloudwatch.EventBusArgs>;
}

export interface AwsContext {
  partition: pulumi.Output<string>;
  /**
   * The partition's DNS suffix: service endpoints, and conditions that name them
   * (`kms:ViaService` is `ssm.{region}.{dnsSuffix}`): amazonaws.com, amazonaws.com.cn in aws-cn,
   * c2s.ic.gov in aws-iso, sc2s.sgov.gov in aws-iso-b, ... Service principals are not built from
   * it: `lambda.amazonaws.com` and `apigateway.amazonaws.com` are the same in every partition.
   */
  dnsSuffix: pulumi.Output<string>;
  region: pulumi.Output<string>;
  accountId: pulumi.Output<string>;
}

export interface HubContext {
  parent: pulumi.ComponentResource;
  name: string;
  settings: Settings;
  tags: pulumi.Input<Record<string, pulumi.Input<string>>>;
  aws: AwsContext;
  transform: HubTransforms;
}

/** The one naming scheme of the hub's children. */
export function childName(ctx: Pick<HubContext, "name">, key: string): string {
  return `${ctx.name}-${key}`;
}

/**
 * Creates one child: parented to the hub, its args passed through the user's transform for
 * its kind. `formerKey`: the key the child had before, kept as an alias (no replacement).
 */
export function create<Args, R>(
  ctx: HubContext,
  Resource: new (name: string, args: Args, opts?: pulumi.CustomResourceOptions) => R,
  transform: Transform<Args> | undefined,
  key: string,
  args: Args,
  opts: pulumi.CustomResourceOptions & { formerKey?: string } = {},
): R {
  const { formerKey, ...rest } = opts;
  const name = childName(ctx, key);
  const options: pulumi.CustomResourceOptions = {
    ...rest,
    parent: ctx.parent,
    ...(formerKey ? { aliases: [...(rest.aliases ?? []), { name: childName(ctx, formerKey) }] } : {}),
  };
  const finalArgs = transform ? (transform(args, options, name) ?? args) : args;
  return new Resource(name, finalArgs, options);
}

/** Partition, region and account of the stack: ARNs and endpoint names follow them (aws, aws-cn, aws-us-gov, aws-iso...). */
export function awsContext(parent: pulumi.Resource): AwsContext {
  const partition = aws.getPartitionOutput({}, { parent });
  return {
    partition: partition.partition,
    dnsSuffix: partition.dnsSuffix,
    region: aws.getRegionOutput({}, { parent }).region,
    accountId: aws.getCallerIdentityOutput({}, { parent }).accountId,
  };
}

/** AWS's length limits on the names Pulumi generates (logical name + "-" + 7 random characters). */
export const NAME_LIMITS = { role: 64, function: 64, queue: 80, policy: 128 } as const;

/**
 * The physical name for a resource whose generated name would be too long for AWS, else
 * undefined (Pulumi's own auto-naming, so short names behave as before). Long names are cut
 * and end in a hash of the whole logical name, so two long component names stay distinct.
 */
export function physicalName(logicalName: string, limit: number): string | undefined {
  if (logicalName.length + 8 <= limit) return undefined;
  const hash = crypto.createHash("sha256").update(logicalName).digest("hex").slice(0, 8);
  return `${logicalName.slice(0, limit - hash.length - 1)}-${hash}`;
}

export function assumeRolePolicy(service: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });
}
