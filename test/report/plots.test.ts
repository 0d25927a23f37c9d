import sharp from 'sharp';
import { expect } from 'chai';
import { chartsSvg } from '../../src/report/plots.ts';

describe('plots', () => {
  it('stacks one chart per figure, each with its own curves, into one picture a real decoder reads', async () => {
    const svg = chartsSvg([
      {
        title: 'cell — loss',
        series: {
          supervised: [
            [1, 2.1],
            [2, 1.7],
          ],
          semi: [[3, 1.2]],
        },
      },
      {
        title: 'cell — kappa',
        series: {
          supervised: [
            [1, 0.4],
            [2, Number.NaN],
          ],
        },
      },
    ]);
    expect(svg).to.include('cell — loss').and.include('cell — kappa').and.include('>semi<');
    const meta = await sharp(Buffer.from(svg)).png().metadata();
    expect([meta.width, meta.height]).to.deep.equal([640, 720]);
  });
});
