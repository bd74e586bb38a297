/** Builders for the events API Gateway and SQS hand to the Lambdas, shaped as AWS documents them. */
import type { APIGatewayRequestAuthorizerEvent, SQSEvent, SQSRecord } from "aws-lambda";
import type { WebSocketEvent } from "../../core/events";

export function authorizerEvent(query: Record<string, string> | null, headers: Record<string, string> = {}): APIGatewayRequestAuthorizerEvent {
  return {
    type: "REQUEST",
    methodArn: "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/test/$connect",
    headers: { Host: "abcdef1234.execute-api.eu-west-1.amazonaws.com", ...headers },
    multiValueHeaders: {},
    queryStringParameters: query,
    multiValueQueryStringParameters: null,
    path: "",
    httpMethod: "GET",
    resource: "",
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      routeKey: "$connect",
      eventType: "CONNECT",
      stage: "test",
      connectionId: "conn-auth",
      requestId: "req-1",
      apiId: "abcdef1234",
    },
  } as unknown as APIGatewayRequestAuthorizerEvent;
}

export function routeEvent(
  routeKey: string,
  connectionId: string,
  options: { body?: string; authorizer?: { user_id: string; room_id: string; generation?: string; grants?: string; auth_key?: string } } = {},
): WebSocketEvent {
  const eventType = routeKey === "$connect" ? "CONNECT" : routeKey === "$disconnect" ? "DISCONNECT" : "MESSAGE";
  return {
    body: options.body,
    isBase64Encoded: false,
    requestContext: {
      routeKey,
      eventType,
      messageId: eventType === "MESSAGE" ? "msg-" + connectionId : undefined,
      extendedRequestId: "ext-1",
      requestTime: new Date().toUTCString(),
      messageDirection: "IN",
      stage: "test",
      connectedAt: Date.now(),
      requestTimeEpoch: Date.now(),
      requestId: "req-" + connectionId,
      domainName: "abcdef1234.execute-api.eu-west-1.amazonaws.com",
      connectionId,
      apiId: "abcdef1234",
      authorizer: options.authorizer,
    },
  } as unknown as WebSocketEvent;
}

let sequence = 0;
export function sqsRecord(body: string, messageId = `m-${++sequence}`): SQSRecord {
  return {
    messageId,
    receiptHandle: "rh-" + messageId,
    body,
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: String(Date.now()),
      SenderId: "local",
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:queue",
    awsRegion: "eu-west-1",
  };
}

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}
