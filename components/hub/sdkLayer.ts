/**
 * The hub's AWS SDK as one Lambda layer that every function of the hub uses: the versions
 * this package was tested with, never the Lambda runtime's own (components/lambdaPackages.ts
 * says why and what goes in). One upload per hub instead of one per function; a new layer
 * version only when those packages change.
 */
import * as crypto from "crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { LayerContents } from "../lambdaPackages";
import { create, type HubContext } from "./context";

/** Layer names: letters, digits, - and _, at most 140 characters, one namespace per account and region. */
const LAYER_NAME_LIMIT = 140;

/** Project, stack and component: two stacks (or two hubs of one stack) never publish versions of one layer. */
export function sdkLayerName(project: string, stack: string, component: string): string {
  const name = `${project}-${stack}-${component}-aws-sdk`.replace(/[^A-Za-z0-9_-]/g, "-");
  if (name.length <= LAYER_NAME_LIMIT) return name;
  const hash = crypto.createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, LAYER_NAME_LIMIT - hash.length - 1)}-${hash}`;
}

/** The layer of these contents (components/lambdaPackages.ts `lambdaPackaging`). */
export function buildSdkLayer(ctx: HubContext, contents: LayerContents): aws.lambda.LayerVersion {
  const { files, packages } = contents;
  const sdk = packages.find((p) => p.name === "@aws-sdk/client-dynamodb")?.version ?? "";
  return create(ctx, aws.lambda.LayerVersion, ctx.transform.layer, "aws-sdk-layer", {
    layerName: sdkLayerName(pulumi.getProject(), pulumi.getStack(), ctx.name),
    description: `AWS SDK for JavaScript ${sdk} (${packages.length} packages) for the notification hub's Lambdas`,
    compatibleRuntimes: [ctx.settings.runtime],
    compatibleArchitectures: ["arm64"],
    licenseInfo: "Apache-2.0",
    code: new pulumi.asset.AssetArchive(Object.fromEntries(Object.entries(files).map(([to, from]) => [to, new pulumi.asset.FileAsset(from)]))),
  });
}
