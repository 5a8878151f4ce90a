/** The part of a pino logger the emulator uses; pass a pino logger or anything alike. */
export interface EmulatorLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export const silentLogger: EmulatorLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
};
