/**
 * Expression classes in the framework's label order (every dataset maps its own labels onto it);
 * the 8-class setting appends contempt.
 */
export const EXPRESSIONS_8 = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'] as const;
export const EXPRESSIONS_7 = EXPRESSIONS_8.slice(0, 7) as readonly Expression[];

export type Expression = (typeof EXPRESSIONS_8)[number];

export function classNames(classes: 7 | 8): readonly Expression[] {
  return classes === 8 ? EXPRESSIONS_8 : EXPRESSIONS_7;
}

/**
 * RAF-DB basic numbers its labels 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness,
 * 6 Anger, 7 Neutral. RAF-DB has no contempt; it is written as 8, after the seven.
 */
export const RAFDB_LABEL: Readonly<Record<Expression, number>> = {
  surprise: 1,
  fear: 2,
  disgust: 3,
  happiness: 4,
  sadness: 5,
  anger: 6,
  neutral: 7,
  contempt: 8,
};

/** RAF-DB label (1-based) of a class index in our order. */
export function toRafdbLabel(classIndex: number): number {
  const name = EXPRESSIONS_8[classIndex];
  if (name === undefined) throw new Error(`no expression class ${classIndex}`);
  return RAFDB_LABEL[name];
}

/** Our class index of a RAF-DB label. */
export function fromRafdbLabel(label: number): number {
  const i = EXPRESSIONS_8.findIndex((name) => RAFDB_LABEL[name] === label);
  if (i < 0) throw new Error(`no RAF-DB label ${label}`);
  return i;
}
