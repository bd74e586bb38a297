export { NotificationHub, normalizeArgs, ACCESS_LOG_FORMAT, type NotificationHubArgs } from "./notificationHub";
export { HANDLER_PACKAGES, codePathOptionsFor } from "./lambdaPackages";
