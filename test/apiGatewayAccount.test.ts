/**
 * `apiGatewayLogging: "ifUnset"` over a stack's life: `pulumi up`, `pulumi destroy` and `up`
 * again, played under Pulumi's mocks against a mock account that outlives each run
 * (test/support/mockAccount.ts): IAM refuses a second role of one name (EntityAlreadyExists),
 * retained resources survive a destroy and keep the region's setting, and
 * `aws.apigateway.Account.get` reads what the setting holds.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRole, destroyStack, emptyAccount, EntityAlreadyExists, readAccount, setApiGatewayRole, type Deployment } from "./support/mockAccount";
import { upWithAccount, type ProgramRun } from "./support/pulumiRun";

const ROLE = "aws:iam/role:Role::hub-apigateway-cloudwatch-role";
const POLICY = "aws:iam/rolePolicyAttachment:RolePolicyAttachment::hub-apigateway-cloudwatch-policy";
const SETTING = "aws:apigateway/account:Account::hub-apigateway-account";
const THE_THREE = [ROLE, POLICY, SETTING].sort();
const OTHER_STACKS_ROLE = "arn:aws:iam::123456789012:role/platform-apigateway-logs";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mock-account-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
/** A copy of the account after the first up, for each sequence to go on from. */
const branch = (from: string, name: string) => {
  const file = path.join(dir, `${name}.json`);
  fs.copyFileSync(from, file);
  return file;
};
const nothingChanged = (d: Deployment) => ({ created: d.created, updated: d.updated, deleted: d.deleted, retained: d.retained });
const noChange = { created: [], updated: [], deleted: [], retained: [] };
const settingOf = (run: ProgramRun) => run.resources.filter((r) => r.type === "aws:apigateway/account:Account" && r.inputs.cloudwatchRoleArn);

const firstUp = path.join(dir, "first-up.json");
let first: ProgramRun;
let ourRoleArn: string;
beforeAll(async () => {
  first = await upWithAccount(firstUp);
  ourRoleArn = readAccount(firstUp).apigatewayCloudwatchRoleArn;
}, 300_000);

describe("the mock account behaves as IAM and the engine do", () => {
  it("refuses a second IAM role of one name with EntityAlreadyExists; auto-named roles get a new name on each create", () => {
    const account = emptyAccount();
    expect(createRole(account, "hub-role", { name: "apigateway-cloudwatch-0123" })).toBe("apigateway-cloudwatch-0123");
    expect(() => createRole(account, "hub-role", { name: "apigateway-cloudwatch-0123" })).toThrow(EntityAlreadyExists);
    expect(() => createRole(account, "hub-role", { name: "apigateway-cloudwatch-0123" })).toThrow(/EntityAlreadyExists: Role with name apigateway-cloudwatch-0123 already exists/);
    const a = createRole(account, "hub-role", { namePrefix: "apigateway-cloudwatch-" });
    const b = createRole(account, "hub-role", { namePrefix: "apigateway-cloudwatch-" });
    expect(a).not.toBe(b);
    expect(a).toMatch(/^apigateway-cloudwatch-\w{26}$/);
  });
});

describe("apiGatewayLogging ifUnset, where the region has no role yet", () => {
  it("the first up creates the role, its managed policy and the setting, all retained on delete", () => {
    expect([...first.deployment!.created].filter((key) => THE_THREE.includes(key)).sort()).toEqual(THE_THREE);
    const account = readAccount(firstUp);
    expect(ourRoleArn).toMatch(/^arn:aws:iam::123456789012:role\/apigateway-cloudwatch-\w{26}$/);
    expect(account.roles).toContain(ourRoleArn.split("/").pop());
    expect(settingOf(first)[0].inputs.cloudwatchRoleArn).toBe(ourRoleArn);
    for (const key of THE_THREE) expect(account.stack[key].retainOnDelete, key).toBe(true);
    expect(first.named("hub-apigateway-cloudwatch-policy").inputs.policyArn).toBe("arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs");
    expect(first.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.defaultRouteSettings).toMatchObject({ loggingLevel: "ERROR" });
  });

  it("destroy, up, up: the destroy keeps role and setting for the region's other APIs; both ups succeed, leave them alone, and the last changes nothing", async () => {
    const file = branch(firstUp, "destroy-up-up");
    const destroyed = destroyStack(file);
    expect([...destroyed.retained].sort()).toEqual(THE_THREE);
    expect(destroyed.deleted).toContain("aws:lambda/function:Function::hub-deliver"); // the rest goes
    expect(readAccount(file).apigatewayCloudwatchRoleArn).toBe(ourRoleArn); // not reset for the others

    const up = await upWithAccount(file); // before the fix: EntityAlreadyExists on a retained role name
    expect(up.deployment!.created.filter((key) => key.includes("apigateway-"))).toEqual([]);
    expect(settingOf(up)).toEqual([]);
    expect(up.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.defaultRouteSettings).toMatchObject({ loggingLevel: "ERROR" });
    expect(readAccount(file).apigatewayCloudwatchRoleArn).toBe(ourRoleArn);

    const again = await upWithAccount(file);
    expect(nothingChanged(again.deployment!)).toEqual(noChange);
    expect(readAccount(file).apigatewayCloudwatchRoleArn).toBe(ourRoleArn);
  }, 300_000);

  it("up, up, up (no destroy): the second up drops the three from the state once, retained, the setting untouched; the third changes nothing", async () => {
    const file = branch(firstUp, "up-up-up");
    const second = await upWithAccount(file);
    expect([...second.deployment!.retained].sort()).toEqual(THE_THREE); // "delete (retained)": state only
    expect({ created: second.deployment!.created, updated: second.deployment!.updated, deleted: second.deployment!.deleted }).toEqual({ created: [], updated: [], deleted: [] });
    const account = readAccount(file);
    expect(account.apigatewayCloudwatchRoleArn).toBe(ourRoleArn);
    expect(account.roles).toContain(ourRoleArn.split("/").pop());

    const third = await upWithAccount(file);
    expect(nothingChanged(third.deployment!)).toEqual(noChange);
    expect(readAccount(file).apigatewayCloudwatchRoleArn).toBe(ourRoleArn);
  }, 300_000);

  it("destroy, the setting reset by someone else, up: a new role under a new name, never EntityAlreadyExists on the retained one", async () => {
    const file = branch(firstUp, "destroy-reset-up");
    destroyStack(file);
    setApiGatewayRole(file, ""); // e.g. another stack's aws.apigateway.Account deleted (v7 resets it)
    const up = await upWithAccount(file);
    const account = readAccount(file);
    expect(account.apigatewayCloudwatchRoleArn).toMatch(/role\/apigateway-cloudwatch-\w{26}$/);
    expect(account.apigatewayCloudwatchRoleArn).not.toBe(ourRoleArn);
    expect(account.roles).toContain(ourRoleArn.split("/").pop()); // the retained one is still there, for someone to delete
    expect(settingOf(up)[0].inputs.cloudwatchRoleArn).toBe(account.apigatewayCloudwatchRoleArn);
  }, 300_000);
});

describe("apiGatewayLogging ifUnset, where another stack's role is set", () => {
  it("never declares a role or the setting, on any up, and still turns the stage's logs on", async () => {
    const file = path.join(dir, "other-stacks.json");
    setApiGatewayRole(file, OTHER_STACKS_ROLE);
    for (const step of ["first", "second"]) {
      const up = await upWithAccount(file);
      expect(up.deployment!.created.filter((key) => THE_THREE.includes(key)), step).toEqual([]);
      expect(up.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.defaultRouteSettings).toMatchObject({ loggingLevel: "ERROR" });
      if (step === "second") expect(nothingChanged(up.deployment!)).toEqual(noChange);
    }
    expect(readAccount(file).apigatewayCloudwatchRoleArn).toBe(OTHER_STACKS_ROLE);
    const destroyed = destroyStack(file);
    expect(destroyed.retained).toEqual([]);
    expect(readAccount(file).apigatewayCloudwatchRoleArn).toBe(OTHER_STACKS_ROLE); // its destroy does not touch it either
  }, 300_000);
});
