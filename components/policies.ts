/** IAM policy documents built from statements whose resources are Pulumi outputs. */
import * as pulumi from "@pulumi/pulumi";

export interface PolicyStatement {
  Action: string[];
  Resource: pulumi.Input<string>[];
  Effect?: "Allow" | "Deny";
  /** IAM condition operators and keys, as written in a policy (plain values: no outputs). */
  Condition?: Record<string, Record<string, string | string[]>>;
}

export function policyDocument(statements: PolicyStatement[]): pulumi.Output<string> {
  return pulumi
    .all(statements.map((statement) => pulumi.all(statement.Resource)))
    .apply((resources) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: statements.map((statement, i) => ({ Effect: statement.Effect ?? "Allow", Action: statement.Action, Resource: resources[i], ...(statement.Condition ? { Condition: statement.Condition } : {}) })),
      }),
    );
}
