import { expect } from 'chai';
import { setTracer, traced, tracedInstance, type Tracer } from '../../src/core/trace.ts';

/** A tracer that records begin/end in order. */
function recorder(): Tracer & { events: string[] } {
  const events: string[] = [];
  return { events, begin: (n) => void events.push(`+${n}`), end: (n) => void events.push(`-${n}`) };
}

describe('tracing phases', () => {
  afterEach(() => setTracer(null));

  it('runs code untouched when no tracer is in charge', () => {
    const instance = { f: () => 1 };
    expect(tracedInstance('kind', instance)).to.equal(instance);
    expect(traced('x', () => 2)).to.equal(2);
  });

  it('nests phases, ends them when a promise settles, and on a throw', async () => {
    const r = recorder();
    setTracer(r);
    const value = await traced('outer', async () => {
      traced('inner', () => 0);
      await new Promise((resolve) => setImmediate(resolve));
      return 7;
    });
    expect(value).to.equal(7);
    expect(() =>
      traced('bad', () => {
        throw new Error('boom');
      }),
    ).to.throw('boom');
    await traced('rejected', () => Promise.reject(new Error('no'))).catch(() => {});
    expect(r.events).to.deep.equal(['+outer', '+inner', '-inner', '-outer', '+bad', '-bad', '+rejected', '-rejected']);
  });

  it('traces a plugin instance’s methods as kind.method, with its own this', () => {
    const r = recorder();
    setTracer(r);
    const instance = tracedInstance('mixing', {
      scale: 3,
      loss(x: number) {
        return this.scale * x;
      },
      name: 'm',
    });
    expect(instance.loss(2)).to.equal(6);
    expect(instance.name).to.equal('m');
    expect(r.events).to.deep.equal(['+mixing.loss', '-mixing.loss']);
  });
});
