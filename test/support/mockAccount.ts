/**
 * An AWS account and a stack's state that outlive one run of a program under Pulumi's mocks, in
 * one JSON file, so that `pulumi up`, `pulumi destroy`, `pulumi up` can be played in sequence
 * (runProgram.ts reads and writes it when MOCK_ACCOUNT_FILE is set). It models what the region's
 * API Gateway logging role depends on, as AWS and the engine behave:
 *
 * - IAM role names are unique in the account: creating a role whose name exists fails with
 *   EntityAlreadyExists. A role without `name` gets Pulumi's auto-name (logical name + "-" + 7
 *   random characters), with `namePrefix` the provider's (prefix + 26 unique characters): a new
 *   name on each create.
 * - The region's API Gateway account setting (`cloudwatchRoleArn`, "" = unset): what
 *   `aws.apigateway.Account.get` reads; creating or updating an `aws.apigateway.Account` sets it;
 *   deleting one resets it (@pulumi/aws v7).
 * - The stack's state: a resource registered now and not in the state is created, one in the
 *   state with other inputs is updated, one in the state no longer registered is deleted, except
 *   when it was registered with `retainOnDelete`: then it only leaves the state ("delete
 *   (retained)") and stays in the account. `pulumi destroy` deletes every resource of the state
 *   the same way.
 */
import * as crypto from "crypto";
import * as fs from "fs";

export const MOCK_ACCOUNT_ENV = "MOCK_ACCOUNT_FILE";

export interface StackEntry {
  type: string;
  name: string;
  /** JSON of the inputs it was last created or updated with. */
  inputs: string;
  retainOnDelete: boolean;
  /** The physical name AWS knows it by (IAM roles). */
  physicalName?: string;
}

export interface MockAccount {
  /** IAM roles of the account, by name. */
  roles: string[];
  /** The region's API Gateway CloudWatch role setting; "" = unset. */
  apigatewayCloudwatchRoleArn: string;
  /** The stack's state after its last `up` (or empty after `destroy`), by `${type}::${name}`. */
  stack: Record<string, StackEntry>;
}

/** What one `up` (or `destroy`) did, by `${type}::${name}`. */
export interface Deployment {
  created: string[];
  updated: string[];
  same: string[];
  deleted: string[];
  /** Left the state but kept in the account (`retainOnDelete`). */
  retained: string[];
}

export const ROLE = "aws:iam/role:Role";
export const APIGATEWAY_ACCOUNT = "aws:apigateway/account:Account";

export function emptyAccount(): MockAccount {
  return { roles: [], apigatewayCloudwatchRoleArn: "", stack: {} };
}

export function readAccount(file: string): MockAccount {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as MockAccount) : emptyAccount();
}

export function writeAccount(file: string, account: MockAccount): void {
  fs.writeFileSync(file, JSON.stringify(account, null, 1));
}

/** IAM's own error for a second role of one name. */
export class EntityAlreadyExists extends Error {
  constructor(roleName: string) {
    super(`creating IAM Role (${roleName}): operation error IAM: CreateRole, api error EntityAlreadyExists: Role with name ${roleName} already exists.`);
  }
}

/** Creates a role in the account under the name AWS would give it; throws EntityAlreadyExists when the name is taken. */
export function createRole(account: MockAccount, logicalName: string, inputs: { name?: string; namePrefix?: string }): string {
  const name = inputs.name ?? (inputs.namePrefix ? inputs.namePrefix + unique(26) : `${logicalName}-${unique(7)}`);
  if (account.roles.includes(name)) throw new EntityAlreadyExists(name);
  account.roles.push(name);
  return name;
}

function unique(length: number): string {
  return crypto.randomBytes(length).toString("hex").slice(0, length);
}

/** Deletes a resource of the state from the account (not called for retained ones). */
function deleteFromAccount(account: MockAccount, entry: StackEntry): void {
  if (entry.type === ROLE && entry.physicalName) account.roles = account.roles.filter((r) => r !== entry.physicalName);
  if (entry.type === APIGATEWAY_ACCOUNT) account.apigatewayCloudwatchRoleArn = ""; // v7: deleting the resource resets the setting
}

/** Ends an `up`: what the state held and was not registered now is deleted (or only dropped, when retained). */
export function finishUp(account: MockAccount, registered: Record<string, StackEntry>, deployment: Omit<Deployment, "deleted" | "retained">): Deployment {
  const result: Deployment = { ...deployment, deleted: [], retained: [] };
  for (const [key, entry] of Object.entries(account.stack)) {
    if (key in registered) continue;
    if (entry.retainOnDelete) result.retained.push(key);
    else {
      deleteFromAccount(account, entry);
      result.deleted.push(key);
    }
  }
  account.stack = registered;
  return result;
}

/** `pulumi destroy`: every resource of the state is deleted, retained ones only leave the state. */
export function destroyStack(file: string): Deployment {
  const account = readAccount(file);
  const result = finishUp(account, {}, { created: [], updated: [], same: [] });
  writeAccount(file, account);
  return result;
}

/** Someone else (an admin, another stack) sets or resets the region's API Gateway CloudWatch role. */
export function setApiGatewayRole(file: string, roleArn: string): void {
  const account = readAccount(file);
  account.apigatewayCloudwatchRoleArn = roleArn;
  writeAccount(file, account);
}
