// The in-process worker moved to inProcess.ts; this path stays for code that imports it (README before 0.2).
export * from "./inProcess.js";
