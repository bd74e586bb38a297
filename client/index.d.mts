/** Browser client for notification-hub (see index.mjs). */
export interface HubFrame {
  id?: string;
  room_id?: string | null;
  user_id?: string | null;
  /** "app" for what an app backend published, "client" for what a room member sent. Set by the hub. */
  origin?: "app" | "client";
  data?: any;
}
export interface SubscribeOptions {
  /** Also deliver frames room members sent (`origin: "client"`). Default false: only the app's notifications. */
  clientFrames?: boolean;
}
export type Subscriber = (data: any, frame: HubFrame) => void;
export type ConnectionState = "connecting" | "open" | "closed";
export interface ConnectOptions {
  /** The hub's WebSocket URL, `wss://host/{stage}`. */
  url: string;
  /** A connect token; with getToken instead, a fresh one is fetched after a refused handshake. */
  token?: string;
  getToken?: () => string | Promise<string>;
  /** Reconnect with jittered exponential backoff. Default true. */
  reconnect?: boolean;
  /** Keep-alive interval, under API Gateway's 10-minute idle timeout. Default 5 minutes. */
  keepAliveMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** WebSocket implementation (e.g. the `ws` package outside browsers). Default globalThis.WebSocket. */
  WebSocket?: typeof WebSocket;
  onStateChange?: (state: ConnectionState) => void;
}
export interface HubConnection {
  subscribe(type: string, callback: Subscriber, options?: SubscribeOptions): () => void;
  send(data: unknown): void;
  close(): void;
  readonly state: ConnectionState;
}
export declare function connect(options: ConnectOptions): HubConnection;
