/**
 * Kinds are the extension points: each is one inversify service identifier under which the
 * plugins of that kind are bound by name. The core declares the kinds its schema and its stages
 * name; a plugin module declares the nested kinds it offers (`export const kinds = [...]`, as
 * FaceMix does for its κ metric and its loss), and the registry learns them before it registers
 * the plugins of those kinds.
 */
export interface KindDeclaration {
  /** Lower-case words joined by '-', as in `face-boxes`. */
  readonly name: string;
  /** One line, shown by `ssfer plugins`. */
  readonly description: string;
}

/** Declares a kind (the value a plugin module exports in its `kinds` list). */
export function defineKind(name: string, description: string): KindDeclaration {
  return { name, description };
}

/** The kinds the core names: the slots of the recipe schema and the stages of a cell. */
export const CORE_KINDS: readonly KindDeclaration[] = [
  defineKind('dataset', 'a facial-expression dataset (data.dataset) and the pre-training pool that goes with it'),
  defineKind('sampler', 'which training images keep their labels (data.labels)'),
  defineKind('face-boxes', 'a face box per training image (data.boxes)'),
  defineKind('backbone', 'the image classifier (model.backbone)'),
  defineKind('pretrain', 'stage 1: pre-training, shared by the cells with the same inputs (pipeline.pretrain)'),
  defineKind('finetune', 'stage 2: supervised fine-tuning on the labeled images (pipeline.supervised)'),
  defineKind('ssl', 'stage 3: semi-supervised fine-tuning with the unlabeled images (pipeline.semi)'),
  defineKind('mixing', 'how a supervised stage turns a labeled batch into its loss'),
  defineKind('augment', 'a random transform of a batch; boxes follow the images'),
  defineKind('tuner', 'a search over supervised-stage settings before the final training (pipeline.tune)'),
  defineKind('tracker', 'where runs are recorded besides the results folder (tracking)'),
  defineKind('analysis', "a study of the cell's evaluated model on its test split: figures, files and pictures (evaluation.analyses)"),
  defineKind('launcher', 'where the units of a run (one seed of one cell each) are trained: this process, worker processes, a SLURM job array (launcher)'),
];

export const KIND_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** The service identifier the plugins of a kind are bound under. */
export function serviceId(kind: string): symbol {
  return Symbol.for(`ssfer.plugin.${kind}`);
}

/** The service identifier the kind declarations are bound under, each named by its kind. */
export const KIND_SERVICE = Symbol.for('ssfer.kind');
