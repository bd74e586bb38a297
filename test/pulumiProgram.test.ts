/**
 * The project run the way `pulumi up` runs it, not the way our other tests require it:
 * the checkout with dist/ built, stack config merged by Pulumi's project-config
 * rules, and @pulumi/pulumi's own language-host entry (cmd/run) picking the program from
 * Pulumi.yaml and package.json, under a mock monitor. Plus what the account and AWS's limits
 * make of the program: the region-wide API Gateway role, partitions, long names.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { NAME_LIMITS, physicalName } from "../components/notificationHub";
import { ifUnsetLoggingRun, readProject, runSpec, sharedRun, stackConfig, type ProgramRun } from "./support/pulumiRun";

const ROOT = process.cwd();
const LONG_NAME = "notifications-for-the-customer-support-portal-of-the-eu-west-region";
const HUB_TYPE = "notification-hub:index:NotificationHub";
const runs: Record<string, ProgramRun> = {};

/** A URN's own type: the last of its parent-qualified type chain. */
const typeOf = (urn: string) => urn.split("::")[2].split("$").pop();
const hubs = (run: ProgramRun) => run.urns.filter((urn) => typeOf(urn) === HUB_TYPE);
const stackUrns = (run: ProgramRun) => run.urns.filter((urn) => typeOf(urn) === "pulumi:pulumi:Stack");

// The project as a user's checkout after `npm install` (whose `prepare` builds dist/): this
// checkout, whose dist/ test/support/globalSetup.ts builds from these sources for the run.
// Every run but the one that reads another's output is shared (test/support/pulumiRun.ts):
// started at the beginning of the test run in the background, read here.
beforeAll(async () => {
  const names = ["hostDevelopment", "hostProduction", "hostWithoutMain", "longName", "ifUnsetWhereUnset", "ifUnsetWhereOtherStacks", "govPartition"] as const;
  const done = await Promise.all(names.map((name) => sharedRun(name)));
  names.forEach((name, i) => (runs[name] = done[i]));
}, 300_000);

describe("pulumi up through the Node.js language host's own entry (cmd/run), dist/ present", () => {
  it("Pulumi.yaml names index.ts as the program, so package.json's library entry is never run", () => {
    expect(readProject(ROOT).main).toBe("index.ts");
    expect(fs.existsSync(path.join(ROOT, "dist/components/index.js"))).toBe(true);
  });

  it.each(["development", "production"])("%s: config check passes and the hub and its resources are registered", (stack) => {
    const run = stack === "development" ? runs.hostDevelopment : runs.hostProduction;
    expect(stackUrns(run)).toHaveLength(1);
    expect(hubs(run)).toHaveLength(1);
    // As under the CLI, the hub is a child of the stack.
    expect(hubs(run)[0]).toMatch(/::pulumi:pulumi:Stack\$notification-hub:index:NotificationHub::hub$/);
    // Presence (presence, occupancy, sweep) is on in development only.
    expect(run.ofType("aws:lambda/function:Function")).toHaveLength(stack === "development" ? 12 : 9);
    expect(run.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.name).toBe(stack);
    expect(run.outputs.websocketUrl).toBe(`wss://hub-api-id.execute-api.eu-west-1.amazonaws.com/${stack}`);
    expect(run.loaded).toContain(path.join(ROOT, "index.ts"));
  });

  it("without main, the host runs dist/components/index.js: nothing registered, a plan that deletes every resource", () => {
    const run = runs.hostWithoutMain;
    expect(run.loaded).toContain(path.join(ROOT, "dist/components/index.js"));
    expect(hubs(run)).toEqual([]);
    expect(run.resources.filter((r) => r.type.startsWith("aws:"))).toEqual([]);
  });
});

describe("stack config by Pulumi's project-config rules", () => {
  it("every declared key has a default or a value in both stack files", () => {
    for (const stack of ["development", "production"]) expect(() => stackConfig(stack)).not.toThrow();
  });

  it("refuses a declared key with no default and no stack value, as the CLI does", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-config-"));
    try {
      const yaml = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
      // The pre-fix declaration: a type and no default.
      fs.writeFileSync(path.join(dir, "Pulumi.yaml"), yaml.replace(/(  domainName:\n(?: {4}.*\n)*?) {4}default: ""\n/, "$1"));
      fs.copyFileSync(path.join(ROOT, "Pulumi.development.yaml"), path.join(dir, "Pulumi.development.yaml"));
      expect(() => stackConfig("development", dir)).toThrow("Stack 'development' is missing configuration values: notification-hub:domainName");
      fs.appendFileSync(path.join(dir, "Pulumi.development.yaml"), "  notification-hub:queueBatchSize: ten\n");
      expect(() => stackConfig("development", dir, { "notification-hub:domainName": "" })).toThrow(/wrong type: notification-hub:queueBatchSize \(integer\): ten/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the README's configuration table lists exactly the declared keys, with their defaults", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("### Configuration"), readme.indexOf("### Outputs"));
    const rows = new Map([...table.matchAll(/^\| `(\w+)`[^|]*\| ([^|]+) \|/gm)].map((m) => [m[1], m[2].trim()]));
    const declared = readProject(ROOT).config ?? {};
    for (const [key, spec] of Object.entries(declared)) {
      expect(rows.has(key), `README lacks ${key}`).toBe(true);
      const def = (spec as { default?: unknown }).default;
      expect(rows.get(key), key).toBe(def === "" ? "unset" : `\`${String(def)}\``);
    }
    // jwtSecret is documented but not declared: a declared secret would need a default in plain text.
    expect([...rows.keys()].filter((key) => !(key in declared))).toEqual(["jwtSecret"]);
  });
});

describe("the region's API Gateway CloudWatch role (one setting for every API of the account)", () => {
  it("ifUnset: where unset, sets a role with the AWS managed push-to-CloudWatch policy; where its own role is set (a later run), leaves it alone", async () => {
    const first = runs.ifUnsetWhereUnset;
    const account = first.ofType("aws:apigateway/account:Account").filter((r) => r.inputs.cloudwatchRoleArn);
    expect(account).toHaveLength(1);
    const role = first.named("hub-apigateway-cloudwatch-role");
    expect(JSON.parse(role.inputs.assumeRolePolicy as string).Statement[0].Principal).toEqual({ Service: "apigateway.amazonaws.com" });
    // Auto-named from a prefix: a new name on each create, so none meets a role an earlier stack retained.
    expect(role.inputs.name).toBeUndefined();
    expect(role.inputs.namePrefix).toBe("apigateway-cloudwatch-");
    expect(account[0].inputs.cloudwatchRoleArn).toBe("arn:aws:iam::123456789012:role/hub-apigateway-cloudwatch-role");
    expect(first.named("hub-apigateway-cloudwatch-policy").inputs.policyArn).toBe("arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs");
    // Destroying this stack must not reset the setting (or delete its role) for the others.
    for (const kept of [account[0], role, first.named("hub-apigateway-cloudwatch-policy")]) expect(kept.retainOnDelete, kept.name).toBe(true);
    expect(first.named("hub-deliver").retainOnDelete).toBeUndefined();
    // Execution logs where API Gateway writes them for a WebSocket stage.
    expect(first.named("hub-execution-logs").inputs.name).toBe("/aws/apigateway/hub-api-id/development");

    // The next `pulumi up` reads back its own role and leaves it alone like any other: declaring it
    // again would create it again after a destroy (EntityAlreadyExists). Sequences: apiGatewayAccount.test.ts.
    const again = await runSpec(ifUnsetLoggingRun("arn:aws:iam::123456789012:role/apigateway-cloudwatch-20260101000000000000000001"));
    expect(again.ofType("aws:apigateway/account:Account").filter((r) => r.inputs.cloudwatchRoleArn)).toEqual([]);
    expect(again.ofType("aws:iam/role:Role").filter((r) => r.name.includes("apigateway"))).toEqual([]);
    expect(again.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.defaultRouteSettings).toMatchObject({ loggingLevel: "ERROR" });
  }, 120_000);

  it("ifUnset: where another stack's role is set, leaves it alone and still turns logs on", () => {
    const other = runs.ifUnsetWhereOtherStacks;
    expect(other.ofType("aws:apigateway/account:Account").filter((r) => r.inputs.cloudwatchRoleArn)).toEqual([]);
    expect(other.ofType("aws:iam/role:Role").filter((r) => r.name.includes("apigateway"))).toEqual([]);
    expect(other.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.defaultRouteSettings).toMatchObject({ loggingLevel: "ERROR" });
  });
});

describe("partitions and AWS's name limits", () => {
  it("every ARN follows the stack's partition (aws-us-gov here): none is hard-coded to arn:aws:", () => {
    const gov = runs.govPartition;
    const text = JSON.stringify(gov.resources.map((r) => r.inputs));
    expect(text).toContain("arn:aws-us-gov:");
    expect(text).not.toMatch(/arn:aws:/);
  });

  it("a long component name gives every role, function, queue and policy a name AWS accepts", () => {
    const limits: [string, number][] = [
      ["aws:iam/role:Role", NAME_LIMITS.role],
      ["aws:lambda/function:Function", NAME_LIMITS.function],
      ["aws:sqs/queue:Queue", NAME_LIMITS.queue],
      ["aws:iam/policy:Policy", NAME_LIMITS.policy],
      ["aws:iam/rolePolicy:RolePolicy", NAME_LIMITS.policy],
    ];
    let checked = 0;
    for (const [type, limit] of limits) {
      for (const resource of runs.longName.ofType(type)) {
        // Given a name, AWS gets it; given a namePrefix, the provider appends 26 unique characters;
        // else Pulumi appends "-" and 7 random characters.
        const prefix = resource.inputs.namePrefix as string | undefined;
        const physical = (resource.inputs.name as string | undefined) ?? (prefix !== undefined ? `${prefix}${"x".repeat(26)}` : `${resource.name}-abcdefg`);
        expect(physical.length, `${type} ${physical}`).toBeLessThanOrEqual(limit);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(15);
    const dashboard = runs.longName.ofType("aws:cloudwatch/dashboard:Dashboard")[0].inputs.dashboardName as string;
    expect(dashboard).toBe(`notification-hub-development-${LONG_NAME}-eu-west-1`);
  });

  it("physicalName cuts only names that need it, and keeps two long names apart", () => {
    const long = "notifications-for-the-customer-support-portal-of-the-eu-west-region";
    for (const [kind, suffix] of [
      ["role", "-sendMessage-role"],
      ["function", "-sendMessage"],
      ["queue", "-dead-letters"],
      ["policy", "-sendMessage-policy"],
    ] as const) {
      const logical = (kind === "policy" ? long + long : long) + suffix;
      const name = physicalName(logical, NAME_LIMITS[kind]);
      expect(name, logical).toBeDefined();
      expect(name!.length).toBeLessThanOrEqual(NAME_LIMITS[kind]);
      expect(physicalName("x" + logical, NAME_LIMITS[kind])).not.toBe(name); // distinct per component
    }
    expect(physicalName("hub-sendMessage-role", NAME_LIMITS.role)).toBeUndefined(); // short names keep Pulumi's auto-naming
  });
});
