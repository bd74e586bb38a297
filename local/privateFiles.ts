/** Files of the local hub that hold dev secrets: only their owner may read them. */
import * as fs from "fs";
import * as path from "path";

/** A directory only its owner can enter, also when it existed with looser modes. */
export function makePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Writes a file only its owner can read; `mode` applies only on creation, so chmod an existing one too. */
export function writePrivateFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}
