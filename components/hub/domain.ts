/** A custom domain with a Route 53 alias, so clients keep one URL across redeployments. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { childName, type HubContext } from "./context";

export interface HubDomain {
  name: pulumi.Input<string>;
  certificateArn: pulumi.Input<string>;
  hostedZoneId: pulumi.Input<string>;
}

export function buildDomain(ctx: HubContext, domain: HubDomain, api: aws.apigatewayv2.Api, stage: aws.apigatewayv2.Stage) {
  const domainName = new aws.apigatewayv2.DomainName(
    childName(ctx, "domain"),
    {
      domainName: domain.name,
      domainNameConfiguration: { certificateArn: domain.certificateArn, endpointType: "REGIONAL", securityPolicy: "TLS_1_2" },
      tags: ctx.tags,
    },
    { parent: ctx.parent },
  );
  // Mapped under the stage name, so the URL keeps its documented shape: wss://{domain}/{stage} (docs/protocol.md#connecting).
  new aws.apigatewayv2.ApiMapping(
    childName(ctx, "domain-mapping"),
    { apiId: api.id, domainName: domainName.id, stage: stage.id, apiMappingKey: stage.name },
    { parent: ctx.parent },
  );
  new aws.route53.Record(
    childName(ctx, "domain-record"),
    {
      zoneId: domain.hostedZoneId,
      name: domainName.domainName,
      type: "A",
      aliases: [
        {
          name: domainName.domainNameConfiguration.apply((c) => c.targetDomainName),
          zoneId: domainName.domainNameConfiguration.apply((c) => c.hostedZoneId),
          evaluateTargetHealth: false,
        },
      ],
    },
    { parent: ctx.parent },
  );
  return domainName;
}
