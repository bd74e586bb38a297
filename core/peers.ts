/**
 * Optional peer packages: what only the Pulumi component (`@pulumi/*`) or only the local hub
 * (dynalite, fauxqs) needs is a peer the installer may leave out, so an app backend that uses
 * `notification-hub/server` installs lean. Using a part whose peers are missing fails at once,
 * naming exactly what to install, instead of with Node's "Cannot find module" deep inside.
 */

/** Throws when any of `packages` cannot be resolved from `fromDir` (this package's own folder). */
export function assertPeersInstalled(part: string, packages: readonly string[], fromDir: string): void {
  const missing = packages.filter((name) => {
    try {
      require.resolve(name, { paths: [fromDir] });
      return false;
    } catch (err) {
      return (err as { code?: string }).code === "MODULE_NOT_FOUND";
    }
  });
  if (missing.length === 0) return;
  throw new Error(
    `notification-hub: ${part} needs ${missing.join(", ")}, which ${missing.length === 1 ? "is" : "are"} not installed (optional peer dependencies of notification-hub). Run: npm install ${missing.join(" ")}`,
  );
}
