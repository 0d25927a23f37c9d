/**
 * Named phases for a profile of a run (`ssfer run --profile`): code marks what it is doing, and
 * the tracer in charge, if any, times it (src/engine/profile.ts's RunProfile is one). With no
 * tracer every call runs as it would, with nothing around it.
 */
export interface Tracer {
  begin(name: string): void;
  end(name: string): void;
}

let tracer: Tracer | null = null;

/** Puts a tracer in charge (null: none); returns the one it replaces. */
export function setTracer(t: Tracer | null): Tracer | null {
  const previous = tracer;
  tracer = t;
  return previous;
}

export function tracing(): boolean {
  return tracer !== null;
}

/** Runs fn inside the phase `name`; a returned promise ends the phase when it settles. */
export function traced<T>(name: string, fn: () => T): T {
  const t = tracer;
  if (!t) return fn();
  t.begin(name);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    t.end(name);
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => (t.end(name), v),
      (err: unknown) => {
        t.end(name);
        throw err;
      },
    ) as T;
  }
  t.end(name);
  return result;
}

/**
 * The plugin instance with each of its methods traced as `<kind>.<method>` (a `mixing.loss`
 * inside a `finetune.run`), when a tracer is in charge; the instance itself otherwise.
 */
export function tracedInstance<T>(kind: string, instance: T): T {
  if (!tracer || typeof instance !== 'object' || instance === null) return instance;
  return new Proxy(instance as object, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof v !== 'function' || typeof key !== 'string') return v;
      return (...args: unknown[]) => traced(`${kind}.${key}`, () => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  }) as T;
}
