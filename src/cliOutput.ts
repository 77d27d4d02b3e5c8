// Lines for people on stdout, and for errors on stderr.
export const say = (m: string) => process.stdout.write(`${m}\n`);
export const warn = (m: string) => process.stderr.write(`${m}\n`);
