/**
 * Runs a Pulumi program under mocks in a plain Node process (not vitest, whose module
 * transform breaks closure serialization) and writes every resource it registered to a
 * JSON file. Usage: node -r ts-node/register runProgram.ts <program> <stack> <config-json> <out-file>
 *
 * With PULUMI_HOST_ENTRY set, the program is not required directly: @pulumi/pulumi's own
 * language-host entry (`cmd/run`'s `run`) gets that entry point, exactly as the Node.js
 * language host passes it ("." when Pulumi.yaml has no `main`, else the main file), and
 * applies its own entry-point rules (package.json exports/main) and stack wrapping.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Set when the resource asked to be kept in AWS when Pulumi deletes it. */
  retainOnDelete?: boolean;
  /** For CallbackFunctions and layers: the archive's file names and the serialized handler. */
  code?: { files: Record<string, string>; indexJs: string };
}

const [programPath, stack, configJson, outFile] = process.argv.slice(2);
const ACCOUNT = "123456789012";
// MOCK_PARTITION runs the program as in another partition (aws-cn, aws-us-gov): ARNs must follow,
// and names of service endpoints its DNS suffix (the AWS SDK's partitions.json); MOCK_REGION a region of it.
const REGION = process.env.MOCK_REGION || "eu-west-1";
const PARTITION = process.env.MOCK_PARTITION || "aws";
const DNS_SUFFIXES: Record<string, string> = {
  aws: "amazonaws.com",
  "aws-cn": "amazonaws.com.cn",
  "aws-us-gov": "amazonaws.com",
  "aws-iso": "c2s.ic.gov",
  "aws-iso-b": "sc2s.sgov.gov",
  "aws-iso-e": "cloud.adc-e.uk",
  "aws-iso-f": "csp.hci.ic.gov",
  "aws-eusc": "amazonaws.eu",
};
const DNS_SUFFIX = DNS_SUFFIXES[PARTITION];
if (!DNS_SUFFIX) throw new Error(`MOCK_PARTITION: no DNS suffix known for ${PARTITION}`);
// What the region's API Gateway account setting holds already (MOCK_APIGATEWAY_ROLE_ARN), "" = unset.
const APIGATEWAY_ROLE_ARN = process.env.MOCK_APIGATEWAY_ROLE_ARN ?? "";
const resources: RecordedResource[] = [];
// MOCK_ACCOUNT_FILE: an account and stack state that outlive this run (mockAccount.ts), for
// sequences of `pulumi up` and `pulumi destroy`. Loaded only then: copies of this runner beside
// another program (pulumiRun.ts) never set it.
const ACCOUNT_FILE = process.env.MOCK_ACCOUNT_FILE;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const accountModel = ACCOUNT_FILE ? (require("./mockAccount") as typeof import("./mockAccount")) : undefined;
const account = accountModel && ACCOUNT_FILE ? accountModel.readAccount(ACCOUNT_FILE) : undefined;
const registered: Record<string, import("./mockAccount").StackEntry> = {};
const changes = { created: [] as string[], updated: [] as string[], same: [] as string[] };

/** Registers a resource with the account's state: created, updated or unchanged; IAM refuses a role name that exists. */
function deployToAccount(args: pulumi.runtime.MockResourceArgs): string | undefined {
  if (!account || !accountModel || args.id) return undefined; // no account, or a read
  const key = `${args.type}::${args.name}`;
  const before = account.stack[key];
  const inputs = JSON.stringify(args.inputs);
  let physicalName = before?.physicalName;
  if (!before) {
    if (args.type === accountModel.ROLE) {
      try {
        physicalName = accountModel.createRole(account, args.name, args.inputs as { name?: string; namePrefix?: string });
      } catch (err) {
        // The deployment fails here, as `pulumi up` does on the provider's error.
        console.error(`error: ${args.type} ${args.name}: ${(err as Error).message}`);
        process.exit(1);
      }
    }
    changes.created.push(key);
  } else (before.inputs === inputs ? changes.same : changes.updated).push(key);
  if (args.type === accountModel.APIGATEWAY_ACCOUNT && before?.inputs !== inputs) account.apigatewayCloudwatchRoleArn = (args.inputs.cloudwatchRoleArn as string | undefined) ?? "";
  registered[key] = { type: args.type, name: args.name, inputs, retainOnDelete: retained.has(key), physicalName };
  return physicalName;
}

type MaybePromise<T> = T | Promise<T>;
interface MockAsset {
  text?: MaybePromise<string | undefined>;
  path?: MaybePromise<string | undefined>;
}

/** Collapses an AssetArchive (as mocks see it: fields are promises) into file name → local path, plus the handler text. */
async function describeArchive(archive: { assets?: MaybePromise<Record<string, MockAsset>> }) {
  const files: Record<string, string> = {};
  let indexJs = "";
  for (const [name, asset] of Object.entries((await archive.assets) ?? {})) {
    const text = await asset.text;
    const assetPath = await asset.path;
    if (text !== undefined) {
      files[name] = "<inline>";
      if (name === "__index.js") indexJs = text;
    } else if (assetPath) {
      files[name] = path.resolve(assetPath);
    }
  }
  return { files, indexJs };
}

const pendingArchives: Promise<void>[] = [];

pulumi.runtime.setAllConfig(JSON.parse(configJson) as Record<string, string>, []);
pulumi.runtime.setMocks(
  {
    newResource(args: pulumi.runtime.MockResourceArgs) {
      const physicalName = deployToAccount(args);
      const id = `${args.name}-id`;
      const state: Record<string, unknown> = { ...args.inputs };
      const arn = (service: string, resource: string) => `arn:${PARTITION}:${service}:${REGION}:${ACCOUNT}:${resource}`;
      switch (args.type) {
        case "aws:apigatewayv2/api:Api":
          state.apiEndpoint = `wss://${id}.execute-api.${REGION}.${DNS_SUFFIX}`;
          state.executionArn = arn("execute-api", id);
          break;
        case "aws:dynamodb/table:Table":
          state.name = args.name;
          state.arn = arn("dynamodb", `table/${args.name}`);
          break;
        case "aws:sqs/queue:Queue":
          state.name = args.name;
          state.arn = arn("sqs", args.name);
          state.url = `https://sqs.${REGION}.${DNS_SUFFIX}/${ACCOUNT}/${args.name}`;
          break;
        case "aws:lambda/function:Function":
          state.name = args.name;
          state.arn = arn("lambda", `function:${args.name}`);
          state.invokeArn = `arn:${PARTITION}:apigateway:${REGION}:lambda:path/2015-03-31/functions/${state.arn}/invocations`;
          break;
        case "aws:lambda/layerVersion:LayerVersion":
          state.arn = `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT}:layer:${String(args.inputs.layerName)}:1`;
          state.layerArn = `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT}:layer:${String(args.inputs.layerName)}`;
          state.version = "1";
          break;
        case "aws:iam/role:Role":
          state.name = physicalName ?? args.inputs.name ?? args.name;
          state.arn = `arn:${PARTITION}:iam::${ACCOUNT}:role/${state.name}`;
          break;
        case "aws:iam/policy:Policy":
          state.arn = `arn:${PARTITION}:iam::${ACCOUNT}:policy/${args.name}`;
          break;
        case "aws:cloudwatch/logGroup:LogGroup":
          state.name = args.name;
          state.arn = arn("logs", `log-group:${args.name}`);
          break;
        case "aws:ssm/parameter:Parameter":
          state.name = args.name;
          state.arn = arn("ssm", `parameter/${args.name}`);
          state.version = 1;
          break;
        case "aws:kms/key:Key":
          state.arn = arn("kms", `key/${args.name}-0000`);
          state.keyId = `${args.name}-0000`;
          break;
        case "aws:apigateway/account:Account":
          if (args.id) state.cloudwatchRoleArn = account ? account.apigatewayCloudwatchRoleArn : APIGATEWAY_ROLE_ARN; // a read (Account.get)
          break;
        case "aws:cloudwatch/eventRule:EventRule":
          // As AWS names it (the sweep's schedule): its name is the FailedInvocations alarm's RuleName, its ARN the invoke permission's source.
          state.name = args.inputs.name ?? args.name;
          state.arn = arn("events", `rule/${state.name}`);
          break;
        case "aws:cloudwatch/eventBus:EventBus":
          state.name = args.name;
          state.arn = arn("events", `event-bus/${args.name}`);
          break;
        case "aws:sns/topic:Topic":
          state.arn = arn("sns", args.name);
          break;
        case "random:index/randomPassword:RandomPassword":
          state.result = "generated-secret-" + "x".repeat(47);
          break;
        case "aws:apigatewayv2/domainName:DomainName":
          state.domainNameConfiguration = { ...(args.inputs.domainNameConfiguration as object), targetDomainName: `d-abc.execute-api.${REGION}.${DNS_SUFFIX}`, hostedZoneId: "ZLY8HYME6SFDD" };
          break;
        case "aws:apigatewayv2/stage:Stage":
          state.name = args.inputs.name;
          break;
      }
      const recorded: RecordedResource = { type: args.type, name: args.name, inputs: args.inputs };
      if (retained.has(`${args.type}::${args.name}`)) recorded.retainOnDelete = true;
      if (args.type === "aws:lambda/function:Function" || args.type === "aws:lambda/layerVersion:LayerVersion") {
        pendingArchives.push(describeArchive(args.inputs.code as never).then((code) => void (recorded.code = code)));
      }
      resources.push(recorded);
      return { id, state };
    },
    call(args: pulumi.runtime.MockCallArgs) {
      if (args.token === "aws:index/getRegion:getRegion") return { name: REGION, region: REGION, id: REGION };
      if (args.token === "aws:index/getPartition:getPartition") return { partition: PARTITION, dnsSuffix: DNS_SUFFIX, id: PARTITION };
      if (args.token === "aws:index/getCallerIdentity:getCallerIdentity") return { accountId: ACCOUNT, arn: `arn:${PARTITION}:iam::${ACCOUNT}:user/deployer`, userId: "AIDEPLOYER", id: ACCOUNT };
      return args.inputs;
    },
  },
  "notification-hub",
  stack,
  false,
);

type HostRun = (argv: { _: string[] }, started: () => void, reportLoggedError: (err: Error) => void, isErrorReported: (err: Error) => boolean) => Promise<Record<string, unknown> | undefined>;

async function loadProgram(): Promise<Record<string, unknown>> {
  const hostEntry = process.env.PULUMI_HOST_ENTRY;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (hostEntry === undefined) return require(path.resolve(programPath)) as Record<string, unknown>;
  // cmd/run/index.js is the host process's own main: it parses --monitor and connects to the
  // engine at load time. The mocks are our monitor, so it is replaced by the one value run.js
  // reads from it; run() itself (entry-point rules, TypeScript, the Stack) is Pulumi's own.
  const indexJs = require.resolve("@pulumi/pulumi/cmd/run/index.js");
  const exports = { nodeJSProcessExitedAfterLoggingUserActionableMessage: 32 };
  require.cache[indexJs] = { id: indexJs, filename: indexJs, loaded: true, exports } as unknown as NodeJS.Module;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { run } = require("@pulumi/pulumi/cmd/run/run") as { run: HostRun };
  return (await run({ _: [hostEntry] }, () => undefined, () => undefined, () => false)) ?? {};
}

// Resource options never reach the mocks' newResource: read retainOnDelete and aliases off the request.
const retained = new Set<string>();
/** `${type}::${name}` → the names (or URNs) it declares as its former identities. */
const aliases: Record<string, string[]> = {};
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getRetainondelete(): boolean;
  getAliasesList?(): { getUrn(): string; getSpec(): { getName(): string } | undefined }[];
}
const mockMonitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, callback: unknown): unknown };
const registerResource = mockMonitor.registerResource.bind(mockMonitor);
mockMonitor.registerResource = (req, callback) => {
  if (req.getRetainondelete()) retained.add(`${req.getType()}::${req.getName()}`);
  const declared = (req.getAliasesList?.() ?? []).map((alias) => alias.getUrn() || alias.getSpec()?.getName() || "").filter(Boolean);
  if (declared.length) aliases[`${req.getType()}::${req.getName()}`] = declared;
  return registerResource(req, callback);
};

async function main() {
  const program = await loadProgram();
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(program)) {
    if (pulumi.Output.isInstance(value)) {
      outputs[key] = await new Promise((resolve) => (value as pulumi.Output<unknown>).apply((v) => resolve(v)));
    } else if (process.env.PULUMI_HOST_ENTRY !== undefined) {
      outputs[key] = value; // cmd/run hands back the stack's outputs already resolved
    }
  }
  await pulumi.runtime.disconnect();
  await Promise.all(pendingArchives);
  const monitor = pulumi.runtime.getMonitor() as unknown as { getRegisteredResources(): Map<string, unknown> };
  const urns = [...monitor.getRegisteredResources().keys()];
  // Which of the project's own modules ran: shows the entry point the host picked.
  const loaded = Object.keys(require.cache).filter((file) => !file.includes(`${path.sep}node_modules${path.sep}`));
  let deployment: import("./mockAccount").Deployment | undefined;
  if (account && accountModel && ACCOUNT_FILE) {
    deployment = accountModel.finishUp(account, registered, changes);
    accountModel.writeAccount(ACCOUNT_FILE, account);
  }
  fs.writeFileSync(outFile, JSON.stringify({ outputs, resources, urns, aliases, loaded, deployment }, null, 1));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
