/**
 * The production stack (every part that names ARNs or endpoints: alarms, API Gateway logs and
 * the account's logging role, the KMS key policy) under Pulumi's mocks in the China partition
 * (aws-cn, cn-northwest-1), whose ARNs start with `arn:aws-cn:` and whose service endpoints end
 * in `amazonaws.com.cn`.
 */
import { runSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import { beforeAll, describe, expect, it } from "vitest";
import { sharedRun, type ProgramRun } from "./support/pulumiRun";

let cn: ProgramRun;
beforeAll(async () => {
  cn = await sharedRun("chinaPartition");
}, 300_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const inputs = (type: string) => cn.ofType(type).map((r) => r.inputs as Record<string, any>);
/** Every string the program declared, nested JSON documents (policies) included. */
const declaredText = () => JSON.stringify(cn.resources.map((r) => r.inputs));

describe("the China partition (aws-cn)", () => {
  it("lets SSM use the secret's key only through the partition's SSM endpoint name: ssm.cn-northwest-1.amazonaws.com.cn", () => {
    const [key] = inputs("aws:kms/key:Key");
    const statements = JSON.parse(key.policy).Statement as { Sid: string; Principal: { AWS: string }; Condition?: { StringEquals: Record<string, string> } }[];
    const use = statements.find((s) => s.Sid === "UseThroughSsmOnly")!;
    expect(use.Condition!.StringEquals["kms:ViaService"]).toBe("ssm.cn-northwest-1.amazonaws.com.cn");
    for (const statement of statements) expect(statement.Principal.AWS).toBe("arn:aws-cn:iam::123456789012:root");
  });

  it("the authorizer may decrypt the secret through SSM in aws-cn (IAM simulated with the key policy), not with the commercial endpoint name", async () => {
    type PolicyDocument = Simulation["identityPolicies"][number]["policy"];
    const [key] = inputs("aws:kms/key:Key");
    const authorizerPolicy = JSON.parse(cn.named("hub-authorizer-policy").inputs.policy as string) as PolicyDocument;
    const decrypt = async (viaService: string) => {
      const response = await runSimulation(
        {
          identityPolicies: [{ name: "authorizer", policy: authorizerPolicy }],
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          resourcePolicy: JSON.parse(key.policy) as PolicyDocument,
          request: {
            action: "kms:Decrypt",
            principal: "arn:aws-cn:iam::123456789012:role/hub-authorizer-role",
            resource: { resource: "arn:aws-cn:kms:cn-northwest-1:123456789012:key/hub-jwt-secret-key-0000", accountId: "123456789012" },
            contextVariables: { "kms:ViaService": viaService, "kms:CallerAccount": "123456789012" },
          },
        },
        {},
      );
      if (response.resultType === "error") throw new Error(JSON.stringify(response.errors));
      return response.overallResult;
    };
    expect(await decrypt("ssm.cn-northwest-1.amazonaws.com.cn")).toBe("Allowed");
    expect(await decrypt("ssm.cn-northwest-1.amazonaws.com")).not.toBe("Allowed");
  });

  it("builds every ARN in the aws-cn partition and the stack's region: none starts with arn:aws:", () => {
    const arns = [...declaredText().matchAll(/arn:[a-z-]+:[^"\\\s]*/g)].map((m) => m[0]);
    expect(arns.length).toBeGreaterThan(30);
    for (const arn of arns) {
      expect(arn, arn).toMatch(/^arn:aws-cn:/);
      const region = arn.split(":")[3];
      expect(["", "cn-northwest-1"], arn).toContain(region); // IAM ARNs have none
    }
    expect(inputs("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.policyArn)).toEqual(["arn:aws-cn:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]);
  });

  it("names endpoints with the partition's DNS suffix; service principals keep amazonaws.com, as AWS names them in aws-cn", () => {
    expect(cn.outputs.websocketUrl).toBe("wss://hub-api-id.execute-api.cn-northwest-1.amazonaws.com.cn/production");
    expect(cn.outputs.managementEndpoint).toBe("https://hub-api-id.execute-api.cn-northwest-1.amazonaws.com.cn/production");
    const posting = inputs("aws:lambda/function:Function").filter((fn) => fn.environment.variables.MANAGEMENT_ENDPOINT);
    expect(posting.length).toBeGreaterThan(3);
    for (const fn of posting) expect(fn.environment.variables.MANAGEMENT_ENDPOINT).toBe(cn.outputs.managementEndpoint);
    // lambda and apigateway have no partition-specific principal (unlike logs or codedeploy in aws-cn).
    const principals = cn.ofType("aws:iam/role:Role").map((r) => JSON.parse(r.inputs.assumeRolePolicy as string).Statement[0].Principal.Service as string);
    expect(new Set(principals)).toEqual(new Set(["lambda.amazonaws.com", "apigateway.amazonaws.com"]));
    expect(new Set(inputs("aws:lambda/permission:Permission").map((p) => p.principal))).toEqual(new Set(["apigateway.amazonaws.com"]));
    // Beyond those principals, nothing names the commercial partition's suffix.
    const rest = declaredText().replace(/"(lambda|apigateway)\.amazonaws\.com"/g, "").replace(/\\"(lambda|apigateway)\.amazonaws\.com\\"/g, "");
    expect(rest).not.toMatch(/amazonaws\.com(?!\.cn)/);
  });

  it("points the alarms and the dashboard at the stack's region", () => {
    const [dashboard] = inputs("aws:cloudwatch/dashboard:Dashboard");
    expect(dashboard.dashboardName).toBe("notification-hub-production-hub-cn-northwest-1");
    for (const widget of JSON.parse(dashboard.dashboardBody).widgets) expect(widget.properties.region).toBe("cn-northwest-1");
    for (const alarm of inputs("aws:cloudwatch/metricAlarm:MetricAlarm")) expect(alarm.alarmActions).toEqual(["arn:aws-cn:sns:cn-northwest-1:123456789012:hub-alarms"]);
  });
});
