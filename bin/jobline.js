#!/usr/bin/env node
// Loads the TypeScript CLI in-process through tsx, so a checkout needs no build
// step and signals reach the real process (no wrapper child to forward them).
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
