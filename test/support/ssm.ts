/**
 * A stand-in for SSM Parameter Store's GetParameter (JSON 1.1 protocol), so the serialized
 * authorizer can read its signing secret the way it does on AWS: through the real SSM client.
 */
import * as http from "http";
import type { AddressInfo } from "net";

export async function startParameterStore(parameters: Record<string, string>): Promise<{ endpoint: string; requests: string[]; stop(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const target = String(request.headers["x-amz-target"] ?? "");
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { Name?: string; WithDecryption?: boolean };
      requests.push(`${target} ${body.Name} decrypt=${body.WithDecryption}`);
      const value = body.Name ? parameters[body.Name] : undefined;
      if (target !== "AmazonSSM.GetParameter" || value === undefined) {
        response.writeHead(400, { "content-type": "application/x-amz-json-1.1" });
        response.end(JSON.stringify({ __type: "ParameterNotFound", message: "not found" }));
        return;
      }
      response.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify({ Parameter: { Name: body.Name, Type: "SecureString", Value: value, Version: 1 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
