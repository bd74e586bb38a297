// First: the component's Pulumi peers must be installed (an app backend using only /server has none).
import "./requirePeers";
export { NotificationHub, normalizeArgs, ACCESS_LOG_FORMAT, type NotificationHubArgs, type HubNodes, type HubTransforms, type Transform } from "./notificationHub";
export { HANDLER_PACKAGES, LAYER_PACKAGES, codePathOptionsFor, sdkLayerContents, assertSupportedLayout, UnsupportedLayoutError } from "./lambdaPackages";
