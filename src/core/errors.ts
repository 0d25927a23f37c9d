/** A bad flag, argument or input named on the command line: exit status 2 with one clear line. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}
